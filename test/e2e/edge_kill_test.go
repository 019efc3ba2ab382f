//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/platform/edge"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/labaddons"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

const (
	edgeKillNS    = "e2e-edge-kill"
	edgeKillHost  = "killed.company.example"
	edgeAbortNS   = "e2e-edge-kill-abort"
	edgeAbortHost = "aborted.company.example"
)

// edgeWeightsSeen is one reading of an app's weights at the edge: the
// Service's edge-weights annotation (what promote asked) and the weights
// of the backend's color servers in HAProxy's runtime (what the edge does).
type edgeWeightsSeen struct {
	at                  time.Time
	annotation, haproxy map[string]int
	err                 error
}

func (s edgeWeightsSeen) same(o edgeWeightsSeen) bool {
	return fmt.Sprint(s.annotation, s.haproxy, s.err) == fmt.Sprint(o.annotation, o.haproxy, o.err)
}

func (s edgeWeightsSeen) String() string {
	if s.err != nil {
		return fmt.Sprintf("%s error: %v", s.at.UTC().Format("15:04:05.000"), s.err)
	}
	return fmt.Sprintf("%s annotation %v, HAProxy %v", s.at.UTC().Format("15:04:05.000"), s.annotation, s.haproxy)
}

// readEdgeWeights reads app's weights from its Service and from HAProxy's
// statistics (show stat, as promote's edge.statsURL is read), for the
// colors blue and green of the app's http port.
func readEdgeWeights(ctx context.Context, c kubernetes.Interface, e *edgeLab, ns, app string) edgeWeightsSeen {
	s := edgeWeightsSeen{at: time.Now()}
	svc, err := c.CoreV1().Services(ns).Get(ctx, app, metav1.GetOptions{})
	if err != nil {
		s.err = err
		return s
	}
	if a := svc.Annotations[contract.AnnotationEdgeWeights]; a != "" {
		if err := json.Unmarshal([]byte(a), &s.annotation); err != nil {
			s.err = fmt.Errorf("annotation %q: %w", a, err)
			return s
		}
	}
	s.haproxy, s.err = haproxyWeights(ctx, e, ns, app)
	return s
}

// haproxyWeights reads the weights of app's color servers from HAProxy's
// show stat.
func haproxyWeights(ctx context.Context, e *edgeLab, ns, app string) (map[string]int, error) {
	st, err := e.rt.Stats(ctx)
	if err != nil {
		return nil, err
	}
	be := edge.BackendName(ns, app, "http")
	w := map[string]int{}
	for _, color := range []string{"blue", "green"} {
		if row, ok := st[be+"/"+color]; ok {
			w[color], _ = strconv.Atoi(row["weight"])
		}
	}
	return w, nil
}

