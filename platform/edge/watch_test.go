package edge

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/platform/edge/edgetest"
	"github.com/tsys-group/tsys-ci/test/testenv"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestDescribe(t *testing.T) {
	base := lbService("shop", "web", `[{"port":"http","hosts":["shop.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.1")
	moved := base.DeepCopy()
	moved.Status.LoadBalancer.Ingress[0].IP = "10.0.0.2"
	resynced := base.DeepCopy()
	resynced.ResourceVersion = "42"
	resynced.Status.Conditions = append(resynced.Status.Conditions, metav1Condition())
	unannotated := base.DeepCopy()
	delete(unannotated.Annotations, contract.AnnotationEdge)
	rehosted := base.DeepCopy()
	rehosted.Annotations[contract.AnnotationEdge] = `[{"port":"http","hosts":["new.company.example"]}]`
	unmanaged := base.DeepCopy()
	unmanaged.Labels[contract.LabelManagedBy] = "helm"

	tests := []struct {
		name     string
		old, new *corev1.Service
		want     string // "" means no change for the edge
	}{
		{"added", nil, &base, "app shop/web exposed (Service shop/web, tsys-ci.io/edge "},
		{"deleted", &base, nil, "app shop/web removed (Service shop/web deleted)"},
		{"address moved", &base, moved, "app shop/web (Service shop/web): load-balancer address [10.0.0.1] -> [10.0.0.2]"},
		{"hosts changed", &base, rehosted, `tsys-ci.io/edge [{"port":"http","hosts":["shop.company.example"]}] -> [{"port":"http","hosts":["new.company.example"]}]`},
		{"annotation removed", &base, unannotated, "app shop/web no longer exposed"},
		{"resync or unrelated change", &base, resynced, ""},
		{"unmanaged service", nil, unmanaged, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Describe(tt.old, tt.new)
			if ok != (tt.want != "") || !strings.Contains(got, tt.want) {
				t.Fatalf("Describe = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}

func metav1Condition() metav1.Condition {
	return metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Test"}
}

// recorder stands in for Syncer.Sync: the loop's logic is what is tested,
// not HAProxy (TestSyncWithRealHAProxy covers that).
type recorder struct {
	mu     sync.Mutex
	models []*Model
	synced chan struct{}
}

func (r *recorder) sync(_ context.Context, m *Model) (Result, error) {
	r.mu.Lock()
	r.models = append(r.models, m)
	r.mu.Unlock()
	r.synced <- struct{}{}
	return Result{Action: ActionReload, Changes: []string{"x"}}, nil
}

func TestDebounce(t *testing.T) {
	at := func(s float64) time.Time { return time.Unix(0, 0).Add(time.Duration(s * float64(time.Second))) }
	d := debounce{quiet: 2 * time.Second, max: 10 * time.Second}
	for _, s := range []float64{0, 1, 2} {
		d.changed(at(s))
	}
	if d.due != at(4) {
		t.Fatalf("a burst at 0, 1, 2 s is synced at %v, want 4 s (2 s after the last)", d.due.Sub(at(0)))
	}
	d.fired()
	for s := 20.0; s < 40; s++ {
		d.changed(at(s))
	}
	if d.due != at(30) {
		t.Fatalf("changes every second from 20 s are synced at %v, want 30 s (10 s after the first)", d.due.Sub(at(0)))
	}
}

func TestWatchLoopSyncsAtStartAndAfterAChange(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(0, 0))
	rec := &recorder{synced: make(chan struct{}, 10)}
	w := &Watcher{Options: DefaultOptions(), Sync: rec.sync, Debounce: 2 * time.Second, Resync: time.Hour, Clock: clk,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var mu sync.Mutex
	services := []corev1.Service{lbService("shop", "web", `[{"port":"http","hosts":["shop.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.1")}
	list := func() (Cluster, error) {
		mu.Lock()
		defer mu.Unlock()
		return Cluster{Services: []corev1.Service{*services[0].DeepCopy()}}, nil
	}
	kick := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.loop(ctx, kick, nil, list) }()
	defer func() { cancel(); <-done }()

	waitSynced(t, rec) // at start
	mu.Lock()
	services[0].Status.LoadBalancer.Ingress[0].IP = "10.0.0.2"
	mu.Unlock()
	kick <- struct{}{}
	waitTimers(t, clk, 2) // the resync ticker and now the debounce timer
	clk.Step(2 * time.Second)
	waitSynced(t, rec)
	clk.Step(time.Hour) // the resync tick
	waitSynced(t, rec)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.models) != 3 {
		t.Fatalf("%d syncs, want 3 (start, change, resync)", len(rec.models))
	}
	if got := rec.models[1].Backends[0].Servers[0].Addr.String(); got != "10.0.0.2" {
		t.Fatalf("the sync after the change used address %s, want 10.0.0.2", got)
	}
}

// TestWatchLoopSyncsTheRestWhenOneClaimIsBad (issue 17, finding 6): a
// duplicate host is logged with the apps involved, and everything else,
// the older claim included, is still synced.
func TestWatchLoopSyncsTheRestWhenOneClaimIsBad(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(0, 0))
	var log testenv.SyncBuffer
	rec := &recorder{synced: make(chan struct{}, 10)}
	w := &Watcher{Options: DefaultOptions(), Sync: rec.sync, Debounce: time.Second, Clock: clk, Log: slog.New(slog.NewTextHandler(&log, nil))}
	bad := []corev1.Service{
		lbService("a", "one", `[{"port":"http","hosts":["x.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.1"),
		lbService("b", "two", `[{"port":"http","hosts":["x.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.2"),
		lbService("c", "three", `[{"port":"http","hosts":["three.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.3"),
	}
	if err := w.syncOnce(context.Background(), func() (Cluster, error) { return Cluster{Services: bad}, nil }); err != nil {
		t.Fatalf("bad wiring is logged, not retried; got %v", err)
	}
	if len(rec.models) != 1 {
		t.Fatalf("%d syncs, want 1: the good claims are synced", len(rec.models))
	}
	var hosts []string
	for _, r := range rec.models[0].Routes {
		hosts = append(hosts, r.Host+"="+r.Backend)
	}
	if want := []string{"three.company.example=tsys-ci.c.three.http", "x.company.example=tsys-ci.a.one.http"}; !reflect.DeepEqual(hosts, want) {
		t.Errorf("synced routes %v, want %v", hosts, want)
	}
	if !strings.Contains(log.String(), "edge claims refused and left out; syncing the rest") || !strings.Contains(log.String(), "a/one (port http) and b/two (port http)") {
		t.Fatalf("log does not name the problem and the apps:\n%s", log.String())
	}
}

func waitSynced(t *testing.T, rec *recorder) {
	t.Helper()
	select {
	case <-rec.synced:
	case <-time.After(10 * time.Second):
		t.Fatal("no sync")
	}
}

// waitTimers waits until the loop has armed n timers or tickers on clk.
func waitTimers(t *testing.T, clk *clocktesting.FakeClock, n int) {
	t.Helper()
	edgetest.WaitFor(t, 10*time.Second, "the loop to arm its timers", func() error {
		if clk.Waiters() < n {
			return context.DeadlineExceeded
		}
		return nil
	})
}
