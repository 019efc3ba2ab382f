package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tsys-group/tsys-ci/pipeline/notify"

	"github.com/tsys-group/tsys-ci/rollout"
)

// Deploy kinds.
const (
	DeployPromote  = "promote"
	DeployRollback = "rollback"
	// DeployResume finishes a promote or rollback a stopped replica left
	// under way (found in the app's rollout state when a replica starts
	// leading).
	DeployResume = "resume"
	// DeployAbort stops the promote in progress (a person's abort): it
	// rolls back a promote nobody runs any more, or asks the process
	// running it (serve's own deploy, a CLI or Jenkins promote) to roll
	// back at its next check. It has its own lane, so it never waits
	// behind the deploy it stops.
	DeployAbort = "abort"
)

// Deploy results.
const (
	ResultSucceeded  = "succeeded"
	ResultFailed     = "failed"
	ResultRolledBack = "rolled_back"
	ResultCanceled   = "canceled"
	// ResultAborted: a promote stopped by an abort and rolled back.
	ResultAborted = "aborted"
)

// DeployRequest is one deploy serve asks for: a promote of a pushed image
// (from a Harbor event or a person) or a rollback (a person).
type DeployRequest struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Policy string `json:"policy,omitempty"`
	// Stage is the policy's stage the deploy is for ("" without stages).
	Stage     string `json:"stage,omitempty"`
	App       string `json:"app"`
	Namespace string `json:"namespace"`
	Strategy  string `json:"strategy,omitempty"`
	Spec      string `json:"spec,omitempty"`
	// EnvSecret is the policy's envSecret: the Secret of serve's
	// namespace a promote reads the spec's fromEnv values from (its name
	// only; the values are never in a request or a record).
	EnvSecret string    `json:"envSecret,omitempty"`
	Image     string    `json:"image,omitempty"`
	Tag       string    `json:"tag,omitempty"`
	Trigger   string    `json:"trigger"` // "harbor", "api" or "leader" (a resume)
	By        string    `json:"by"`      // Harbor's operator, the LDAP login, or the replica
	PushedAt  time.Time `json:"pushedAt,omitzero"`
}

// Deployer carries out one deploy. It is rollout's promote in production;
// serve calls it for one app at a time. The cluster-wide lock that keeps a
// CLI promote and serve apart is promote's own lease, not serve's business.
type Deployer interface {
	Deploy(ctx context.Context, req DeployRequest) error
}

// ErrRolledBack is what a Deployer returns (wrapped) when the new version
// failed its probes and the old one was restored: the app is healthy, the
// deploy is not.
var ErrRolledBack = errors.New("new version failed its probes and was rolled back")

// ErrAbortRequested is what a Deployer returns (wrapped) for an abort
// that asked the process holding the app's lease to roll back, rather
// than rolling back itself: that process reports the end. The deploy
// succeeded.
var ErrAbortRequested = errors.New("asked the running promote to roll back")

// ErrNothingToAbort is what a Deployer returns (wrapped) for an abort
// when no promote of the app was in progress.
var ErrNothingToAbort = errors.New("no promote in progress; nothing to abort")

// ErrNoCluster is the error of the Deployer serve runs with when it was
// started without a cluster (--no-cluster, for trying the API locally):
// never a pretend success.
var ErrNoCluster = errors.New("serve runs without a cluster (--no-cluster); nothing was deployed")

// NoClusterDeployer refuses every deploy with ErrNoCluster.
type NoClusterDeployer struct{}

// Deploy refuses.
func (NoClusterDeployer) Deploy(context.Context, DeployRequest) error { return ErrNoCluster }

