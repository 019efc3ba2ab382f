//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/platform/edge"
	"github.com/tsys-group/tsys-ci/platform/edge/edgetest"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/labaddons"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

const (
	versionsNS   = "e2e-edge-versions"
	versionsApp  = "judged"
	versionsHost = "judged.company.example"
)

// versionsSpec is the hello app with a host at the edge, readiness and
// probes on /healthz (a version that fails its users on / passes both),
// and an analysis that judges it by its users' requests at the edge over
// a 10 s window.
func versionsSpec() string {
	return fmt.Sprintf(`name: %s
namespace: %s
replicas: 2
ports:
  - name: http
    containerPort: 8080
    protocol: http
    expose: true
    hosts: [%s]
health:
  readiness: {http: /healthz, port: http, period: 1s}
resources:
  requests: {cpu: 10m, memory: 16Mi}
  limits: {memory: 64Mi}
shutdown:
  drain: 5s
  gracePeriod: 10s
strategy:
  type: blueGreen
  blueGreen: {scaleDownDelay: 30s}
  canary: {steps: [5, 25, 100], stepPause: 8s}
probes:
  - name: health
    port: http
    path: /healthz
    expectStatus: 200
    successes: 3
    interval: 1s
    timeout: 20s
analysis:
  maxErrorRate: 1%%
  minRequests: 10
  window: 10s
`, versionsApp, versionsNS, versionsHost)
}

