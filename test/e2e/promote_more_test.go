//go:build e2e

package e2e

// Helpers of the promote tests beyond blue/green (promote_canary_test.go,
// promote_rollback_test.go, promote_kill_test.go): one spec per test in
// its own fixed namespace, a timeline of what the app's Service and
// rollout state said while the load ran, and times measured from a switch.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/rollout"
)

// The app every test of these files promotes, each in its own namespace
// (fixed names: a run reuses its address on the shared pool).
const moreApp = promoteApp

// helloSpec is the spec of the hello app in ns with replicas pods and the
// strategy block given (YAML, indented by two spaces under strategy:).
func helloSpec(ns string, replicas, successes int, strategy string) string {
	return helloSpecFor(moreApp, ns, replicas, successes, strategy)
}

// helloSpecFor is the hello app's spec under the name app in ns: the
// strategy block as for helloSpec, probes wanting successes answers in a
// row, and the host names the edge routes to its port (none if empty). The
// promote, serve and edge tests all deploy it.
func helloSpecFor(app, ns string, replicas, successes int, strategy string, hosts ...string) string {
	hostLine := ""
	if len(hosts) > 0 {
		hostLine = "\n    hosts: [" + strings.Join(hosts, ", ") + "]"
	}
	return fmt.Sprintf(`name: %s
namespace: %s
replicas: %d
ports:
  - name: http
    containerPort: 8080
    protocol: http
    expose: true%s
health:
  readiness: {http: /, port: http, period: 1s}
resources:
  requests: {cpu: 10m, memory: 16Mi}
  limits: {memory: 64Mi}
shutdown:
  drain: 5s
  gracePeriod: 10s
strategy:
%s
probes:
  - name: health
    port: http
    path: /healthz
    expectStatus: 200
    successes: %d
    interval: 1s
    timeout: 20s
`, app, ns, replicas, hostLine, strategy, successes)
}

