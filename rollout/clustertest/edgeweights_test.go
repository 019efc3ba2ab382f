package clustertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/rollout"
)

// edgePromoter is the app's promoter sampling the edge stand-in often.
func (a *app) edgePromoter(holder string) *rollout.Promoter {
	p := a.promoter(holder)
	p.SampleInterval = 10 * time.Millisecond
	return p
}

// checkRouting fails unless no recorded Service version selects one color
// while the edge gives the other all its weight, and the sequence contains
// want in order.
func checkRouting(t *testing.T, got []routing, want ...routing) {
	t.Helper()
	i := 0
	for _, r := range got {
		if i < len(want) && r == want[i] {
			i++
		}
		if r.Selector != "" && strings.Contains(r.Weights, `"`+rollout.OtherColor(r.Selector)+`":100`) {
			t.Errorf("the Service selected %s while the edge weights were %s", r.Selector, r.Weights)
		}
	}
	if i < len(want) {
		t.Errorf("routing %+v\ndoes not contain in order %+v (missing %+v)", got, want, want[i])
	}
}

// TestEdgeWeightsBlueGreen: the blue/green switch writes the selector and
// the edge weights in one write, and promote waits until the edge shows
// them, then tells Progress it switched (a notice).
func TestEdgeWeightsBlueGreen(t *testing.T) {
	a := newApp(t, nil)
	a.useEdgeStandIn(true)
	routed := a.recordRouting()
	var told []string
	for _, image := range []string{"reg/shop@sha256:v1", "reg/shop@sha256:v2"} {
		p := a.edgePromoter("test")
		p.Progress = func(pr rollout.Progress) {
			told = append(told, fmt.Sprintf("%s %s/%s %s from %q (%s) edge %s", pr.Kind, pr.Namespace, pr.App, pr.Image, pr.Previous, pr.Strategy, a.state().EdgeWeights))
		}
		if _, err := p.Promote(context.Background(), rollout.Request{Spec: a.spec, Image: image}); err != nil {
			t.Fatalf("promote %s: %v\n%s", image, err, a.out)
		}
	}
	want := []string{
		`switched ` + a.ns + `/shop reg/shop@sha256:v1 from "" (blueGreen) edge {"blue":100}`,
		`switched ` + a.ns + `/shop reg/shop@sha256:v2 from "reg/shop@sha256:v1" (blueGreen) edge {"blue":0,"green":100}`,
	}
	if strings.Join(told, "\n") != strings.Join(want, "\n") {
		t.Errorf("progress told:\n%s\nwant:\n%s", strings.Join(told, "\n"), strings.Join(want, "\n"))
	}
	checkRouting(t, routed(),
		routing{rollout.ColorBlue, `{"blue":100}`},
		routing{rollout.ColorGreen, `{"blue":0,"green":100}`})
	if s := a.state(); s.EdgeWeights.String() != `{"blue":0,"green":100}` {
		t.Errorf("recorded weights %s", s.EdgeWeights)
	}
	if !strings.Contains(a.out.String(), "the edge shows weights blue 0%, green 100%") {
		t.Errorf("promote did not confirm the weights at the edge:\n%s", a.out)
	}
}