// TestPromoteJudgedAtTheEdge: promote at the HAProxy edge as a team with a
// host name runs it. A real HAProxy on the host, kept by `tsys-ci edge
// sync --watch --by-version`; the promote pool names HAProxy's statistics
// page; two clients load the app through the edge all along.
//
//  1. v1 by blue/green: the edge serves it by version (one server per
//     color, each over the nodes' NodePorts);
//  2. v2 by canary 5/25/100 with two replicas: each step is an exact edge
//     weight, promote waits until HAProxy shows it and judges v2 by the
//     requests HAProxy counted; no request fails; the share of the load's
//     answers v2 gave at each step is within 2 points of the weight asked
//     (issue 23's table);
//  3. v3 passes its probes and then answers 500 on / (HELLO_FAIL_AFTER):
//     after the switch promote sees the errors in HAProxy's counters and
//     rolls back to v2 on its own (exit 3, Warning Event AnalysisFailed),
//     weights back first. The failed requests users saw are counted.
func TestPromoteJudgedAtTheEdge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	haproxy := testenv.LookPath(t, "haproxy")
	bin, err := tsysCI()
	if err != nil {
		t.Fatal(err)
	}
	c := client(t)
	v1, v2 := helloImage(t, "ev1"), helloImage(t, "ev2")
	v3 := helloImage(t, "ev3", "HELLO_FAIL_AFTER=20s")
	dir := specNamespace(ctx, t, c, versionsNS, versionsSpec())

	// --- 1. the edge by version, then v1 (promote waits for the edge) ---
	e := edgeByVersion(ctx, t, c, bin, haproxy, versionsNS, versionsHost, versionsApp, dir, v1)

	// --- 2. v2 by canary at exact edge weights, under load; a tester
	// sends X-Tsys-Canary: always all along ---
	svc, err := c.CoreV1().Services(versionsNS).Get(ctx, versionsApp, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newColor := "green"
	if svc.Spec.Selector[contract.LabelColor] == "green" {
		newColor = "blue"
	}
	l := startLoadWith("https://"+versionsHost+"/", e.clients(t, nil, versionsHost))
	tester := startTester(e.clients(t, nil, versionsHost)["keep-alive"], "https://"+versionsHost+"/")
	stopWeights := watchWeights(ctx, c, versionsNS, versionsApp)
	start := time.Now()
	code, out := promoteNamed(t, dir, versionsApp, "--image", v2, "--strategy", "canary")
	took := time.Since(start)
	ended := time.Now()
	changes := stopWeights()
	shares := canaryShares(l, changes, newColor, "ev2", ended)
	tested := tester.finish()
	total, answers, failures := l.finish(t)
	report(t, "v1 -> v2 by canary at the edge", took, total, answers, failures)
	checkTester(t, tested, answers, start)
	if code != 0 {
		t.Fatalf("promote v2 (canary): exit %d\n%s", code, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "step ") || strings.Contains(line, "judging") || strings.Contains(line, "requests at the edge") {
			t.Logf("  promote: %s", strings.TrimSpace(line))
		}
	}
	checkShares(t, shares, 2)
	for _, step := range []string{"5% of the edge's requests", "25% of the edge's requests"} {
		if !strings.Contains(out, step) {
			t.Errorf("promote's output does not say %q", step)
		}
	}
	if n := failedCount(failures); n != 0 {
		t.Errorf("%d requests through the edge failed during the canary", n)
	}
	if answers["ev2"] == 0 {
		t.Errorf("no ev2 answer through the edge during the canary: %v", answers)
	}

	// --- 3. v3 fails its users after the switch: rolled back from the edge's counters ---
	l = startLoadWith("https://"+versionsHost+"/", e.clients(t, nil, versionsHost))
	start = time.Now()
	code, out = promoteNamed(t, dir, versionsApp, "--image", v3)
	took = time.Since(start)
	moreAnswers(t, l, 40)
	total, answers, failures = l.finish(t)
	logLoad(t, "v2 -> v3 (fails its users 20 s after it starts) through the edge", total, answers, failures)
	t.Logf("promote v3 took %s, exit %d", took.Round(100*time.Millisecond), code)
	if code != 3 {
		t.Fatalf("promote v3: exit %d, want 3 (rolled back)\n%s", code, out)
	}
	first, last := firstLastFailure(l)
	t.Logf("users' failed requests: %d, from %s to %s (%s)", failedCount(failures), first.UTC().Format("15:04:05.000"), last.UTC().Format("15:04:05.000"), last.Sub(first).Round(10*time.Millisecond))
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "edge") || strings.Contains(line, "roll") {
			t.Logf("  promote: %s", strings.TrimSpace(line))
		}
	}
	ev := waitEvent(ctx, t, versionsNS, versionsApp, rollout.EventAnalysisFailed)
	t.Logf("Event on %s/%s: %s %s: %s", versionsNS, versionsApp, ev.Type, ev.Reason, ev.Message)
	svc, err = c.CoreV1().Services(versionsNS).Get(ctx, versionsApp, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var weights map[string]int
	if err := json.Unmarshal([]byte(svc.Annotations[contract.AnnotationEdgeWeights]), &weights); err != nil {
		t.Fatalf("weights annotation %q: %v", svc.Annotations[contract.AnnotationEdgeWeights], err)
	}
	if color := svc.Spec.Selector[contract.LabelColor]; weights[color] != 100 {
		t.Errorf("after the rollback the Service selects %s with edge weights %v, want that color at 100", color, weights)
	}
	if answer := e.reaches(t, versionsHost, versionsApp); !strings.HasPrefix(answer, "ev2 ") {
		t.Errorf("after the rollback the edge answers %q, want ev2", answer)
	}
}

// edgeByVersion is the edge as a team with a host name runs promote
// behind it: HAProxy on the host for host (its statistics page named as
// the promote pool's edge.statsURL until the test ends), kept by `tsys-ci
// edge sync --watch --by-version` on ns; then v1 of app promoted from dir,
// served by the edge by version.
func edgeByVersion(ctx context.Context, t *testing.T, c kubernetes.Interface, bin, haproxy, ns, host, app, dir, v1 string) *edgeLab {
	t.Helper()
	// The edge host: HAProxy with a statistics page, the pool naming it.
	e := startEdge(t, bin, haproxy, ns, host)
	e.byVersion = true
	pool := theAddons.Pool
	pool.Edge = &rollout.EdgeConfig{StatsURL: e.h.StatsURL}
	if err := labaddons.WritePromotePool(ctx, c, pool); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := labaddons.WritePromotePool(context.Background(), c, theAddons.Pool); err != nil {
			t.Errorf("putting the promote pool back: %v", err)
		}
	})
	t.Logf("promote pool: edge statsURL %s", e.h.StatsURL)

	// The edge by version, then v1 (promote waits for the edge).
	var log testenv.SyncBuffer
	watch := exec.Command(bin, append([]string{"edge", "sync", "--watch", "--debounce", "200ms"}, e.flags()...)...)
	watch.Stdout, watch.Stderr = &log, &log
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = watch.Process.Signal(syscall.SIGTERM)
		_ = watch.Wait()
		if t.Failed() {
			t.Logf("edge sync --watch --by-version log:\n%s", log.String())
		}
	})
	edgetest.WaitFor(t, 30*time.Second, "edge sync --watch to list the namespace", func() error {
		if !strings.Contains(log.String(), "watching Services") {
			return fmt.Errorf("log so far:\n%s", log.String())
		}
		return nil
	})
	if code, out := promoteNamed(t, dir, app, "--image", v1); code != 0 {
		t.Fatalf("promote v1: exit %d\n%s", code, out)
	}
	e.reaches(t, host, app)
	cfg, err := os.ReadFile(filepath.Join(e.h.EdgeDir, edge.FileConfig))
	if err != nil {
		t.Fatal(err)
	}
	backend := fmt.Sprintf("tsys-ci.%s.%s.http", ns, app)
	if !strings.Contains(string(cfg), "listen "+backend+".") {
		t.Fatalf("the edge does not serve %s by version:\n%s", app, cfg)
	}
	t.Logf("v1 through the edge, served by version")
	return e
}

