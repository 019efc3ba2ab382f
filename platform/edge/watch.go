package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/tsys-group/tsys-ci/internal/contract"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// Watcher keeps the edge in sync from cluster events: an informer on the
// Services tsys-ci manages (which relists by itself after a broken watch, so
// changes missed while disconnected still arrive), one log line per change,
// and one sync after changes settle.
type Watcher struct {
	Client    kubernetes.Interface
	Namespace string // empty: all namespaces
	Options   Options
	// Sync applies a Model; Syncer.Sync in production.
	Sync func(context.Context, *Model) (Result, error)
	Log  *slog.Logger
	// Debounce is the quiet time after the last change before a sync;
	// a burst of changes is synced after 5×Debounce at the latest.
	Debounce time.Duration
	// Resync also syncs this often without events, to repair drift (an
	// HAProxy restarted with old files, a hand edit).
	Resync time.Duration
	// RetryAfter is the wait before trying again after a failed sync.
	RetryAfter time.Duration
	Clock      clock.WithTicker // nil: the real clock
}

// Run watches until ctx ends. A sync that fails is logged and retried; a
// bad claim in the cluster is logged, left out (the other apps are still
// synced) and waits for the next change.
func (w *Watcher) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(w.Client, w.Resync,
		informers.WithNamespace(w.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = Selector }))
	services := factory.Core().V1().Services()
	informer := services.Informer()
	kick := make(chan struct{}, 1)
	if _, err := informer.AddEventHandler(w.handler(kick)); err != nil {
		return fmt.Errorf("watching Services: %w", err)
	}
	if err := informer.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		w.Log.Warn("watch of Services broke; relisting when the API server answers again", "error", err)
	}); err != nil {
		return fmt.Errorf("watching Services: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return fmt.Errorf("listing Services labelled %s: %w", Selector, context.Cause(ctx))
	}
	w.Log.Info("watching Services", "selector", Selector, "namespace", w.Namespace)
	lister := services.Lister()
	return w.loop(ctx, kick, func() ([]corev1.Service, error) {
		list, err := lister.List(labels.Everything())
		if err != nil {
			return nil, err
		}
		out := make([]corev1.Service, len(list))
		for i, s := range list {
			out[i] = *s
		}
		return out, nil
	})
}

func (w *Watcher) handler(kick chan<- struct{}) cache.ResourceEventHandler {
	notify := func(old, new *corev1.Service) {
		line, ok := Describe(old, new)
		if !ok {
			return
		}
		w.Log.Info("service changed", "change", line)
		select {
		case kick <- struct{}{}:
		default: // a sync is already due
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { notify(nil, asService(obj)) },
		UpdateFunc: func(old, new any) { notify(asService(old), asService(new)) },
		DeleteFunc: func(obj any) { notify(asService(obj), nil) },
	}
}

func asService(obj any) *corev1.Service {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	s, _ := obj.(*corev1.Service)
	return s
}

// loop syncs once at start, then after each settled burst of changes, on
// every Resync tick, and RetryAfter a failed sync.
func (w *Watcher) loop(ctx context.Context, kick <-chan struct{}, list func() ([]corev1.Service, error)) error {
	clk := w.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	var timer clock.Timer
	var fire <-chan time.Time
	burst := debounce{quiet: w.Debounce, max: 5 * w.Debounce}
	schedule := func(after time.Duration) {
		if timer != nil {
			timer.Stop()
		}
		timer = clk.NewTimer(after)
		fire = timer.C()
	}
	syncNow := func() {
		timer, fire = nil, nil
		burst.fired()
		if err := w.syncOnce(ctx, list); err != nil && w.RetryAfter > 0 {
			schedule(w.RetryAfter)
		}
	}
	var resync <-chan time.Time
	if w.Resync > 0 {
		t := clk.NewTicker(w.Resync)
		defer t.Stop()
		resync = t.C()
	}
	syncNow()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
			now := clk.Now()
			schedule(burst.changed(now).Sub(now))
		case <-fire:
			syncNow()
		case <-resync:
			syncNow()
		}
	}
}

// debounce decides when a burst of changes is synced: quiet after the last
// change, but never later than max after the first, so a Service that keeps
// changing cannot hold the edge back for ever.
type debounce struct {
	quiet, max time.Duration
	start, due time.Time // due is zero when nothing is pending
}

