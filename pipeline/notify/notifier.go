package notify

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options tune delivery; the zero value gives the defaults.
type Options struct {
	// Attempts per delivery (default 5) and the wait before the second
	// (default 1 s), doubling after each failure up to MaxBackoff (30 s):
	// a receiver down for about 15 s loses nothing.
	Attempts     int
	FirstBackoff time.Duration
	MaxBackoff   time.Duration
	// Timeout of one attempt (default 10 s).
	Timeout time.Duration
	// MaxPending bounds the deliveries waiting or in flight per target
	// (default 100); beyond it an event is dropped and counted, so a dead
	// receiver cannot grow memory without end.
	MaxPending int
	Log        *slog.Logger
	Metrics    *Metrics
	HTTPClient *http.Client
}

func (o *Options) defaults() {
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.FirstBackoff <= 0 {
		o.FirstBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 100
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: o.Timeout}
	}
}

// Metrics count deliveries per target and result.
type Metrics struct {
	// Deliveries: delivered, failed (every attempt failed), dropped
	// (too many pending), canceled (shut down first).
	Deliveries *prometheus.CounterVec
	// Attempts: each try, ok or error.
	Attempts *prometheus.CounterVec
}

// NewMetrics creates and registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tsys_ci", Subsystem: "notify", Name: "deliveries_total",
			Help: "Notifications by target and result (delivered, failed, dropped, canceled).",
		}, []string{"target", "result"}),
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tsys_ci", Subsystem: "notify", Name: "attempts_total",
			Help: "Delivery attempts by target and outcome (ok, error).",
		}, []string{"target", "outcome"}),
	}
	reg.MustRegister(m.Deliveries, m.Attempts)
	return m
}

// Notifier sends events to targets in the background.
type Notifier struct {
	targets []Target
	opts    Options
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	pending map[string]int // target -> deliveries not finished
}

// New returns a Notifier for targets (validated with Validate first). A
// nil or empty list gives a Notifier that sends nothing, so callers need
// no special case.
func New(targets []Target, opts Options) *Notifier {
	opts.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Notifier{targets: targets, opts: opts, ctx: ctx, cancel: cancel, pending: map[string]int{}}
}

// Notify queues ev for every target that wants it and returns at once.
func (n *Notifier) Notify(ev Event) {
	if n == nil {
		return
	}
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	for i := range n.targets {
		t := &n.targets[i]
		if !t.wants(ev) {
			continue
		}
		n.mu.Lock()
		full := n.pending[t.Name] >= n.opts.MaxPending
		if !full {
			n.pending[t.Name]++
		}
		n.mu.Unlock()
		if full {
			n.count(t.Name, "dropped")
			n.opts.Log.Warn("notification dropped: too many pending for this target", "target", t.Name, "kind", ev.Kind, "app", ev.Namespace+"/"+ev.App)
			continue
		}
		n.wg.Add(1)
		go n.deliver(t, ev)
	}
}

func (n *Notifier) deliver(t *Target, ev Event) {
	defer n.wg.Done()
	defer func() {
		n.mu.Lock()
		n.pending[t.Name]--
		n.mu.Unlock()
	}()
	wait := n.opts.FirstBackoff
	var err error
	for attempt := 1; attempt <= n.opts.Attempts; attempt++ {
		if err = n.send(t, ev); err == nil {
			n.attempt(t.Name, "ok")
			n.count(t.Name, "delivered")
			return
		}
		n.attempt(t.Name, "error")
		if attempt == n.opts.Attempts {
			break
		}
		n.opts.Log.Info("notification not delivered; retrying", "target", t.Name, "kind", ev.Kind, "attempt", attempt, "in", wait, "error", err)
		select {
		case <-time.After(wait):
		case <-n.ctx.Done():
			n.count(t.Name, "canceled")
			n.opts.Log.Warn("notification canceled at shutdown", "target", t.Name, "kind", ev.Kind, "error", err)
			return
		}
		wait = min(2*wait, n.opts.MaxBackoff)
	}
	n.count(t.Name, "failed")
	n.opts.Log.Error("notification failed", "target", t.Name, "kind", ev.Kind, "app", ev.Namespace+"/"+ev.App, "attempts", n.opts.Attempts, "error", err)
}

func (n *Notifier) send(t *Target, ev Event) error {
	if t.Email != nil {
		return sendEmail(t.Email, ev, n.opts.Timeout)
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.Timeout)
	defer cancel()
	return postWebhook(ctx, n.opts.HTTPClient, t.Webhook, ev)
}

func (n *Notifier) count(target, result string) {
	if n.opts.Metrics != nil {
		n.opts.Metrics.Deliveries.WithLabelValues(target, result).Inc()
	}
}

func (n *Notifier) attempt(target, outcome string) {
	if n.opts.Metrics != nil {
		n.opts.Metrics.Attempts.WithLabelValues(target, outcome).Inc()
	}
}

// Close waits for pending deliveries until ctx ends, then cancels the
// rest (counted as canceled). It returns how many were still pending when
// ctx ended. A CLI promote calls it before exiting, with a short deadline.
func (n *Notifier) Close(ctx context.Context) int {
	if n == nil {
		return 0
	}
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		n.cancel()
		return 0
	case <-ctx.Done():
	}
	n.mu.Lock()
	left := 0
	for _, p := range n.pending {
		left += p
	}
	n.mu.Unlock()
	n.cancel()
	<-done
	return left
}