// TestEdgeCanaryExactWeights: with an edge, canary steps are the spec's
// percents exactly on 2 replicas; both versions run 2 pods while the
// Service stays on the stable one, then switches at 100 %.
func TestEdgeCanaryExactWeights(t *testing.T) {
	a := newApp(t, func(s *rollout.AppSpec) {
		s.Strategy.Type = rollout.StrategyCanary
		s.Strategy.Canary.Steps = []int{5, 25, 100}
	})
	a.useEdgeStandIn(true)
	if _, err := a.edgePromoter("test").Promote(context.Background(), rollout.Request{Spec: a.spec, Image: "reg/shop@sha256:v1"}); err != nil {
		t.Fatalf("v1: %v\n%s", err, a.out)
	}
	routed := a.recordRouting()
	var pods []string
	a.mu.Lock()
	a.onProbe = func() {
		pods = append(pods, fmt.Sprintf("%d/%d", a.replicas(rollout.ColorBlue), a.replicas(rollout.ColorGreen)))
	}
	a.mu.Unlock()
	p := a.edgePromoter("test")
	var switched []string // told once, at 100 %
	p.Progress = func(pr rollout.Progress) {
		switched = append(switched, pr.Kind+" "+pr.Image+" "+a.state().EdgeWeights.String())
	}
	res, err := p.Promote(context.Background(), rollout.Request{Spec: a.spec, Image: "reg/shop@sha256:v2"})
	if err != nil {
		t.Fatalf("v2: %v\n%s", err, a.out)
	}
	t.Logf("progress:\n%s", a.out)
	if want := `switched reg/shop@sha256:v2 {"blue":0,"green":100}`; len(switched) != 1 || switched[0] != want {
		t.Errorf("progress told %q, want once %q", switched, want)
	}
	checkRouting(t, routed(),
		routing{rollout.ColorBlue, `{"blue":95,"green":5}`},
		routing{rollout.ColorBlue, `{"blue":75,"green":25}`},
		routing{rollout.ColorGreen, `{"blue":0,"green":100}`})
	for _, r := range routed() {
		if r.Selector == "" {
			t.Errorf("the Service selected both colors during a canary at the edge: %+v", r)
		}
	}
	if len(res.Steps) != 3 || !res.Steps[0].AtEdge || res.Steps[0].WeightString() != "5%" {
		t.Errorf("plan %+v", res.Steps)
	}
	// The numbers the analysis judged by are in the state: the last
	// window, per version (green is v2).
	tr := a.state().EdgeTraffic
	if tr == nil || tr.At.IsZero() {
		t.Fatalf("no edge traffic recorded in the state")
	}
	var green *rollout.VersionTraffic
	for i, v := range tr.Versions {
		if v.Color == rollout.ColorGreen {
			green = &tr.Versions[i]
		}
	}
	if green == nil || green.Image != "reg/shop@sha256:v2" || green.Requests <= 0 || green.Failed != 0 || green.ResponseTimeMs != 12 {
		t.Errorf("edge traffic recorded %+v, want v2 on green with requests, no failures, 12 ms", tr)
	}
	// The weight the edge showed at the last reading is the one asked last.
	if st := a.state(); green != nil && (green.WeightGiven == nil || *green.WeightGiven != st.EdgeWeights[rollout.ColorGreen]) {
		t.Errorf("green's weight given %v at the last reading, want the asked %d", green.WeightGiven, st.EdgeWeights[rollout.ColorGreen])
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range pods {
		if p != "2/2" {
			t.Errorf("blue/green pods %s during the canary, want 2/2 (full capacity on both)", p)
		}
	}
	for _, want := range []string{"both versions run 2 pods until 100%", "step 1/3: 5% of the edge's requests on the new version (exact: edge weights blue 95%, green 5%)", "the edge shows weights blue 75%, green 25%"} {
		if !strings.Contains(a.out.String(), want) {
			t.Errorf("progress does not say %q", want)
		}
	}
}

// TestEdgeCanaryKilledThenAborted: a promote killed in
// a canary step at the edge leaves the weights as recorded; a re-run
// resumes from that step (no other weights in between); killed again,
// abort puts all weight back on the stable version before it records
// anything else.
func TestEdgeCanaryKilledThenAborted(t *testing.T) {
	a := newApp(t, func(s *rollout.AppSpec) {
		s.Strategy.Type = rollout.StrategyCanary
		s.Strategy.Canary.Steps = []int{5, 25, 100}
	})
	a.useEdgeStandIn(true)
	if _, err := a.edgePromoter("test").Promote(context.Background(), rollout.Request{Spec: a.spec, Image: "reg/shop@sha256:v1"}); err != nil {
		t.Fatalf("v1: %v\n%s", err, a.out)
	}
	// killAt stops the promote (as a SIGKILL would: the phase is left as
	// recorded) once the Service carries weights w.
	killAt := func(w string) context.Context {
		ctx, kill := context.WithCancelCause(context.Background())
		a.mu.Lock()
		a.onProbe = func() {
			svc, err := a.cs.CoreV1().Services(a.ns).Get(context.Background(), a.spec.Name, metav1.GetOptions{})
			if err == nil && svc.Annotations[contract.AnnotationEdgeWeights] == w {
				kill(rollout.ErrHandedOver)
			}
		}
		a.mu.Unlock()
		return ctx
	}
	ctx := killAt(`{"blue":95,"green":5}`)
	if _, err := a.edgePromoter("dies").Promote(ctx, rollout.Request{Spec: a.spec, Image: "reg/shop@sha256:v2"}); err == nil || !strings.Contains(err.Error(), "left at phase Canary") {
		t.Fatalf("killed promote: %v\n%s", err, a.out)
	}
	a.mu.Lock()
	a.onProbe = nil
	a.mu.Unlock()
	if s := a.state(); s.Phase != rollout.PhaseCanary || s.Step != 0 || s.EdgeWeights.String() != `{"blue":95,"green":5}` {
		t.Fatalf("after the kill: phase %s step %d weights %s", s.Phase, s.Step, s.EdgeWeights)
	}
	routed := a.recordRouting()
	if _, err := a.edgePromoter("again").Promote(context.Background(), rollout.Request{Spec: a.spec, Image: "reg/shop@sha256:v2"}); err != nil {
		t.Fatalf("re-run: %v\n%s", err, a.out)
	}
	got := routed()
	checkRouting(t, got,
		routing{rollout.ColorBlue, `{"blue":95,"green":5}`},
		routing{rollout.ColorBlue, `{"blue":75,"green":25}`},
		routing{rollout.ColorGreen, `{"blue":0,"green":100}`})
	if len(got) != 3 {
		t.Errorf("the re-run routed %+v; want the recorded step, then the next ones only", got)
	}

	// v3 killed at 25 %, then aborted.
	ctx = killAt(`{"blue":25,"green":75}`)
	_, _ = a.edgePromoter("dies").Promote(ctx, rollout.Request{Spec: a.spec, Image: "reg/shop@sha256:v3"})
	a.mu.Lock()
	a.onProbe = nil
	a.mu.Unlock()
	if s := a.state(); s.Phase != rollout.PhaseCanary || s.EdgeWeights.String() != `{"blue":25,"green":75}` {
		t.Fatalf("v3 after the kill: phase %s weights %s (v3 is on blue)", s.Phase, s.EdgeWeights)
	}
	// When the state first says RollingBack, the Service must already
	// route everything to the stable version (green, v2).
	wctx, stop := context.WithCancel(context.Background())
	defer stop()
	w, err := a.cs.CoreV1().ConfigMaps(a.ns).Watch(wctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", rollout.StateName(a.spec.Name)).String()})
	if err != nil {
		t.Fatal(err)
	}
	firstRollingBack := make(chan routing, 1)
	go func() {
		for ev := range w.ResultChan() {
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if ok && strings.Contains(cm.Data["state.json"], `"phase":"RollingBack"`) {
				svc, err := a.cs.CoreV1().Services(a.ns).Get(context.Background(), a.spec.Name, metav1.GetOptions{})
				if err == nil {
					firstRollingBack <- routing{svc.Spec.Selector[rollout.LabelColor], svc.Annotations[contract.AnnotationEdgeWeights]}
				}
				return
			}
		}
	}()
	if _, err := a.edgePromoter("abort").Abort(context.Background(), a.spec); err != nil {
		t.Fatalf("abort: %v\n%s", err, a.out)
	}
	select {
	case r := <-firstRollingBack:
		if r != (routing{rollout.ColorGreen, `{"blue":0,"green":100}`}) {
			t.Fatalf("when the abort recorded RollingBack, the Service routed %+v; want all on green first", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the state never showed RollingBack (deadline of the watch, not a measurement)")
	}
	if s := a.state(); s.Phase != rollout.PhaseStable || s.Active.Image != "reg/shop@sha256:v2" {
		t.Fatalf("after the abort: %+v", s)
	}
}

// TestEdgeAbortWaitsForTheEdge: an abort of a canary at the edge puts all
// weight back on the stable version, then waits until the edge shows it
// before it removes the canary's pods: HAProxy applies weights a moment
// after the Service asks for them, and requests it still sends to pods
// already gone fail (seen in the lab: 9 answers 503 while the edge took
// 2.7 s). The stand-in keeps showing the canary's weights for its next 5
// reads after the abort asked for all on the stable version, and notes
// whether the canary's Deployment was still there at each of them.
func TestEdgeAbortWaitsForTheEdge(t *testing.T) {
	a := newApp(t, func(s *rollout.AppSpec) {
		s.Strategy.Type = rollout.StrategyCanary
		s.Strategy.Canary.Steps = []int{25, 100}
	})
	a.useEdgeStandIn(true)
	if _, err := a.edgePromoter("test").Promote(context.Background(), rollout.Request{Spec: a.spec, Image: "reg/shop@sha256:v1"}); err != nil {
		t.Fatalf("v1: %v\n%s", err, a.out)
	}
	// v2 (green) killed at its first step, as TestEdgeCanaryKilledThenAborted does.
	ctx, kill := context.WithCancelCause(context.Background())
	a.mu.Lock()
	a.onProbe = func() {
		svc, err := a.cs.CoreV1().Services(a.ns).Get(context.Background(), a.spec.Name, metav1.GetOptions{})
		if err == nil && svc.Annotations[contract.AnnotationEdgeWeights] == `{"blue":75,"green":25}` {
			kill(rollout.ErrHandedOver)
		}
	}
	a.mu.Unlock()
	if _, err := a.edgePromoter("dies").Promote(ctx, rollout.Request{Spec: a.spec, Image: "reg/shop@sha256:v2"}); err == nil {
		t.Fatalf("the promote killed at its first step returned no error\n%s", a.out)
	}
	lagging, canaryGone := 0, 0
	a.mu.Lock()
	a.onProbe = nil
	a.edgeLag = func(asked map[string]int) map[string]int {
		if asked[rollout.ColorBlue] != 100 || lagging == 5 {
			return asked
		}
		lagging++
		if a.replicas(rollout.ColorGreen) == -1 {
			canaryGone++
		}
		return map[string]int{rollout.ColorBlue: 75, rollout.ColorGreen: 25}
	}
	a.mu.Unlock()
	if _, err := a.edgePromoter("abort").Abort(context.Background(), a.spec); err != nil {
		t.Fatalf("abort: %v\n%s", err, a.out)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if lagging != 5 {
		t.Fatalf("the abort read the lagging edge %d times; want it to wait through all 5 reads\n%s", lagging, a.out)
	}
	if canaryGone != 0 {
		t.Errorf("the canary's Deployment was gone at %d of the 5 reads where the edge still sent it 25%%\n%s", canaryGone, a.out)
	}
	if a.replicas(rollout.ColorGreen) != -1 || a.serviceColor() != rollout.ColorBlue {
		t.Errorf("after the abort: green replicas %d, Service on %s; want green removed, all on blue", a.replicas(rollout.ColorGreen), a.serviceColor())
	}
	if !strings.Contains(a.out.String(), "the edge shows weights blue 100%") {
		t.Errorf("the abort does not say the edge showed all weight back:\n%s", a.out)
	}
}

// TestEdgeNotApplyingRollsBack: an edge that never shows the weights
// (edge sync not running) fails the promote after EdgeConfirmTimeout with
// a message naming 'edge sync --watch'; traffic returns to the old version.
func TestEdgeNotApplyingRollsBack(t *testing.T) {
	a := newApp(t, nil)
	a.useEdgeStandIn(false)
	p := a.edgePromoter("test")
	p.EdgeConfirmTimeout = 300 * time.Millisecond
	if _, err := p.Promote(context.Background(), rollout.Request{Spec: a.spec, Image: "reg/shop@sha256:v1"}); err != nil {
		t.Fatalf("v1 (blue 100 is what the stand-in shows): %v\n%s", err, a.out)
	}
	_, err := p.Promote(context.Background(), rollout.Request{Spec: a.spec, Image: "reg/shop@sha256:v2"})
	var failed *rollout.ProbeFailedError
	if !errors.As(err, &failed) || !strings.Contains(failed.Reason, "is 'tsys-ci edge sync --watch --by-version' running") || !strings.Contains(failed.Reason, "blue has weight 100") {
		t.Fatalf("want a rollback naming edge sync --watch, got %v\n%s", err, a.out)
	}
	if c := a.serviceColor(); c != rollout.ColorBlue {
		t.Fatalf("service on %s after the rollback", c)
	}
}