// specNamespace deletes ns if an earlier run left it, creates it again,
// deletes it when the test ends, and writes spec as tsys-ci.yaml into a
// new folder it returns.
func specNamespace(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, spec string) string {
	t.Helper()
	freshNamespace(ctx, t, c, ns)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tsys-ci.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// appURL is the app's address through MetalLB, as its Service says.
func appURL(ctx context.Context, t *testing.T, c kubernetes.Interface, ns string) string {
	t.Helper()
	svc, err := c.CoreV1().Services(ns).Get(ctx, moreApp, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := svc.Annotations[rollout.AnnotationLBIPs]
	if addr == "" || len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service %s/%s has no address annotation or not one port: %v %v", ns, moreApp, svc.Annotations, svc.Spec.Ports)
	}
	return fmt.Sprintf("http://%s:%d/", addr, svc.Spec.Ports[0].Port)
}

// firstAnswerAfter waits for the app's address to answer after the first
// promote of a new app returned (MetalLB has to announce a new address)
// and logs how long that took.
func firstAnswerAfter(ctx context.Context, t *testing.T, url string, promoted time.Time) {
	t.Helper()
	answersFrom(ctx, t, url, 1)
	t.Logf("%s answered %s after the first promote returned", url, time.Since(promoted).Round(100*time.Millisecond))
}

// promoteRun is one finished tsys-ci command.
type promoteRun struct {
	code   int
	stdout string
	stderr string
	result rollout.Result
	took   time.Duration
}

// runPromote runs tsys-ci promote of moreApp in dir and decodes its JSON
// result (when it printed one).
func runPromote(t *testing.T, dir string, args ...string) promoteRun {
	t.Helper()
	return runPromoteEnv(t, dir, nil, args...)
}

// runPromoteEnv is runPromote with env added to the command's environment
// (VAR=value entries).
func runPromoteEnv(t *testing.T, dir string, env []string, args ...string) promoteRun {
	t.Helper()
	cmd := promoteCmd(t, dir, moreApp, args...)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := promoteRun{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("tsys-ci promote %s: %v", strings.Join(args, " "), err)
	}
	if strings.TrimSpace(r.stdout) != "" {
		if err := json.Unmarshal([]byte(r.stdout), &r.result); err != nil {
			t.Errorf("tsys-ci promote %s printed no JSON result: %v\n%s", strings.Join(args, " "), err, r.stdout)
		}
	}
	return r
}

// mustPromoteRun fails the test unless the promote exited 0.
func mustPromoteRun(t *testing.T, dir string, args ...string) promoteRun {
	t.Helper()
	r := runPromote(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("tsys-ci promote %s: exit %d\n%s\n%s", strings.Join(args, " "), r.code, r.stderr, r.stdout)
	}
	return r
}

// tagOf names a hello image by its tag ("v2"), for readable histories.
func tagOf(ref string) string {
	helloMu.Lock()
	defer helloMu.Unlock()
	for tag, r := range helloPushed {
		if r == ref {
			return tag
		}
	}
	return ref
}

// rolloutEvent is what one poll of the app saw, when it differed from
// the poll before: the Service's color selector ("both" while a canary
// splits traffic) and the rollout state.
type rolloutEvent struct {
	// seen is when the poll that first saw this answered; notBefore is
	// when the poll before it (which still saw the previous event) was
	// sent: the change happened between the two.
	seen, notBefore time.Time
	selector        string
	phase           rollout.Phase
	step            int
	candidate       string // tag
	active          string // tag
}

func (e rolloutEvent) String() string {
	s := fmt.Sprintf("%s Service on %s, phase %s", e.seen.UTC().Format("15:04:05.000"), e.selector, e.phase)
	if e.phase == rollout.PhaseCanary {
		s += fmt.Sprintf(" step %d", e.step+1)
	}
	if e.active != "" {
		s += ", active " + e.active
	}
	if e.candidate != "" {
		s += ", candidate " + e.candidate
	}
	return s
}

// timeline polls the app's Service and rollout state every 50 ms (plus
// the time the reads take) and keeps every change.
type timeline struct {
	mu     sync.Mutex
	events []rolloutEvent
	cancel context.CancelFunc
	done   chan struct{}
}

const timelinePoll = 50 * time.Millisecond

func watchRollout(t *testing.T, ns string) *timeline {
	// A client of its own: client-go's default rate limit (5 requests a
	// second) would space the polls 400 ms apart.
	cfg, err := theLab.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout, cfg.QPS, cfg.Burst = 5*time.Second, 100, 100
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tl := &timeline{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(tl.done)
		var last rolloutEvent
		lastSent := time.Now()
		for {
			sent := time.Now()
			ev, err := pollRollout(ctx, c, ns)
			if err == nil {
				ev.seen, ev.notBefore = time.Now(), lastSent
				ev2, last2 := ev, last
				ev2.seen, ev2.notBefore, last2.seen, last2.notBefore = time.Time{}, time.Time{}, time.Time{}, time.Time{}
				if ev2 != last2 {
					tl.mu.Lock()
					tl.events = append(tl.events, ev)
					tl.mu.Unlock()
					last = ev
				}
				lastSent = sent
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(timelinePoll):
			}
		}
	}()
	t.Cleanup(func() { tl.stop() })
	return tl
}

// pollRollout reads the Service and the state as one snapshot: the
// state's resourceVersion, the state, the Service, then the
// resourceVersion again; when the state changed meanwhile it reads again.
// So an event never pairs a Service with a state it did not coexist with:
// two reads at once did, once, on a loaded machine ("Service on both,
// phase Switched": the state read answered after the switch and its save,
// the Service read before them).
func pollRollout(ctx context.Context, c kubernetes.Interface, ns string) (rolloutEvent, error) {
	stateRV := func() (string, error) {
		cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, rollout.StateName(moreApp), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		return cm.ResourceVersion, nil
	}
	for range 10 {
		var ev rolloutEvent
		before, err := stateRV()
		if err != nil {
			return ev, err
		}
		st, err := rollout.Status(ctx, c, ns, moreApp)
		if err != nil {
			return ev, err
		}
		svc, err := c.CoreV1().Services(ns).Get(ctx, moreApp, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return ev, err
		}
		after, rvErr := stateRV()
		if rvErr != nil {
			return ev, rvErr
		}
		if after != before {
			continue // the state moved while the Service was read
		}
		if err == nil {
			ev.selector = svc.Spec.Selector[rollout.LabelColor]
			if ev.selector == "" {
				ev.selector = "both"
			}
		}
		if st != nil {
			ev.phase, ev.step = st.Phase, st.Step
			if st.Candidate != nil {
				ev.candidate = tagOf(st.Candidate.Image)
			}
			if st.Active != nil {
				ev.active = tagOf(st.Active.Image)
			}
		}
		return ev, nil
	}
	return rolloutEvent{}, errors.New("the rollout state changed at every read of the Service")
}

// stop ends the polling and returns the events.
func (tl *timeline) stop() []rolloutEvent {
	tl.cancel()
	<-tl.done
	return tl.snapshot()
}

func (tl *timeline) snapshot() []rolloutEvent {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]rolloutEvent(nil), tl.events...)
}

