package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

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
// synced) and waits for the next change. A change of an app's weights
// alone is synced at once, without the debounce: promote waits for it.
func (w *Watcher) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(w.Client, w.Resync,
		informers.WithNamespace(w.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = Selector }))
	// Nodes are cluster-wide and carry no tsys-ci label: their own
	// factory, read only by an edge serving by version.
	nodeFactory := informers.NewSharedInformerFactory(w.Client, w.Resync)
	services := factory.Core().V1().Services()
	nodes := nodeFactory.Core().V1().Nodes()
	kick, now := make(chan struct{}, 1), make(chan struct{}, 1)
	type watched struct {
		what     string
		informer cache.SharedIndexInformer
		handler  cache.ResourceEventHandler
	}
	all := []watched{{"Services", services.Informer(), w.handler(kick, now)}}
	if w.Options.ByVersion {
		all = append(all, watched{"Nodes", nodes.Informer(), w.nodeHandler(kick)})
	}
	for _, inf := range all {
		if _, err := inf.informer.AddEventHandler(inf.handler); err != nil {
			return fmt.Errorf("watching %s: %w", inf.what, err)
		}
		what := inf.what
		if err := inf.informer.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			w.Log.Warn("watch broke; relisting when the API server answers again", "of", what, "error", err)
		}); err != nil {
			return fmt.Errorf("watching %s: %w", what, err)
		}
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if w.Options.ByVersion {
		nodeFactory.Start(ctx.Done())
		defer nodeFactory.Shutdown()
	}
	if !cache.WaitForCacheSync(ctx.Done(), services.Informer().HasSynced) {
		return fmt.Errorf("listing Services labelled %s: %w", Selector, context.Cause(ctx))
	}
	if w.Options.ByVersion && !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced) {
		return fmt.Errorf("listing Nodes (an edge serving by version needs get, list and watch on nodes): %w", context.Cause(ctx))
	}
	w.Log.Info("watching Services", "selector", Selector, "namespace", w.Namespace, "byVersion", w.Options.ByVersion)
	serviceLister, nodeLister := services.Lister(), nodes.Lister()
	return w.loop(ctx, kick, now, func() (Cluster, error) {
		list, err := serviceLister.List(labels.Everything())
		if err != nil {
			return Cluster{}, err
		}
		var c Cluster
		for _, s := range list {
			c.Services = append(c.Services, *s)
		}
		if !w.Options.ByVersion {
			return c, nil
		}
		nl, err := nodeLister.List(labels.Everything())
		if err != nil {
			return Cluster{}, err
		}
		for _, n := range nl {
			c.Nodes = append(c.Nodes, *n)
		}
		return c, nil
	})
}

// Cluster is what the edge reads from the cluster.
type Cluster struct {
	Services []corev1.Service
	Nodes    []corev1.Node
}

func (w *Watcher) handler(kick, now chan<- struct{}) cache.ResourceEventHandler {
	notify := func(old, new *corev1.Service) {
		line, ok := describe(old, new, w.Options.ByVersion)
		if !ok {
			return
		}
		w.Log.Info("service changed", "change", line)
		due := kick
		if w.Options.ByVersion && WeightsOnly(old, new) {
			due = now
		}
		select {
		case due <- struct{}{}:
		default: // a sync is already due
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { notify(nil, asService(obj)) },
		UpdateFunc: func(old, new any) { notify(asService(old), asService(new)) },
		DeleteFunc: func(obj any) { notify(asService(obj), nil) },
	}
}

func (w *Watcher) nodeHandler(kick chan<- struct{}) cache.ResourceEventHandler {
	notify := func(old, new *corev1.Node) {
		line, ok := DescribeNode(old, new)
		if !ok {
			return
		}
		w.Log.Info("node changed", "change", line)
		select {
		case kick <- struct{}{}:
		default: // a sync is already due
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { notify(nil, asNode(obj)) },
		UpdateFunc: func(old, new any) { notify(asNode(old), asNode(new)) },
		DeleteFunc: func(obj any) { notify(asNode(obj), nil) },
	}
}

func asNode(obj any) *corev1.Node {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	n, _ := obj.(*corev1.Node)
	return n
}

func asService(obj any) *corev1.Service {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	s, _ := obj.(*corev1.Service)
	return s
}

// loop syncs once at start, then after each settled burst of changes
// (kick), at once on now, on every Resync tick, and RetryAfter a failed
// sync.
func (w *Watcher) loop(ctx context.Context, kick, now <-chan struct{}, list func() (Cluster, error)) error {
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
		if timer != nil {
			timer.Stop()
		}
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
			t := clk.Now()
			schedule(burst.changed(t).Sub(t))
		case <-fire:
			syncNow()
		case <-now:
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
func (w *Watcher) syncOnce(ctx context.Context, list func() (Cluster, error)) error {
	c, err := list()
	if err != nil {
		w.Log.Error("edge sync failed", "error", err)
		return err
	}
	m, err := Build(c.Services, c.Nodes, w.Options)
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