// changed records a change at now and returns when to sync.
func (d *debounce) changed(now time.Time) time.Time {
	if d.due.IsZero() {
		d.start = now
	}
	d.due = now.Add(d.quiet)
	if limit := d.start.Add(d.max); d.due.After(limit) {
		d.due = limit
	}
	return d.due
}

// fired records that a sync ran.
func (d *debounce) fired() { d.due = time.Time{} }

// syncOnce builds the Model from the cluster as the informer sees it and
// applies it; its one log line says what changed.
func (w *Watcher) syncOnce(ctx context.Context, list func() ([]corev1.Service, error)) error {
	services, err := list()
	if err != nil {
		w.Log.Error("edge sync failed", "error", err)
		return err
	}
	m, err := Build(services, w.Options)
	var ie *InputError
	if errors.As(err, &ie) {
		// Those claims are left out of m and the rest is synced; retrying
		// cannot help them: the next change to the Services will.
		w.Log.Error("edge claims refused and left out; syncing the rest", "problems", strings.Join(ie.Problems, "; "))
		err = nil
	}
	if err != nil {
		w.Log.Error("edge sync failed", "error", err)
		return err
	}
	res, err := w.Sync(ctx, m)
	if err != nil {
		w.Log.Error("edge sync failed; HAProxy keeps its current configuration", "error", err)
		return err
	}
	level := slog.LevelInfo
	if res.Action == ActionNone {
		level = slog.LevelDebug
	}
	w.Log.Log(ctx, level, "edge synced", "action", res.Action, "changes", strings.Join(res.Changes, "; "),
		"missingCertificates", strings.Join(res.MissingCerts, " "))
	return nil
}

// edgeView is what the edge reads from a Service; changes to anything else
// (status conditions, resync updates) do not cause a sync.
type edgeView struct {
	app, kind, annotation string
	ports                 []string
	addrs                 []string
}

func viewOf(s *corev1.Service) *edgeView {
	if s == nil || !Managed(s) {
		return nil
	}
	v := &edgeView{app: AppOf(s), kind: string(s.Spec.Type), annotation: s.Annotations[contract.AnnotationEdge]}
	for _, p := range s.Spec.Ports {
		v.ports = append(v.ports, fmt.Sprintf("%s=%d/%s", p.Name, p.Port, p.Protocol))
	}
	for _, in := range s.Status.LoadBalancer.Ingress {
		v.addrs = append(v.addrs, in.IP+in.Hostname)
	}
	slices.Sort(v.ports)
	slices.Sort(v.addrs)
	return v
}

// Describe says in one line how a Service event changes the edge, or false
// when it does not (an unmanaged Service, a periodic resync, a change to a
// field the edge does not read).
func Describe(old, new *corev1.Service) (string, bool) {
	a, b := viewOf(old), viewOf(new)
	switch {
	case a == nil && b == nil:
		return "", false
	case a == nil:
		return fmt.Sprintf("app %s exposed (Service %s/%s, %s %s)", b.app, new.Namespace, new.Name, contract.AnnotationEdge, b.annotation), true
	case b == nil && new == nil:
		return fmt.Sprintf("app %s removed (Service %s/%s deleted)", a.app, old.Namespace, old.Name), true
	case b == nil:
		return fmt.Sprintf("app %s no longer exposed (Service %s/%s lost its label or %s annotation)", a.app, new.Namespace, new.Name, contract.AnnotationEdge), true
	}
	var what []string
	if a.app != b.app {
		what = append(what, fmt.Sprintf("app %s -> %s", a.app, b.app))
	}
	if a.kind != b.kind {
		what = append(what, fmt.Sprintf("type %s -> %s", a.kind, b.kind))
	}
	if a.annotation != b.annotation {
		what = append(what, fmt.Sprintf("%s %s -> %s", contract.AnnotationEdge, a.annotation, b.annotation))
	}
	if !slices.Equal(a.ports, b.ports) {
		what = append(what, fmt.Sprintf("ports [%s] -> [%s]", strings.Join(a.ports, " "), strings.Join(b.ports, " ")))
	}
	if !slices.Equal(a.addrs, b.addrs) {
		what = append(what, fmt.Sprintf("load-balancer address [%s] -> [%s]", strings.Join(a.addrs, " "), strings.Join(b.addrs, " ")))
	}
	if len(what) == 0 {
		return "", false
	}
	return fmt.Sprintf("app %s (Service %s/%s): %s", b.app, new.Namespace, new.Name, strings.Join(what, ", ")), true
}
