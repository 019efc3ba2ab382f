package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/platform/edge"
	"github.com/tsys-group/tsys-ci/platform/edge/edgetest"
	"github.com/tsys-group/tsys-ci/test/apiserver"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// manyApps is an edge serving n apps by version, as `tsys-ci edge sync
// --watch --by-version` keeps it: Services in a real API server (each app
// Service with its two color Services, as promote writes them), the
// Watcher and Syncer, a real HAProxy.
type manyApps struct {
	c    kubernetes.Interface
	ns   string
	rt   edge.Runtime
	log  *testenv.SyncBuffer
	apps []string
}

// appName is the i-th app's name.
func appName(i int) string { return fmt.Sprintf("app%02d", i) }

// startManyApps creates n apps (blue live at 100, green at 0) and one
// node, starts HAProxy and the watch on them, and returns once HAProxy
// serves every app.
func startManyApps(tb testing.TB, n int) *manyApps {
	tb.Helper()
	haproxy := testenv.LookPath(tb, "haproxy")
	ctx := context.Background()
	c := apiserver.Client(tb)
	ns := apiserver.Namespace(tb, c, "edge-weights")
	opts := edge.DefaultOptions()
	opts.ByVersion = true
	opts.CertDir = tb.TempDir()
	opts.SocketPrefix = fmt.Sprintf("w%d", os.Getpid())

	// One node the color pools point at (its NodePorts need not answer:
	// the weights are what is measured).
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: ns + "-n1"}}
	node, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}) })
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.2"}}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		tb.Fatal(err)
	}

	m := &manyApps{c: c, ns: ns, log: &testenv.SyncBuffer{}}
	// The API server alone deletes no namespace's Services: their cluster
	// addresses are given back here.
	tb.Cleanup(func() {
		list, err := c.CoreV1().Services(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			tb.Errorf("listing the Services to delete: %v", err)
			return
		}
		for _, s := range list.Items {
			if err := c.CoreV1().Services(ns).Delete(context.Background(), s.Name, metav1.DeleteOptions{}); err != nil {
				tb.Errorf("deleting Service %s: %v", s.Name, err)
			}
		}
	})
	for i := range n {
		app := appName(i)
		host := app + ".company.example"
		edgetest.WriteCert(tb, edge.CertPath(opts, host), host)
		for _, color := range []string{"blue", "green"} {
			sel := map[string]string{contract.LabelManagedBy: contract.ManagedBy, contract.LabelAppName: app, contract.LabelColor: color}
			cs := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: contract.ColorServiceName(app, color), Labels: sel},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: sel,
					Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
			}
			if _, err := c.CoreV1().Services(ns).Create(ctx, cs, metav1.CreateOptions{}); err != nil {
				tb.Fatal(err)
			}
		}
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app,
				Labels: map[string]string{contract.LabelManagedBy: contract.ManagedBy, contract.LabelAppName: app},
				Annotations: map[string]string{
					contract.AnnotationEdge:        `[{"port":"http","hosts":["` + host + `"]}]`,
					contract.AnnotationEdgeWeights: `{"blue":100,"green":0}`,
				}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
				Selector: map[string]string{contract.LabelManagedBy: contract.ManagedBy, contract.LabelAppName: app, contract.LabelColor: "blue"},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
		}
		created, err := c.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			tb.Fatal(err)
		}
		setIP(tb, c, created, fmt.Sprintf("127.0.1.%d", i+1))
		m.apps = append(m.apps, app)
	}

	edgeDir := filepath.Join(tb.TempDir(), "edge")
	if err := edge.Render(&edge.Model{}, opts).Write(edgeDir); err != nil {
		tb.Fatal(err)
	}
	h := edgetest.Start(tb, haproxy, edgeDir)
	m.rt = edge.Runtime{StatsSocket: h.StatsSocket, MasterSocket: h.MasterSocket}
	s := &edge.Syncer{Dir: edgeDir, HAProxy: haproxy, Configs: []string{h.Config}, Runtime: m.rt, Options: opts,
		Log: slog.New(slog.NewTextHandler(m.log, nil)), ReloadTimeout: 20 * time.Second}
	// The flags' values of `edge sync --watch` (cmd/tsys-ci/edge.go).
	w := &edge.Watcher{Client: c, Namespace: ns, Options: opts, Sync: s.Sync, Log: s.Log,
		Debounce: 200 * time.Millisecond, Resync: time.Hour, RetryAfter: time.Second}
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Watcher.Run: %v", err)
		}
		if tb.Failed() {
			tb.Logf("watch log:\n%s", m.log.String())
		}
	})
	edgetest.WaitFor(tb, 60*time.Second, fmt.Sprintf("HAProxy to serve the %d apps by version", n), func() error {
		st, err := m.rt.ServersState(ctx)
		if err != nil {
			return err
		}
		for _, app := range m.apps {
			if s, ok := st[m.backend(app)+"/blue"]; !ok || s.Weight != 100 {
				return fmt.Errorf("%s: %+v", app, s)
			}
		}
		return nil
	})
	return m
}

