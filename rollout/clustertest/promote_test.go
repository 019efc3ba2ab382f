package clustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/podstandin"
)

// app is one test's app: its namespace with the stand-in running, a pool,
// and a probe server that answers as the version the probed Service
// selects: 500 for an image whose name contains "bad".
type app struct {
	t     *testing.T
	cs    kubernetes.Interface
	ns    string
	spec  *rollout.AppSpec
	out   *bytes.Buffer
	probe *httptest.Server
	// onProbe, when set, runs on every probe request (under mu).
	mu      sync.Mutex
	onProbe func()
	// edgeLag, when set, is asked by the edge stand-in on every read what
	// it shows instead of the weights the Service asks for (under mu).
	edgeLag func(asked map[string]int) map[string]int
}

func newApp(t *testing.T, mod func(*rollout.AppSpec)) *app {
	cs, ns := newNamespace(t)
	podstandin.Start(t, cs, ns)
	spec := exampleSpec(t, ns)
	spec.Strategy.BlueGreen.ScaleDownDelay = rollout.Duration{Duration: 50 * time.Millisecond}
	spec.Strategy.Canary.StepPause = rollout.Duration{Duration: 50 * time.Millisecond}
	for i := range spec.Probes {
		spec.Probes[i].Interval = rollout.Duration{Duration: time.Millisecond}
		spec.Probes[i].Successes = 2
		// The probe phase's deadline, not a measurement: 200 ms failed
		// TestCanarySteps once on a loaded 2-core machine (each probe answer
		// reads the Service from the API server). Three tests wait it out.
		spec.Probes[i].Timeout = rollout.Duration{Duration: 3 * time.Second}
		spec.Probes[i].BodyMatch = "Shop"
	}
	if mod != nil {
		mod(spec)
	}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	a := &app{t: t, cs: cs, ns: ns, spec: spec, out: &bytes.Buffer{}}
	a.probe = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.probe.Close)
	return a
}