// DeployRecord is a deploy as the API shows it.
type DeployRecord struct {
	DeployRequest
	State    string    `json:"state"` // queued, running, done
	Result   string    `json:"result,omitempty"`
	Error    string    `json:"error,omitempty"`
	Queued   time.Time `json:"queued"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	Seconds  float64   `json:"seconds,omitempty"`
}

// DeployEventSink is told about every finished deploy; in the cluster it
// writes a Kubernetes Event on the app.
type DeployEventSink interface {
	DeployFinished(ctx context.Context, rec DeployRecord) error
}

// DeployRecorder keeps the most recent deploys for the API.
type DeployRecorder struct {
	max  int
	mu   sync.Mutex
	recs []*DeployRecord // oldest first
	byID map[string]*DeployRecord
}

// NewDeployRecorder keeps the last max deploys.
func NewDeployRecorder(max int) *DeployRecorder {
	return &DeployRecorder{max: max, byID: map[string]*DeployRecord{}}
}

func (r *DeployRecorder) add(rec *DeployRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.recs) >= r.max {
		delete(r.byID, r.recs[0].ID)
		r.recs = append([]*DeployRecord(nil), r.recs[1:]...)
	}
	r.recs = append(r.recs, rec)
	r.byID[rec.ID] = rec
}

func (r *DeployRecorder) update(id string, f func(*DeployRecord)) DeployRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.byID[id]
	if rec == nil {
		return DeployRecord{}
	}
	f(rec)
	return *rec
}

func (r *DeployRecorder) get(id string) DeployRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec := r.byID[id]; rec != nil {
		return *rec
	}
	return DeployRecord{}
}

// Recent returns copies of the recorded deploys, newest first.
func (r *DeployRecorder) Recent() []DeployRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]DeployRecord, 0, len(r.recs))
	for i := len(r.recs) - 1; i >= 0; i-- {
		out = append(out, *r.recs[i])
	}
	return out
}

// Queue errors.
var (
	ErrQueueFull    = errors.New("too many deploys waiting for this app; retry later")
	ErrShuttingDown = errors.New("serve is shutting down; retry on the other replica")
)

// DeployQueue runs deploys one at a time per app (namespace/app), apps in
// parallel, and records each.
type DeployQueue struct {
	Deployer Deployer
	Recorder *DeployRecorder
	Events   DeployEventSink // may be nil
	Metrics  *Metrics
	Log      *slog.Logger
	Clock    rollout.Clock
	// PerApp bounds the deploys waiting for one app.
	PerApp int
	// Notify tells the configured targets when a deploy starts and how it
	// ended; it never blocks a deploy (nil: nobody is told).
	Notify *notify.Notifier
	// OnFinished, when set, is told about every finished deploy (the
	// stage record), after its Event.
	OnFinished func(DeployRecord)

	mu      sync.Mutex
	queues  map[string]chan DeployRequest
	closed  bool
	seq     int
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelCauseFunc
	started bool
}

func (q *DeployQueue) init() {
	if !q.started {
		q.started = true
		q.queues = map[string]chan DeployRequest{}
		q.ctx, q.cancel = context.WithCancelCause(context.Background())
		if q.PerApp <= 0 {
			q.PerApp = 8
		}
	}
}

// Enqueue queues req and returns its record (with its new ID).
func (q *DeployQueue) Enqueue(req DeployRequest) (DeployRecord, error) {
	recs, err := q.EnqueueAll([]DeployRequest{req})
	if err != nil {
		return DeployRecord{}, err
	}
	return recs[0], nil
}

// EnqueueAll queues all of reqs or none: a Harbor event that matches two
// policies must not deploy one of them now and both again on its retry.
func (q *DeployQueue) EnqueueAll(reqs []DeployRequest) ([]DeployRecord, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.init()
	if q.closed {
		return nil, ErrShuttingDown
	}
	want := map[string]int{}
	for _, req := range reqs {
		key := laneKey(req)
		want[key]++
		// Only Enqueue sends, under q.mu, so the room seen here stays.
		if ch := q.queues[key]; want[key] > q.PerApp || (ch != nil && len(ch)+want[key] > cap(ch)) {
			return nil, fmt.Errorf("%s: %w", key, ErrQueueFull)
		}
	}
	out := make([]DeployRecord, 0, len(reqs))
	for _, req := range reqs {
		key := laneKey(req)
		ch := q.queues[key]
		if ch == nil {
			ch = make(chan DeployRequest, q.PerApp)
			q.queues[key] = ch
			q.wg.Add(1)
			go q.worker(ch)
		}
		q.seq++
		now := q.Clock.Now()
		req.ID = fmt.Sprintf("%s-%d", now.UTC().Format("20060102T150405Z"), q.seq)
		rec := &DeployRecord{DeployRequest: req, State: "queued", Queued: now}
		out = append(out, *rec)
		// Recorded before it is sent, so the worker always finds the record.
		q.Recorder.add(rec)
		ch <- req
		q.Log.Info("deploy queued", "id", req.ID, "kind", req.Kind, "app", req.App, "namespace", req.Namespace,
			"policy", req.Policy, "image", req.Image, "trigger", req.Trigger, "by", req.By)
	}
	return out, nil
}

// laneKey names the queue a deploy waits in: one per app, and one more
// per app for aborts, which must not wait behind the promote they stop.
func laneKey(req DeployRequest) string {
	key := req.Namespace + "/" + req.App
	if req.Kind == DeployAbort {
		key += " abort"
	}
	return key
}

func (q *DeployQueue) worker(ch chan DeployRequest) {
	defer q.wg.Done()
	for req := range ch {
		q.run(req)
	}
}

func (q *DeployQueue) run(req DeployRequest) {
	start := q.Clock.Now()
	q.Recorder.update(req.ID, func(r *DeployRecord) { r.State, r.Started = "running", start })
	q.Log.Info("deploy started", "id", req.ID, "kind", req.Kind, "app", req.App, "namespace", req.Namespace)
	if req.Kind != DeployAbort {
		q.Notify.Notify(notice(req, notify.KindStarted, "", start))
	}
	var err error
	if q.ctx.Err() != nil {
		err = fmt.Errorf("not started: %w", q.ctx.Err())
	} else {
		ctx := WithProgress(q.ctx, func(pr rollout.Progress) {
			ev := notice(req, pr.Kind, "", pr.At)
			ev.Image, ev.Previous = pr.Image, pr.Previous
			if pr.Strategy != "" {
				ev.Strategy = pr.Strategy
			}
			q.Notify.Notify(ev)
		})
		err = q.Deployer.Deploy(ctx, req)
	}
	end := q.Clock.Now()
	result := ResultSucceeded
	switch {
	case err == nil:
	case errors.Is(err, ErrAbortRequested):
		// The process running the promote rolls back and tells.
	case errors.Is(err, rollout.ErrAborted):
		result = ResultAborted
	case errors.Is(err, ErrRolledBack):
		result = ResultRolledBack
	case errors.Is(err, context.Canceled) || q.ctx.Err() != nil:
		result = ResultCanceled
	default:
		result = ResultFailed
	}
	secs := end.Sub(start).Seconds()
	rec := q.Recorder.get(req.ID)
	rec.State, rec.Result, rec.Finished, rec.Seconds = "done", result, end, secs
	if err != nil {
		rec.Error = err.Error()
	}
	q.Metrics.Deploys.WithLabelValues(req.Kind, result).Inc()
	q.Metrics.DeployDuration.WithLabelValues(req.Kind, result).Observe(secs)
	attrs := []any{"id", req.ID, "kind", req.Kind, "app", req.App, "namespace", req.Namespace, "policy", req.Policy,
		"image", req.Image, "tag", req.Tag, "trigger", req.Trigger, "by", req.By, "result", result, "seconds", secs}
	if err != nil {
		q.Log.Error("deploy finished", append(attrs, "err", err)...)
	} else {
		q.Log.Info("deploy finished", attrs...)
	}
	if q.Events != nil {
		// The event is best effort: a deploy is not undone because the
		// API server refused its event, but the failure is logged.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if eerr := q.Events.DeployFinished(ctx, rec); eerr != nil {
			q.Log.Warn("deploy event not recorded", "id", req.ID, "app", req.App, "namespace", req.Namespace, "err", eerr)
		}
		cancel()
	}
	if q.OnFinished != nil {
		q.OnFinished(rec)
	}
	if kind := finishedKind(req.Kind, result, err); kind != "" {
		q.Notify.Notify(notice(req, kind, rec.Error, end))
	}
	// The record turns "done" last, so whoever sees it done also sees the
	// metrics, the log line and the event.
	q.Recorder.update(req.ID, func(r *DeployRecord) { *r = rec })
}

type progressKey struct{}

// WithProgress gives a Deployer the function that turns the moments only
// promote sees (rollout.Progress: switched) into this deploy's notices.
func WithProgress(ctx context.Context, f func(rollout.Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, f)
}

// ProgressFrom is the function WithProgress put in ctx, or nil.
func ProgressFrom(ctx context.Context) func(rollout.Progress) {
	f, _ := ctx.Value(progressKey{}).(func(rollout.Progress))
	return f
}

// Draining reports whether Drain was called: the queue takes no more.
func (q *DeployQueue) Draining() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// Drain stops taking deploys and waits for the queued and running ones.
// When ctx ends first, the running deploys are canceled (promote resumes
// or rolls back on the next run), the queued ones are recorded as canceled
// without starting, and Drain returns an error saying so.
func (q *DeployQueue) Drain(ctx context.Context) error {
	q.mu.Lock()
	q.init()
	if !q.closed {
		q.closed = true
		for _, ch := range q.queues {
			close(ch)
		}
	}
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		q.cancel(nil)
		q.Notify.Close(ctx) // the last deploys' notices, within the deadline
		return nil
	case <-ctx.Done():
	}
	defer q.Notify.Close(ctx)
	// Canceled for another replica to resume: promote leaves each one at
	// its recorded phase, even a canary step, rather than rolling it back.
	q.cancel(rollout.ErrHandedOver)
	<-done
	return fmt.Errorf("deploys still running at the shutdown deadline were canceled: %w", ctx.Err())
}

// notice is the notification of one deploy's start or end.
func notice(req DeployRequest, kind, reason string, at time.Time) notify.Event {
	by := req.By
	if req.Trigger != "" {
		by = req.Trigger + ": " + req.By
	}
	image := req.Image
	if req.Kind == DeployRollback && image == "" {
		image = "the previous version"
	}
	if req.Kind == DeployAbort && image == "" {
		image = "the promote in progress"
	}
	return notify.Event{Kind: kind, Namespace: req.Namespace, App: req.App, Image: image, Strategy: req.Strategy,
		Reason: reason, By: by, At: at, Source: "serve"}
}

// finishedKind maps a deploy's result to a notification ("" for none): a
// deploy that failed never went live (a check refused it or an error
// stopped it). An abort is told only when it rolled back itself; when it
// asked a running promote, that promote's end is the notice.
func finishedKind(kind, result string, err error) string {
	if kind == DeployAbort {
		if err == nil {
			return notify.KindAborted
		}
		return ""
	}
	switch result {
	case ResultAborted:
		return notify.KindAborted
	case ResultSucceeded:
		return notify.KindPromoted
	case ResultRolledBack:
		return notify.KindRolledBack
	case ResultCanceled:
		return notify.KindAborted
	}
	return notify.KindRefused
}