// watchEdgeWeights reads the weights every 100 ms until stop, which
// returns every reading that differed from the one before.
func watchEdgeWeights(ctx context.Context, c kubernetes.Interface, e *edgeLab, ns, app string) (stop func() []edgeWeightsSeen) {
	var (
		mu      sync.Mutex
		changes []edgeWeightsSeen
		wg      sync.WaitGroup
	)
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			s := readEdgeWeights(ctx, c, e, ns, app)
			mu.Lock()
			if n := len(changes); n == 0 || !changes[n-1].same(s) {
				changes = append(changes, s)
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() []edgeWeightsSeen {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return changes
	}
}

// killedEdgeCanary is a canary promote of v2 at the HAProxy edge (as in
// TestPromoteJudgedAtTheEdge: HAProxy on the host kept by `edge sync
// --watch --by-version`, the pool's edge.statsURL) killed (SIGKILL) while
// the edge holds its first step, 25 %; the load through the edge, the
// timeline and the edge's weights are still being watched.
type killedEdgeCanary struct {
	c                  kubernetes.Interface
	e                  *edgeLab
	ns, host, dir, v2  string
	oldColor, newColor string
	first              map[string]int // the first step's weights
	tl                 *timeline
	l                  *load
	stopWeights        func() []edgeWeightsSeen
	holder             string
	start, killedAt    time.Time
	atKill             edgeWeightsSeen // read right after the kill
}

// killCanaryAtTheEdge deploys v1 (tag kv1) of the hello app with host in
// ns behind the edge, starts the load and a canary promote of v2 (kv2;
// steps 25, 50, 100) and kills it once HAProxy shows the first step.
func killCanaryAtTheEdge(ctx context.Context, t *testing.T, ns, host string) *killedEdgeCanary {
	t.Helper()
	haproxy := testenv.LookPath(t, "haproxy")
	bin, err := tsysCI()
	if err != nil {
		t.Fatal(err)
	}
	k := &killedEdgeCanary{c: client(t), ns: ns, host: host}
	v1 := helloImage(t, "kv1")
	k.v2 = helloImage(t, "kv2")
	k.dir = specNamespace(ctx, t, k.c, ns, helloSpecFor(moreApp, ns, 2, 3, `  type: canary
  canary: {steps: [25, 50, 100], stepPause: 10s}
  blueGreen: {scaleDownDelay: 10s}`, host))
	k.e = edgeByVersion(ctx, t, k.c, bin, haproxy, ns, host, moreApp, k.dir, v1)

	svc, err := k.c.CoreV1().Services(ns).Get(ctx, moreApp, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k.oldColor = svc.Spec.Selector[contract.LabelColor]
	k.newColor = map[string]string{"blue": "green", "green": "blue"}[k.oldColor]
	k.first = map[string]int{k.oldColor: 75, k.newColor: 25}

	k.tl = watchRollout(t, ns)
	k.l = startLoadWith("https://"+host+"/", k.e.clients(t, nil, host))
	// A client of its own, as the timeline's: client-go's default rate
	// limit would space the polls.
	cfg, err := theLab.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout, cfg.QPS, cfg.Burst = 5*time.Second, 50, 50
	wc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k.stopWeights = watchEdgeWeights(ctx, wc, k.e, ns, moreApp)
	k.start = time.Now()
	k.holder, k.killedAt = killPromoteWhen(ctx, t, k.tl, k.dir, "the edge holding the first canary step (HAProxy at 25 %)",
		func(ev rolloutEvent) bool {
			if ev.phase != rollout.PhaseCanary || ev.step != 0 {
				return false
			}
			w, err := haproxyWeights(ctx, k.e, ns, moreApp)
			return err == nil && fmt.Sprint(w) == fmt.Sprint(k.first)
		}, "--image", k.v2, "--strategy", "canary")
	k.atKill = readEdgeWeights(ctx, wc, k.e, ns, moreApp)
	t.Logf("the edge right after the kill: %s", k.atKill)
	text, st := status(t, ns)
	t.Logf("tsys-ci status right after the kill:\n%s", text)
	if st.Phase != rollout.PhaseCanary || st.Step != 0 || st.Candidate == nil || st.Candidate.Image != k.v2 {
		t.Errorf("status after the kill: phase %s step %d, candidate %v; want step 1 of the canary of v2", st.Phase, st.Step+1, st.Candidate)
	}
	return k
}

// finish stops the load, the timeline and the weights' watch, reports the
// load, and checks that from the kill until until (when a process that
// took the dead lease over started) the edge held the first step, in
// HAProxy and in the Service's annotation. It returns the weights' changes.
func (k *killedEdgeCanary) finish(ctx context.Context, t *testing.T, what string, until time.Time) ([]edgeWeightsSeen, map[string][]string) {
	t.Helper()
	took := time.Since(k.start)
	settle(ctx, 3*time.Second)
	changes := k.stopWeights()
	total, answers, failures := k.l.finish(t)
	evs := k.tl.stop()
	report(t, what, took, total, answers, failures)
	t.Logf("timeline:\n%s", eventLines(evs))
	// The poll keeps changes only: the reading right after the kill, then
	// every change after it until until.
	var lines []string
	dead, held := 1, k.atKill.err == nil && k.holds(k.atKill)
	for _, s := range changes {
		lines = append(lines, s.String())
		if !s.at.After(k.atKill.at) || s.at.After(until) {
			continue
		}
		dead++
		if s.err != nil || !k.holds(s) {
			held = false
		}
	}
	t.Logf("edge weights (Service annotation, HAProxy's show stat), each change, polled every 100 ms:\n  %s", strings.Join(lines, "\n  "))
	t.Logf("the promote was dead %s (kill %s, the process that took over started %s); %d readings in force then",
		until.Sub(k.killedAt).Round(100*time.Millisecond), k.killedAt.UTC().Format("15:04:05.000"), until.UTC().Format("15:04:05.000"), dead)
	if !held {
		t.Errorf("while the promote was dead the edge did not hold the recorded step %v", k.first)
	}
	return changes, failures
}

// holds says whether a reading shows the first step, in the annotation
// and in HAProxy.
func (k *killedEdgeCanary) holds(s edgeWeightsSeen) bool {
	return fmt.Sprint(s.annotation) == fmt.Sprint(k.first) && fmt.Sprint(s.haproxy) == fmt.Sprint(k.first)
}

// newWeights is HAProxy's weight of the new version, each value once,
// from the reading right after the kill on.
func (k *killedEdgeCanary) newWeights(changes []edgeWeightsSeen) []int {
	out := []int{k.atKill.haproxy[k.newColor]}
	for _, s := range changes {
		if s.err == nil && s.at.After(k.atKill.at) && out[len(out)-1] != s.haproxy[k.newColor] {
			out = append(out, s.haproxy[k.newColor])
		}
	}
	return out
}

// TestPromoteKilledCanaryAtTheEdge (issue 23): a canary promote at the
// HAProxy edge is killed (SIGKILL) while the edge holds its first step
// (25 %); while the promote is dead, the edge keeps the weights the
// recorded state says, in HAProxy and in the Service's annotation; the
// re-run of the same promote takes the dead lease over and resumes from
// that step to the end. Failed requests through the edge are counted.
func TestPromoteKilledCanaryAtTheEdge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	k := killCanaryAtTheEdge(ctx, t, edgeKillNS, edgeKillHost)
	keepEdgePool(ctx, t, k.c, k.e)
	r := rerunAfterKill(ctx, t, k.c, k.ns, k.dir, k.holder, k.killedAt, "--image", k.v2, "--strategy", "canary")
	changes, failures := k.finish(ctx, t, "v1 -> v2 canary at the edge killed in step 1 -> re-run resumed", time.Now().Add(-r.took))

	if strings.Contains(r.stderr, "no edge stats URL in the pool") {
		t.Errorf("the re-run found no edge.statsURL in the lab's promote pool (did another run's TestMain rewrite it?)")
	}
	if !r.result.Resumed || r.result.Result != rollout.ResultPromoted || !strings.Contains(r.stderr, "resuming the promote of "+k.v2+" left at phase Canary") {
		t.Errorf("re-run: result %+v; want the killed canary resumed and promoted", r.result)
	}
	// From the kill on, HAProxy's weight for the new version only went up,
	// through the steps: resumed from step 1, none taken back.
	k.checkEnd(ctx, t, "the re-run", changes, failures, "[25 50 100]", k.newColor, "kv2")
	checkStatus(t, k.ns, "kv2", "kv1", "promoted kv1", "promoted kv2")
}

// TestPromoteKilledCanaryAbortedAtTheEdge (issue 23): the same kill in the
// first canary step at the edge, then `tsys-ci abort`: at once it can
// only ask the dead process (which never answers); once the dead lease has
// expired it takes the lease over and rolls the canary back: HAProxy puts
// all weight back on v1.
func TestPromoteKilledCanaryAbortedAtTheEdge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	k := killCanaryAtTheEdge(ctx, t, edgeAbortNS, edgeAbortHost)
	keepEdgePool(ctx, t, k.c, k.e)
	code, out := abortIn(t, k.dir)
	t.Logf("abort at once: exit %d:\n%s", code, out)
	if code != 0 || !strings.Contains(out, moreApp+": "+rollout.ResultAbortRequested) {
		t.Errorf("abort at once: exit %d; want the abort only asked of the dead holder", code)
	}
	waitLeaseExpired(ctx, t, k.c, k.ns, k.killedAt, k.holder)
	started := time.Now()
	code, out = abortIn(t, k.dir)
	t.Logf("abort after the lease expired: exit %d after %s:\n%s", code, time.Since(started).Round(100*time.Millisecond), out)
	changes, failures := k.finish(ctx, t, "v1 -> v2 canary at the edge killed in step 1 -> aborted", started)
	if code != 0 || !strings.Contains(out, moreApp+": "+rollout.ResultAborted) {
		t.Errorf("abort after the lease expired: exit %d; want the canary aborted", code)
	}
	k.checkEnd(ctx, t, "the abort", changes, failures, "[25 0]", k.oldColor, "kv1")
	text, st := status(t, k.ns)
	t.Logf("tsys-ci status after the abort:\n%s", text)
	if st.Phase != rollout.PhaseStable || st.Active == nil || tagOf(st.Active.Image) != "kv1" || st.Candidate != nil {
		t.Errorf("status after the abort: phase %s, active %v, candidate %v; want Stable on kv1", st.Phase, st.Active, st.Candidate)
	}
}