func (m *manyApps) backend(app string) string { return edge.BackendName(m.ns, app, "http") }

// setWeights writes app's edge-weights annotation as promote's route does
// (one write of the app Service) and returns how long until HAProxy's
// runtime (show servers state) has green's weight, polled every 2 ms.
func (m *manyApps) setWeights(tb testing.TB, app string, green int) time.Duration {
	tb.Helper()
	ctx := context.Background()
	weights, err := json.Marshal(map[string]int{"blue": 100 - green, "green": green})
	if err != nil {
		tb.Fatal(err)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{contract.AnnotationEdgeWeights: string(weights)}}})
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	if _, err := m.c.CoreV1().Services(m.ns).Patch(ctx, app, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		tb.Fatal(err)
	}
	deadline := start.Add(20 * time.Second)
	for {
		st, err := m.rt.ServersState(ctx)
		if err == nil && st[m.backend(app)+"/green"].Weight == green && st[m.backend(app)+"/blue"].Weight == 100-green {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("HAProxy did not show %s at green %d within 20 s: %+v, %v", app, green, st[m.backend(app)+"/green"], err)
		}
		time.Sleep(2 * time.Millisecond) // the poll's period, not a wait for a condition
	}
}

// greenFor is the i-th change's weight of green: every change differs
// from the one 50 changes before on the same app.
func greenFor(i int) int { return 1 + i%98 }

// TestWeightChangeWithFiftyApps (issue 23): with 50 apps synced by
// version, a weight change promote writes reaches HAProxy through the
// runtime API (no reload) and changes that app alone.
func TestWeightChangeWithFiftyApps(t *testing.T) {
	m := startManyApps(t, 50)
	before := procs(t, m.rt)
	for i := range 3 {
		app := m.apps[i*17]
		took := m.setWeights(t, app, greenFor(i))
		t.Logf("%s green %d: HAProxy showed it %s after the write", app, greenFor(i), took.Round(time.Millisecond))
	}
	if after := procs(t, m.rt); after.Reloads != before.Reloads || after.Workers[0].PID != before.Workers[0].PID {
		t.Fatalf("weight changes reloaded HAProxy: before %+v, after %+v", before, after)
	}
	st, err := m.rt.ServersState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	changed := 0
	for _, app := range m.apps {
		if st[m.backend(app)+"/green"].Weight != 0 {
			changed++
		}
	}
	if changed != 3 {
		t.Errorf("%d apps have a green weight in HAProxy, want the 3 changed", changed)
	}
	if !strings.Contains(m.log.String(), "action=runtime") {
		t.Errorf("the watch log says no runtime sync:\n%s", m.log.String())
	}
}

// BenchmarkWeightChangeWithFiftyApps (issue 23): the time from promote's
// write of one app's weights (the Service annotation) until HAProxy's
// runtime shows them, with 50 apps synced by version; p50, p99 and max
// over b.N changes, one app after another.
func BenchmarkWeightChangeWithFiftyApps(b *testing.B) {
	m := startManyApps(b, 50)
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		took = append(took, m.setWeights(b, m.apps[i%len(m.apps)], greenFor(i)))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[max(0, len(took)*99/100-1)].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
}