// serve answers as the Deployment the requested Service selects.
func (a *app) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	if a.onProbe != nil {
		a.onProbe()
	}
	a.mu.Unlock()
	svcName := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")[0]
	ctx := r.Context()
	svc, err := a.cs.CoreV1().Services(a.ns).Get(ctx, svcName, metav1.GetOptions{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	d, err := a.cs.AppsV1().Deployments(a.ns).Get(ctx, rollout.DeploymentName(a.spec.Name, svc.Spec.Selector[rollout.LabelColor]), metav1.GetOptions{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	image := d.Spec.Template.Annotations[rollout.AnnotationImage]
	if strings.Contains(image, "bad") {
		http.Error(w, "broken build "+image, http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "<title>Shop</title> %s", image)
}

func (a *app) promoter(holder string) *rollout.Promoter {
	return &rollout.Promoter{
		Client: a.cs, Clock: rollout.RealClock{}, Out: a.out, Holder: holder,
		Allocator: poolConfigMap2(a.t, a.cs, a.ns),
		Probe: func(ns, svc, port string) (string, *http.Client) {
			return a.probe.URL + "/" + svc, a.probe.Client()
		},
		PollInterval: 10 * time.Millisecond, ReadyTimeout: 10 * time.Second,
	}
}

// poolConfigMap2 creates the pool once per namespace.
func poolConfigMap2(t *testing.T, cs kubernetes.Interface, ns string) *rollout.Allocator {
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(context.Background(), rollout.DefaultAllocName, metav1.GetOptions{}); err == nil {
		return &rollout.Allocator{Client: cs, Namespace: ns, Name: rollout.DefaultAllocName}
	}
	return poolConfigMap(t, cs, ns, rollout.Pool{Addresses: []string{"10.89.0.240"}, Ports: rollout.PortRange{Min: 30000, Max: 30099}})
}

func (a *app) promote(image string) (*rollout.Result, error) {
	return a.promoter("test").Promote(context.Background(), rollout.Request{Spec: a.spec, Image: image})
}

func (a *app) state() *rollout.State {
	s, err := rollout.Status(context.Background(), a.cs, a.ns, a.spec.Name)
	if err != nil {
		a.t.Fatal(err)
	}
	return s
}

func (a *app) serviceColor() string {
	svc, err := a.cs.CoreV1().Services(a.ns).Get(context.Background(), a.spec.Name, metav1.GetOptions{})
	if err != nil {
		a.t.Fatal(err)
	}
	return svc.Spec.Selector[rollout.LabelColor]
}

func (a *app) replicas(color string) int32 {
	d, err := a.cs.AppsV1().Deployments(a.ns).Get(context.Background(), rollout.DeploymentName(a.spec.Name, color), metav1.GetOptions{})
	if err != nil {
		return -1
	}
	return *d.Spec.Replicas
}

func mustPromote(t *testing.T, a *app, image string) *rollout.Result {
	t.Helper()
	res, err := a.promote(image)
	if err != nil {
		t.Fatalf("promote %s: %v\n%s", image, err, a.out)
	}
	return res
}

// promoteDyingAtProbe promotes image with a process that dies (its context
// cancelled) at its first probe, as a killed 'tsys-ci promote' would, and
// returns what that promote returned.
func promoteDyingAtProbe(a *app, image string) error {
	ctx, kill := context.WithCancel(context.Background())
	defer kill()
	a.mu.Lock()
	a.onProbe = func() { kill() }
	a.mu.Unlock()
	_, err := a.promoter("dies").Promote(ctx, rollout.Request{Spec: a.spec, Image: image})
	a.mu.Lock()
	a.onProbe = nil
	a.mu.Unlock()
	return err
}

func TestBlueGreenPromoteAndRollback(t *testing.T) {
	a := newApp(t, nil)
	mustPromote(t, a, "reg/shop@sha256:v1")
	if c := a.serviceColor(); c != rollout.ColorBlue {
		t.Fatalf("first version on %q, want blue", c)
	}
	res := mustPromote(t, a, "reg/shop@sha256:v2")
	if res.Result != rollout.ResultPromoted || res.Address == nil || res.Address.Address != "10.89.0.240" {
		t.Fatalf("result %+v", res)
	}
	if c, blue, green := a.serviceColor(), a.replicas(rollout.ColorBlue), a.replicas(rollout.ColorGreen); c != rollout.ColorGreen || blue != 0 || green != 2 {
		t.Fatalf("after v2: service on %s, blue %d pods, green %d\n%s", c, blue, green, a.out)
	}
	s := a.state()
	if s.Phase != rollout.PhaseStable || s.Active.Image != "reg/shop@sha256:v2" || s.Previous.Image != "reg/shop@sha256:v1" || len(s.History) != 2 {
		t.Fatalf("state %+v", s)
	}
	// Promoting the running image again leaves the pods alone but applies
	// the Service side of the spec: a new host name reaches the edge.
	a.spec.Ports[0].Hosts = append(a.spec.Ports[0].Hosts, "www.shop.company.example")
	if res := mustPromote(t, a, "reg/shop@sha256:v2"); res.Result != "unchanged" {
		t.Fatalf("re-promote: %+v", res)
	}
	svc, err := a.cs.CoreV1().Services(a.ns).Get(context.Background(), a.spec.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := svc.Annotations[contract.AnnotationEdge]; !strings.Contains(got, "www.shop.company.example") || svc.Spec.Selector[rollout.LabelColor] != rollout.ColorGreen {
		t.Fatalf("re-promote did not apply the Service: %s %v", got, svc.Spec.Selector)
	}
	// Manual rollback: v1 comes back on blue, v2 is kept at zero.
	if _, err := a.promoter("test").Rollback(context.Background(), a.spec); err != nil {
		t.Fatalf("rollback: %v\n%s", err, a.out)
	}
	if c, blue, green := a.serviceColor(), a.replicas(rollout.ColorBlue), a.replicas(rollout.ColorGreen); c != rollout.ColorBlue || blue != 2 || green != 0 {
		t.Fatalf("after rollback: service on %s, blue %d, green %d", c, blue, green)
	}
	if s := a.state(); s.Active.Image != "reg/shop@sha256:v1" || s.Previous.Image != "reg/shop@sha256:v2" {
		t.Fatalf("state after rollback %+v", s)
	}
}

// TestFailedProbesRollBack: a version whose probe path answers 500 is
// rolled back after failureThreshold (3) bad answers in a row, not after
// the probe's timeout (an hour here, so running it out would hang the test).
func TestFailedProbesRollBack(t *testing.T) {
	a := newApp(t, func(s *rollout.AppSpec) {
		s.Probes[0].Timeout = rollout.Duration{Duration: time.Hour}
	})
	mustPromote(t, a, "reg/shop@sha256:v1")
	res, err := a.promote("reg/shop@sha256:bad2")
	var failed *rollout.ProbeFailedError
	if !errors.As(err, &failed) || !strings.Contains(failed.Reason, "probe home: 3 bad answers in a row") || !strings.Contains(failed.Reason, "status 500, want 200") {
		t.Fatalf("want a probe failure after 3 bad answers, got %v\n%s", err, a.out)
	}
	if p := res.Probes[len(res.Probes)-1]; p.Attempts != 3 || p.Passed {
		t.Fatalf("probe result %+v, want failed after 3 attempts", p)
	}
	if c, green := a.serviceColor(), a.replicas(rollout.ColorGreen); c != rollout.ColorBlue || green != -1 {
		t.Fatalf("after failed probes: service on %s, green Deployment replicas %d (want removed)", c, green)
	}
	s := a.state()
	last := s.History[len(s.History)-1]
	if s.Phase != rollout.PhaseStable || s.Active.Image != "reg/shop@sha256:v1" || last.Result != rollout.ResultRolledBack || last.Image != "reg/shop@sha256:bad2" {
		t.Fatalf("state %+v", s)
	}
}

func TestCrashLoopRollsBack(t *testing.T) {
	a := newApp(t, nil)
	mustPromote(t, a, "reg/shop@sha256:v1")
	_, err := a.promote("reg/shop@sha256:crash2")
	var failed *rollout.ProbeFailedError
	if !errors.As(err, &failed) || !strings.Contains(failed.Reason, "crash-looping") {
		t.Fatalf("want a crash-loop failure, got %v\n%s", err, a.out)
	}
	if c := a.serviceColor(); c != rollout.ColorBlue {
		t.Fatalf("service on %s after a crash loop", c)
	}
}

// TestCanarySteps: two replicas give one 50 % step; while it runs the
// Service selects both colors and each has one pod.
func TestCanarySteps(t *testing.T) {
	a := newApp(t, func(s *rollout.AppSpec) { s.Strategy.Type = rollout.StrategyCanary })
	mustPromote(t, a, "reg/shop@sha256:v1")
	var seen []string
	a.mu.Lock()
	a.onProbe = func() {
		svc, err := a.cs.CoreV1().Services(a.ns).Get(context.Background(), a.spec.Name, metav1.GetOptions{})
		if err == nil {
			seen = append(seen, fmt.Sprintf("%s:%d/%d", svc.Spec.Selector[rollout.LabelColor], a.replicas(rollout.ColorBlue), a.replicas(rollout.ColorGreen)))
		}
	}
	a.mu.Unlock()
	res := mustPromote(t, a, "reg/shop@sha256:v2")
	t.Logf("progress of the canary promote:\n%s", a.out)
	if len(res.Steps) != 2 || res.Steps[0].WeightString() != "50%" || !strings.Contains(res.Steps[0].Note, "asked 10% and 50%") {
		t.Fatalf("steps %+v", res.Steps)
	}
	if !strings.Contains(a.out.String(), "step 1/2: 50% of traffic on the new version (1 of 2 pods)") {
		t.Errorf("progress does not show the real weight:\n%s", a.out)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	both := false
	for _, s := range seen {
		if s == ":1/1" {
			both = true
		}
	}
	if !both {
		t.Errorf("never saw the Service on both colors with 1 pod each; saw %v", seen)
	}
	if c, blue := a.serviceColor(), a.replicas(rollout.ColorBlue); c != rollout.ColorGreen || blue != 0 {
		t.Fatalf("after canary: service on %s, blue %d pods", c, blue)
	}
}

// TestCanaryFailureRestoresStable: a canary failing at its weighted step
// gives the old version all its pods and all traffic back.
func TestCanaryFailureRestoresStable(t *testing.T) {
	a := newApp(t, func(s *rollout.AppSpec) { s.Strategy.Type = rollout.StrategyCanary })
	mustPromote(t, a, "reg/shop@sha256:v1")
	_, err := a.promote("reg/shop@sha256:bad2")
	var failed *rollout.ProbeFailedError
	if !errors.As(err, &failed) {
		t.Fatalf("want a probe failure, got %v\n%s", err, a.out)
	}
	if c, blue, green := a.serviceColor(), a.replicas(rollout.ColorBlue), a.replicas(rollout.ColorGreen); c != rollout.ColorBlue || blue != 2 || green != -1 {
		t.Fatalf("after a failed canary: service on %q, blue %d, green %d\n%s", c, blue, green, a.out)
	}
}

// TestResumeAfterDeath: a promote stopped during its probes (its process
// killed) leaves its phase in the cluster; the same promote run again
// resumes it, another image rolls it back first.
func TestResumeAfterDeath(t *testing.T) {
	a := newApp(t, nil)
	mustPromote(t, a, "reg/shop@sha256:v1")
	if err := promoteDyingAtProbe(a, "reg/shop@sha256:v2"); err == nil || !strings.Contains(err.Error(), "left at phase Probing") {
		t.Fatalf("killed promote: %v\n%s", err, a.out)
	}
	if s := a.state(); s.Phase != rollout.PhaseProbing || a.serviceColor() != rollout.ColorBlue {
		t.Fatalf("after the kill: phase %s, service on %s", s.Phase, a.serviceColor())
	}
	res, err := a.promote("reg/shop@sha256:v2")
	if err != nil || !res.Resumed || a.serviceColor() != rollout.ColorGreen {
		t.Fatalf("re-run: %+v %v\n%s", res, err, a.out)
	}

	// Killed again on the way to v3; this time v4 is promoted next.
	_ = promoteDyingAtProbe(a, "reg/shop@sha256:v3")
	mustPromote(t, a, "reg/shop@sha256:v4")
	s := a.state()
	var results []string
	for _, h := range s.History {
		results = append(results, h.Result+" "+strings.TrimPrefix(h.Image, "reg/shop@sha256:"))
	}
	want := "promoted v1,promoted v2,rolled-back v3,promoted v4"
	if strings.Join(results, ",") != want || a.serviceColor() != rollout.ColorBlue {
		t.Fatalf("history %v (want %s), service on %s\n%s", results, want, a.serviceColor(), a.out)
	}
}

// TestAbortLeftPromote: abort with nobody running rolls back a promote a
// dead process left half done.
func TestAbortLeftPromote(t *testing.T) {
	a := newApp(t, nil)
	mustPromote(t, a, "reg/shop@sha256:v1")
	_ = promoteDyingAtProbe(a, "reg/shop@sha256:v2")
	res, err := a.promoter("abort").Abort(context.Background(), a.spec)
	if err != nil || res.Result != rollout.ResultAborted {
		t.Fatalf("abort: %+v %v", res, err)
	}
	if s := a.state(); s.Phase != rollout.PhaseStable || s.Active.Image != "reg/shop@sha256:v1" || a.replicas(rollout.ColorGreen) != -1 {
		t.Fatalf("after abort: %+v", s)
	}
}

// TestAbortAfterAskingADeadProcess: an abort asked of a promote that had
// died (the request stays in the state, nobody answers it), then an abort
// that takes the app over: it rolls back to the end instead of stopping
// its own rollback on that request ("the previous version is not healthy
// either: aborted", the state left at RollingBack; seen in the lab with a
// canary killed at the edge).
func TestAbortAfterAskingADeadProcess(t *testing.T) {
	a := newApp(t, nil)
	mustPromote(t, a, "reg/shop@sha256:v1")
	_ = promoteDyingAtProbe(a, "reg/shop@sha256:v2")
	// What 'tsys-ci abort' writes while the dead process still holds the
	// lease.
	store := &rollout.StateStore{Client: a.cs, Namespace: a.ns, App: a.spec.Name, Clock: rollout.RealClock{}}
	s, err := store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.AbortRequested = true
	if err := store.Save(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	res, err := a.promoter("abort").Abort(context.Background(), a.spec)
	if err != nil || res.Result != rollout.ResultAborted {
		t.Fatalf("abort: %+v %v\n%s", res, err, a.out)
	}
	if s := a.state(); s.Phase != rollout.PhaseStable || s.Active.Image != "reg/shop@sha256:v1" || s.AbortRequested || a.replicas(rollout.ColorGreen) != -1 {
		t.Fatalf("after abort: %+v", s)
	}
}

// TestPromoteWhileHeld: a second promote of an app whose lease is held is
// refused with who holds it; abort then asks the holder to stop.
func TestPromoteWhileHeld(t *testing.T) {
	a := newApp(t, nil)
	lock, err := rollout.AcquireLock(context.Background(), a.cs, rollout.RealClock{}, a.ns, a.spec.Name, "other-process", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.promote("reg/shop@sha256:v1")
	var held *rollout.HeldError
	if !errors.As(err, &held) || held.Holder != "other-process" {
		t.Fatalf("promote while held: %v", err)
	}
	res, err := a.promoter("abort").Abort(context.Background(), a.spec)
	if err != nil || res.Result != rollout.ResultAbortRequested || !strings.Contains(res.Reason, "other-process") {
		t.Fatalf("abort while held: %+v %v", res, err)
	}
	if !a.state().AbortRequested {
		t.Fatal("abort did not ask the holder to stop")
	}
	_ = lock.Release(context.Background())
}

// TestStoppedCanaryRollsBack: a promote stopped on purpose (Ctrl-C, an
// aborted Jenkins build) while a canary step splits traffic does not leave
// it split: the stable version gets all its pods and all traffic back.
func TestStoppedCanaryRollsBack(t *testing.T) {
	a := newApp(t, func(s *rollout.AppSpec) { s.Strategy.Type = rollout.StrategyCanary })
	mustPromote(t, a, "reg/shop@sha256:v1")
	ctx, stop := context.WithCancel(context.Background())
	a.mu.Lock()
	a.onProbe = func() {
		svc, err := a.cs.CoreV1().Services(a.ns).Get(context.Background(), a.spec.Name, metav1.GetOptions{})
		if err == nil && svc.Spec.Selector[rollout.LabelColor] == "" {
			stop() // traffic is split now
		}
	}
	a.mu.Unlock()
	res, err := a.promoter("ctrl-c").Promote(ctx, rollout.Request{Spec: a.spec, Image: "reg/shop@sha256:v2"})
	if err == nil || res.Result != rollout.ResultAborted {
		t.Fatalf("stopped canary: %+v %v\n%s", res, err, a.out)
	}
	if c, blue, green := a.serviceColor(), a.replicas(rollout.ColorBlue), a.replicas(rollout.ColorGreen); c != rollout.ColorBlue || blue != 2 || green != -1 {
		t.Fatalf("after the stop: service on %q, blue %d, green %d\n%s", c, blue, green, a.out)
	}
	if s := a.state(); s.Phase != rollout.PhaseStable || s.Active.Image != "reg/shop@sha256:v1" {
		t.Fatalf("state %+v", s)
	}
}

// TestHandedOverCanaryStaysForTheResume: a canary step canceled with
// ErrHandedOver (serve's replica going, another resuming its deploys) is
// left at its step, traffic split, lease released, and the next process's
// Resume carries it on to the end instead of starting over or rolling it
// back.
func TestHandedOverCanaryStaysForTheResume(t *testing.T) {
	a := newApp(t, func(s *rollout.AppSpec) { s.Strategy.Type = rollout.StrategyCanary })
	mustPromote(t, a, "reg/shop@sha256:v1")
	ctx, stop := context.WithCancelCause(context.Background())
	a.mu.Lock()
	a.onProbe = func() {
		svc, err := a.cs.CoreV1().Services(a.ns).Get(context.Background(), a.spec.Name, metav1.GetOptions{})
		if err == nil && svc.Spec.Selector[rollout.LabelColor] == "" {
			stop(rollout.ErrHandedOver) // traffic is split now
		}
	}
	a.mu.Unlock()
	_, err := a.promoter("replica-a").Promote(ctx, rollout.Request{Spec: a.spec, Image: "reg/shop@sha256:v2"})
	if err == nil || !strings.Contains(err.Error(), "left at phase Canary") || strings.Contains(err.Error(), "lost the lease") {
		t.Fatalf("handed-over canary: %v, want it left at phase Canary\n%s", err, a.out)
	}
	a.mu.Lock()
	a.onProbe = nil
	a.mu.Unlock()
	if s := a.state(); s.Phase != rollout.PhaseCanary || a.serviceColor() != "" {
		t.Fatalf("after the hand-over: phase %s, service on %q; want the canary step kept, traffic split\n%s", s.Phase, a.serviceColor(), a.out)
	}
	res, err := a.promoter("replica-b").Resume(context.Background(), a.spec)
	if err != nil || !res.Resumed || res.Result != rollout.ResultPromoted || a.serviceColor() != rollout.ColorGreen {
		t.Fatalf("resume by the next process: %+v %v, service on %q\n%s", res, err, a.serviceColor(), a.out)
	}
}

func TestPromoteIntoMissingNamespace(t *testing.T) {
	a := newApp(t, nil)
	a.spec.Namespace = "no-such-namespace"
	_, err := a.promote("reg/shop@sha256:v1")
	if err == nil || !strings.Contains(err.Error(), "namespace no-such-namespace does not exist: create it") {
		t.Fatalf("promote into a missing namespace: %v", err)
	}
}

// cancelOn is a progress writer that cancels a context when a line
// containing text is written: a process dying right after that step.
type cancelOn struct {
	mu     sync.Mutex
	buf    *bytes.Buffer
	text   string
	cancel context.CancelFunc
}

func (w *cancelOn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.Contains(string(p), w.text) {
		w.cancel()
	}
	return w.buf.Write(p)
}

// TestInterruptedManualRollbackCompletes: a 'promote --rollback' whose
// process dies after recording that it is rolling back is completed by
// the re-run of the same command: the previous version serves, the one it
// replaced is kept at zero, and rolling back again goes forward. (It was
// once undone instead, and the previous version's Deployment deleted, so
// the next rollback failed.)
func TestInterruptedManualRollbackCompletes(t *testing.T) {
	a := newApp(t, nil)
	mustPromote(t, a, "reg/shop@sha256:v1")
	mustPromote(t, a, "reg/shop@sha256:v2")
	ctx, kill := context.WithCancel(context.Background())
	p := a.promoter("dies")
	p.Out = &cancelOn{buf: a.out, text: "rolling back to", cancel: kill}
	before := time.Now().UTC()
	if _, err := p.Rollback(ctx, a.spec); err == nil {
		t.Fatalf("the interrupted rollback returned no error\n%s", a.out)
	}
	if s := a.state(); s.Phase != rollout.PhaseRollingBack || !s.ManualRollback || s.StartedAt.Before(before) {
		t.Fatalf("after the kill: phase %s, manual %v, started %s; want RollingBack, a manual rollback started after %s\n%s", s.Phase, s.ManualRollback, s.StartedAt, before, a.out)
	}
	if _, err := a.promoter("again").Rollback(context.Background(), a.spec); err != nil {
		t.Fatalf("re-run of the rollback: %v\n%s", err, a.out)
	}
	s := a.state()
	if c, blue, green := a.serviceColor(), a.replicas(rollout.ColorBlue), a.replicas(rollout.ColorGreen); c != rollout.ColorBlue || blue != 2 || green != 0 ||
		s.Phase != rollout.PhaseStable || s.Active.Image != "reg/shop@sha256:v1" || s.Previous == nil || s.Previous.Image != "reg/shop@sha256:v2" {
		t.Fatalf("after the re-run: service on %s, blue %d, green %d (want blue, 2, 0); state %+v\n%s", c, blue, green, s, a.out)
	}
	if _, err := a.promoter("forward").Rollback(context.Background(), a.spec); err != nil {
		t.Fatalf("rolling back again (to v2): %v\n%s", err, a.out)
	}
	if c, s := a.serviceColor(), a.state(); c != rollout.ColorGreen || s.Active.Image != "reg/shop@sha256:v2" {
		t.Fatalf("rolling back again: service on %s, state %+v", c, s)
	}
}

// TestAbortedManualRollbackKeepsPrevious: abort of a 'promote --rollback'
// left half done puts traffic back on the version that served and keeps
// the previous one at zero, so a later rollback still works.
func TestAbortedManualRollbackKeepsPrevious(t *testing.T) {
	a := newApp(t, nil)
	mustPromote(t, a, "reg/shop@sha256:v1")
	mustPromote(t, a, "reg/shop@sha256:v2")
	ctx, kill := context.WithCancel(context.Background())
	p := a.promoter("dies")
	p.Out = &cancelOn{buf: a.out, text: "rolling back to", cancel: kill}
	_, _ = p.Rollback(ctx, a.spec)
	if _, err := a.promoter("abort").Abort(context.Background(), a.spec); err != nil {
		t.Fatalf("abort: %v\n%s", err, a.out)
	}
	s := a.state()
	if c, blue, green := a.serviceColor(), a.replicas(rollout.ColorBlue), a.replicas(rollout.ColorGreen); c != rollout.ColorGreen || blue != 0 || green != 2 ||
		s.Phase != rollout.PhaseStable || s.Active.Image != "reg/shop@sha256:v2" || s.Previous == nil || s.Previous.Image != "reg/shop@sha256:v1" {
		t.Fatalf("after the abort: service on %s, blue %d, green %d (want green, 0, 2); state %+v\n%s", c, blue, green, s, a.out)
	}
	if _, err := a.promoter("later").Rollback(context.Background(), a.spec); err != nil {
		t.Fatalf("a later rollback: %v\n%s", err, a.out)
	}
	if c := a.serviceColor(); c != rollout.ColorBlue {
		t.Fatalf("a later rollback: service on %s, want blue", c)
	}
}