// checkEnd checks the edge after what ended the killed canary: HAProxy's
// weights of the new version from the kill on were want (fmt's form of
// the list), the edge now weighs color alone at 100 and answers tag.
// Failed requests through the edge are logged against the goal of 0.
func (k *killedEdgeCanary) checkEnd(ctx context.Context, t *testing.T, after string, changes []edgeWeightsSeen, failures map[string][]string, want, color, tag string) {
	t.Helper()
	seen := k.newWeights(changes)
	t.Logf("HAProxy's weight of the new version (%s) from the kill on: %v", k.newColor, seen)
	if fmt.Sprint(seen) != want {
		t.Errorf("from the kill on HAProxy weighted the new version %v; want %s", seen, want)
	}
	other := k.oldColor
	if color == k.oldColor {
		other = k.newColor
	}
	if s := readEdgeWeights(ctx, k.c, k.e, k.ns, moreApp); s.err != nil || s.haproxy[color] != 100 || s.haproxy[other] != 0 {
		t.Errorf("after %s the edge shows %s; want %s at 100", after, s, color)
	}
	if answer := k.e.reaches(t, k.host, moreApp); !strings.HasPrefix(answer, tag+" ") {
		t.Errorf("after %s the edge answers %q, want %s", after, answer, tag)
	}
	if n := failedCount(failures); n != 0 {
		t.Logf("%d requests through the edge failed (goal 0)", n)
	}
}

// abortIn runs `tsys-ci abort` of the hello app with the spec in dir.
func abortIn(t *testing.T, dir string) (int, string) {
	t.Helper()
	bin, err := tsysCI()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "abort", "--spec", "tsys-ci.yaml", moreApp)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KUBECONFIG="+theLab.Kubeconfig())
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// keepEdgePool writes the promote pool naming e's statistics page again
// if another run rewrote the lab's shared pool meanwhile (every e2e run's
// TestMain writes it without an edge), and says so.
func keepEdgePool(ctx context.Context, t *testing.T, c kubernetes.Interface, e *edgeLab) {
	t.Helper()
	cm, err := c.CoreV1().ConfigMaps(rollout.DefaultAllocNamespace).Get(ctx, rollout.DefaultAllocName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cm.Data[rollout.PoolKey], e.h.StatsURL) {
		return
	}
	t.Logf("the lab's promote pool lost this edge's statsURL (another run rewrote it): writing it again")
	pool := theAddons.Pool
	pool.Edge = &rollout.EdgeConfig{StatsURL: e.h.StatsURL}
	if err := labaddons.WritePromotePool(ctx, c, pool); err != nil {
		t.Fatal(err)
	}
}