// waitFor waits until the latest event satisfies cond and returns it.
func (tl *timeline) waitFor(ctx context.Context, t *testing.T, what string, cond func(rolloutEvent) bool) rolloutEvent {
	t.Helper()
	for {
		evs := tl.snapshot()
		if n := len(evs); n > 0 && cond(evs[n-1]) {
			return evs[n-1]
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; timeline:\n%s", what, ctx.Err(), eventLines(evs))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func eventLines(evs []rolloutEvent) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}

// firstEvent returns the first event from index from on that satisfies
// cond, and its index (-1 if none).
func firstEvent(evs []rolloutEvent, from int, cond func(rolloutEvent) bool) (rolloutEvent, int) {
	for i := max(from, 0); i < len(evs); i++ {
		if cond(evs[i]) {
			return evs[i], i
		}
	}
	return rolloutEvent{}, -1
}

// serviceSwitch is the first event where the Service selects one color
// other than the one it selected when the timeline began: the switch.
func serviceSwitch(t *testing.T, evs []rolloutEvent) rolloutEvent {
	t.Helper()
	if len(evs) == 0 {
		t.Fatal("the timeline saw nothing")
	}
	sw, i := firstEvent(evs, 1, func(e rolloutEvent) bool { return e.selector != evs[0].selector && e.selector != "both" })
	if i < 0 {
		t.Fatalf("the Service never switched to another color:\n%s", eventLines(evs))
	}
	return sw
}

// switchReport measures the load around a switch of the Service to the
// color of version (seen at sw): how long after it answers of other
// versions still came, on new connections and on any (kept-alive
// connections stay on the pods they reached until those stop). When sw is
// the first time version could get traffic (first), an answer of version
// before the switch was made is an error: traffic reached it early. It
// logs the numbers and returns them.
func switchReport(t *testing.T, what string, l *load, sw rolloutEvent, version string, first bool) (newConn, all time.Duration) {
	t.Helper()
	l.mu.Lock()
	hits := append([]hit(nil), l.hits...)
	l.mu.Unlock()
	early := 0
	var lastOldNew, lastOld time.Time
	for _, h := range hits {
		switch {
		case h.version == "":
		case h.version == version:
			if h.at.Before(sw.notBefore) {
				early++
			}
		default:
			if h.at.After(lastOld) {
				lastOld = h.at
			}
			if h.client == "new-connection" && h.at.After(lastOldNew) {
				lastOldNew = h.at
			}
		}
	}
	since := func(at time.Time) time.Duration {
		if at.Before(sw.seen) {
			return 0
		}
		return at.Sub(sw.seen)
	}
	newConn, all = since(lastOldNew), since(lastOld)
	t.Logf("%s: switch seen at %s (made after %s); all new connections on %s %s after it, all traffic %s after it",
		what, sw.seen.UTC().Format("15:04:05.000"), sw.notBefore.UTC().Format("15:04:05.000"), version,
		newConn.Round(10*time.Millisecond), all.Round(10*time.Millisecond))
	if first && early > 0 {
		t.Errorf("%s: %d answers from %s came before the Service was switched to it", what, early, version)
	}
	return newConn, all
}

// status runs tsys-ci status of moreApp in ns, as text and as JSON.
func status(t *testing.T, ns string) (string, *rollout.State) {
	t.Helper()
	bin, err := tsysCI()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir() // no tsys-ci.yaml: -n names the namespace
	env := []string{"KUBECONFIG=" + theLab.Kubeconfig()}
	text := run(t, dir, env, bin, "status", "-n", ns, moreApp)
	var st rollout.State
	if err := json.Unmarshal([]byte(run(t, dir, env, bin, "status", "-n", ns, "-o", "json", moreApp)), &st); err != nil {
		t.Fatalf("tsys-ci status -o json: %v", err)
	}
	return text, &st
}

// checkStatus checks what tsys-ci status says of the app: the version
// serving, the previous one (tag, or "" for none) and the history, oldest
// first, as "RESULT TAG" (e.g. "promoted v1", "rolled-back v2").
func checkStatus(t *testing.T, ns, serving, previous string, history ...string) {
	t.Helper()
	text, st := status(t, ns)
	t.Logf("tsys-ci status %s -n %s:\n%s", moreApp, ns, text)
	if st.Phase != rollout.PhaseStable || st.Active == nil || tagOf(st.Active.Image) != serving || st.Candidate != nil {
		t.Errorf("status: phase %s, active %v, candidate %v; want Stable, serving %s, nothing in progress", st.Phase, st.Active, st.Candidate, serving)
	}
	gotPrev := ""
	if st.Previous != nil {
		gotPrev = tagOf(st.Previous.Image)
	}
	if gotPrev != previous {
		t.Errorf("status: previous %q, want %q", gotPrev, previous)
	}
	var got []string
	for _, h := range st.History {
		got = append(got, h.Result+" "+tagOf(h.Image))
	}
	if strings.Join(got, ", ") != strings.Join(history, ", ") {
		t.Errorf("status: history %q, want %q", got, history)
	}
	if !strings.Contains(text, fmt.Sprintf("%s: Stable; serving %s on %s", moreApp, st.Active.Image, st.Active.Color)) {
		t.Errorf("status text does not say what serves:\n%s", text)
	}
	if lines := strings.Count(text, "\n"); lines < 1+len(history) {
		t.Errorf("status text has %d lines, want a line per history entry (%d) at least:\n%s", lines, len(history), text)
	}
}

// sharesBy buckets the answers one client got by the rollout event in force
// when each came, and returns one line per bucket with the share of each
// version.
func sharesBy(hits []hit, evs []rolloutEvent, client string, label func(rolloutEvent) string) (lines []string, counts map[string]map[string]int) {
	counts = map[string]map[string]int{}
	var order []string
	for _, h := range hits {
		if h.client != client || h.version == "" {
			continue
		}
		i := sort.Search(len(evs), func(i int) bool { return evs[i].seen.After(h.at) }) - 1
		if i < 0 {
			continue
		}
		b := label(evs[i])
		if counts[b] == nil {
			counts[b] = map[string]int{}
			order = append(order, b)
		}
		counts[b][h.version]++
	}
	for _, b := range order {
		total := 0
		var vs []string
		for _, n := range counts[b] {
			total += n
		}
		for v, n := range counts[b] {
			vs = append(vs, fmt.Sprintf("%s %d (%.0f%%)", v, n, 100*float64(n)/float64(total)))
		}
		sort.Strings(vs)
		lines = append(lines, fmt.Sprintf("%s: %s", b, strings.Join(vs, ", ")))
	}
	return lines, counts
}

// settle lets the load run d more after a promote, so answers after the
// switch are counted too.
func settle(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
