package edge

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/platform/edge/edgetest"
	"github.com/tsys-group/tsys-ci/test/testenv"
	corev1 "k8s.io/api/core/v1"
)

var socketPrefixes atomic.Int64

// poolOptions are options for a test HAProxy with color pools: its own
// certificate directory, and its own abstract socket names, since tests
// (and other test binaries) run HAProxys side by side on one host.
func poolOptions(t *testing.T) Options {
	opts := versionOptions()
	opts.CertDir = t.TempDir()
	opts.SocketPrefix = fmt.Sprintf("t%d-%d", os.Getpid(), socketPrefixes.Add(1))
	return opts
}

func mustBuildCluster(t *testing.T, opts Options, services []corev1.Service, nodes []corev1.Node) *Model {
	t.Helper()
	m, err := Build(services, nodes, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// shares sends n requests for host through HAProxy from 4 keep-alive
// clients and returns the answers per app.
func shares(t *testing.T, h *haproxyUnderTest, host string, n int64) map[string]int {
	t.Helper()
	l := startLoad(h, host, 4, n)
	l.wg.Wait()
	if l.failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed: %q", l.failed.Load(), n, l.errs)
	}
	return l.byApp
}

func (h *haproxyUnderTest) stat(t *testing.T) map[string]Stat {
	t.Helper()
	s, err := h.rt.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestWeightsAtRunTime (issue 23): promote's weights reach HAProxy through
// the runtime API, never a reload, and split the requests as asked; a
// later reload keeps them.
func TestWeightsAtRunTime(t *testing.T) {
	haproxy := testenv.LookPath(t, "haproxy")
	opts := poolOptions(t)
	host := "shop.company.example"
	edgetest.WriteCert(t, CertPath(opts, host), host)
	// One node (127.0.0.2): each version on its own NodePort there.
	blue, green := edgetest.StartApp(t, "127.0.0.2", "blue"), edgetest.StartApp(t, "127.0.0.2", "green")
	nodes := []corev1.Node{node("n1", "127.0.0.2")}
	cluster := func(weights string) []corev1.Service {
		return []corev1.Service{
			withVersions(lbService("shop", "web", `[{"port":"http","hosts":["`+host+`"]}]`, map[string]int32{"http": 80}, "127.0.0.9"), "blue", weights),
			colorService("shop", "web", "blue", map[string]int32{"http": blue.Port}),
			colorService("shop", "web", "green", map[string]int32{"http": green.Port}),
		}
	}
	m := mustBuildCluster(t, opts, cluster(`{"blue":95,"green":5}`), nodes)
	h := startHAProxy(t, haproxy, m, opts)
	s := h.syncer(t, haproxy, opts)
	mustSync(t, s, m, ActionNone)
	start := h.procs(t)
	be := BackendName("shop", "web", "http")

	const n = 2000
	for _, w := range []struct{ blue, green int }{{95, 5}, {50, 50}, {1, 99}} {
		m = mustBuildCluster(t, opts, cluster(fmt.Sprintf(`{"blue":%d,"green":%d}`, w.blue, w.green)), nodes)
		res, err := s.Sync(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		if w.blue != 95 && (res.Action != ActionRuntime || !strings.Contains(strings.Join(res.Changes, "\n"), fmt.Sprintf("server %s/green: weight ", be))) {
			t.Fatalf("weights %v: sync did %s %q; want the runtime API", w, res.Action, res.Changes)
		}
		st := h.stat(t)
		if st[be+"/blue"]["weight"] != fmt.Sprint(w.blue) || st[be+"/green"]["weight"] != fmt.Sprint(w.green) {
			t.Fatalf("show stat has weights blue %s, green %s; want %v", st[be+"/blue"]["weight"], st[be+"/green"]["weight"], w)
		}
		before := st
		got := shares(t, h, host, n)
		after := h.stat(t)
		total := got["blue"] + got["green"]
		pBlue := 100 * float64(got["blue"]) / float64(total)
		counted := atoi(after[be+"/blue"]["stot"]) - atoi(before[be+"/blue"]["stot"])
		t.Logf("weights blue %d / green %d: %d requests, blue answered %d (%.2f %%), green %d (%.2f %%); HAProxy counted %d on blue",
			w.blue, w.green, total, got["blue"], pBlue, got["green"], 100-pBlue, counted)
		if d := pBlue - float64(w.blue); d > 3 || d < -3 {
			t.Errorf("weights %v: blue got %.2f %% of the requests", w, pBlue)
		}
		if counted != got["blue"] {
			t.Errorf("HAProxy counted %d requests on blue's top-level server, the clients %d", counted, got["blue"])
		}
		if cfg, _ := os.ReadFile(filepath.Join(h.EdgeDir, FileConfig)); !strings.Contains(string(cfg), fmt.Sprintf("server green %s weight %d\n", PoolAddress(opts.SocketPrefix, be+".green"), w.green)) {
			t.Fatalf("the installed fragment does not have green's weight %d:\n%s", w.green, cfg)
		}
	}
	if now := h.procs(t); now.Reloads != start.Reloads || now.Workers[0].PID != start.Workers[0].PID {
		t.Fatalf("weight changes reloaded HAProxy: before %+v, after %+v", start, now)
	}

	t.Run("a reload keeps the weights", func(t *testing.T) {
		blog := edgetest.StartApp(t, "127.0.0.4", "blog")
		services := append(cluster(`{"blue":1,"green":99}`),
			lbService("blog", "blog", `[{"port":"http","hosts":["blog.company.example"]}]`, map[string]int32{"http": blog.Port}, blog.IP))
		mustSync(t, s, mustBuildCluster(t, opts, services, nodes), ActionReload)
		st := h.stat(t)
		if st[be+"/blue"]["weight"] != "1" || st[be+"/green"]["weight"] != "99" {
			t.Fatalf("after a reload show stat has weights blue %s, green %s; want 1 and 99", st[be+"/blue"]["weight"], st[be+"/green"]["weight"])
		}
	})

	t.Run("a bad annotation keeps the app on its selected color", func(t *testing.T) {
		services := cluster(`{"blue":1,"green":98}`)
		m, err := Build(services, nodes, opts)
		if err == nil || !strings.Contains(err.Error(), contract.AnnotationEdgeWeights) {
			t.Fatalf("Build = %v; want the bad annotation reported", err)
		}
		res, err := s.Sync(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("sync with a bad annotation: %s %q", res.Action, res.Changes)
		if st := h.stat(t); st[be+"/blue"]["weight"] != "100" || st[be+"/green"]["weight"] != "0" {
			t.Fatalf("with a bad annotation show stat has weights blue %s, green %s; want the selected color (blue) at 100", st[be+"/blue"]["weight"], st[be+"/green"]["weight"])
		}
	})
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}