// firstLastFailure says when the load's first and last failed requests
// came (zero times if none failed).
func firstLastFailure(l *load) (first, last time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hits {
		if h.err == "" {
			continue
		}
		if first.IsZero() {
			first = h.at
		}
		last = h.at
	}
	return first, last
}

// waitEvent waits for an Event of reason on the Service app in ns.
func waitEvent(ctx context.Context, t *testing.T, ns, app, reason string) eventSeen {
	t.Helper()
	c := client(t)
	var seen eventSeen
	edgetest.WaitFor(t, 30*time.Second, "a "+reason+" Event on "+ns+"/"+app, func() error {
		list, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("involvedObject.name", app).String()})
		if err != nil {
			return err
		}
		for _, ev := range list.Items {
			if ev.Reason == reason {
				seen = eventSeen{Type: ev.Type, Reason: ev.Reason, Message: ev.Message}
				return nil
			}
		}
		return fmt.Errorf("%d Events, none %s", len(list.Items), reason)
	})
	return seen
}

type eventSeen struct{ Type, Reason, Message string }

// tester sends requests with the canary header, one at a time, and
// records which version answered each, and when.
type tester struct {
	stop    chan struct{}
	done    chan struct{}
	answers []testerAnswer
}

type testerAnswer struct {
	at      time.Time
	version string // "" for a failed request
}

func startTester(hc *http.Client, url string) *tester {
	tr := &tester{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tr.stop:
				return
			case <-tick.C:
			}
			a := testerAnswer{at: time.Now()}
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err == nil {
				req.Header.Set(contract.CanaryHeader, contract.CanaryAlways)
				var resp *http.Response
				if resp, err = hc.Do(req); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if f := strings.Fields(string(b)); resp.StatusCode == http.StatusOK && len(f) > 0 {
						a.version = f[0]
					}
				}
			}
			tr.answers = append(tr.answers, a)
		}
	}()
	return tr
}

func (tr *tester) finish() []testerAnswer {
	close(tr.stop)
	<-tr.done
	return tr.answers
}

// checkTester (issue 23 item 4): once the tester's requests reached the
// new version (promote names it the edge's candidate when its pods are
// ready, before any weight), they stay on it through the canary steps
// whatever the weights, while the users follow the weights.
func checkTester(t *testing.T, tested []testerAnswer, users map[string]int, start time.Time) {
	t.Helper()
	before, after := map[string]int{}, map[string]int{}
	var first time.Time
	for _, a := range tested {
		if a.version == "ev2" && first.IsZero() {
			first = a.at
		}
		if first.IsZero() {
			before[a.version]++
		} else {
			after[a.version]++
		}
	}
	t.Logf("tester with %s: %s: first ev2 %s after the promote started; before it %v, from it on %v (users over the whole promote: %v)",
		contract.CanaryHeader, contract.CanaryAlways, first.Sub(start).Round(100*time.Millisecond), before, after, users)
	n := after["ev1"] + after["ev2"] + after[""]
	if first.IsZero() || after["ev2"]*100 < n*99 {
		t.Errorf("the tester's requests did not stay on the new version once they reached it: %v of %d", after, n)
	}
}
