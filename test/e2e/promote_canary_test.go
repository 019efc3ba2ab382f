//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/rollout"
)

const canaryNS = "e2e-promote-canary"

// canaryStrategy asks the default steps 10/50/100 of four replicas: 10 %
// cannot be given by four pods, so the first step is 25 % (one of four),
// and promote says so.
const canaryStrategy = `  type: canary
  canary: {steps: [10, 50, 100], stepPause: 8s}
  blueGreen: {scaleDownDelay: 10s}`

// TestPromoteCanaryUnderLoad: v1, then v2 by canary with four replicas,
// while two host clients keep asking the app's MetalLB address. The new
// connections' answers are counted per canary step as the rollout state
// says it: v2's share moves 25 % -> 50 % -> all. No v2 answer comes before
// the Service first selects both colors; the switch to v2 alone is timed.
func TestPromoteCanaryUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	c := client(t)
	v1, v2 := helloImage(t, "v1"), helloImage(t, "v2")
	dir := specNamespace(ctx, t, c, canaryNS, helloSpec(canaryNS, 4, 3, canaryStrategy))

	r := mustPromoteRun(t, dir, "--image", v1)
	t.Logf("v1 live in %s (canary's first version takes all traffic once probed)", r.took.Round(100*time.Millisecond))
	url := appURL(ctx, t, c, canaryNS)
	firstAnswerAfter(ctx, t, url, time.Now())

	tl := watchRollout(t, canaryNS)
	// Endpoints and pods too: a request fails here about once in
	// several thousand (a 10 s timeout), cause not found yet; the drill
	// log sets each failure beside what the cluster did then.
	var dl drillLog
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	dl.watchNamespace(watchCtx, t, canaryNS)
	l := startAppLoad(t, url)
	r = runPromote(t, dir, "--image", v2)
	settle(ctx, 3*time.Second)
	total, answers, failures := l.finish(t)
	evs := tl.stop()
	dl.explainFailures(t, l, "the canary")
	if r.code != 0 {
		t.Fatalf("promote v2: exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("promote v2 (canary) progress:\n%s", r.stderr)
	report(t, "v1 -> v2 canary", r.took, total, answers, failures)
	t.Logf("timeline:\n%s", eventLines(evs))

	// The plan promote chose, with the weights it could really give.
	var plan []string
	for _, s := range r.result.Steps {
		p := fmt.Sprintf("%s (%d of %d pods)", s.WeightString(), s.CanaryPods, s.CanaryPods+s.StablePods)
		if s.Note != "" {
			p += ": " + s.Note
		}
		plan = append(plan, p)
	}
	t.Logf("canary plan: %s", strings.Join(plan, "; "))
	if len(r.result.Steps) != 3 || r.result.Steps[0].CanaryPods != 1 || r.result.Steps[1].CanaryPods != 2 || r.result.Steps[0].Note == "" {
		t.Errorf("canary plan %+v, want 1, 2, 4 of 4 pods with a note on the 10 %% asked", r.result.Steps)
	}

	// The new connections' answers per step.
	label := func(e rolloutEvent) string {
		switch {
		case e.phase == rollout.PhaseCanary && e.step < 2:
			return fmt.Sprintf("canary step %d (%s asked)", e.step+1, r.result.Steps[e.step].WeightString())
		case e.phase == rollout.PhaseCanary:
			return "canary, new version scaling to 4 before the switch"
		default:
			return fmt.Sprintf("%s (Service on %s)", e.phase, e.selector)
		}
	}
	l.mu.Lock()
	hits := append([]hit(nil), l.hits...)
	l.mu.Unlock()
	lines, counts := sharesBy(hits, evs, "new-connection", label)
	t.Logf("new connections' answers by rollout step:\n  %s", strings.Join(lines, "\n  "))
	for _, step := range []string{label(rolloutEvent{phase: rollout.PhaseCanary, step: 0}), label(rolloutEvent{phase: rollout.PhaseCanary, step: 1})} {
		if counts[step]["v1"] == 0 || counts[step]["v2"] == 0 {
			t.Errorf("%s: answers %v, want both v1 and v2 while traffic is split", step, counts[step])
		}
	}

	split, i := firstEvent(evs, 0, func(e rolloutEvent) bool { return e.selector == "both" })
	if i < 0 {
		t.Fatalf("the Service never selected both colors during the canary:\n%s", eventLines(evs))
	}
	switchReport(t, "v1 -> v2 canary, first split", l, split, "v2", true)
	// The Service switches, then the state says Switched.
	final, j := firstEvent(evs, i, func(e rolloutEvent) bool { return e.selector != "both" })
	if _, k := firstEvent(evs, j, func(e rolloutEvent) bool { return e.phase == rollout.PhaseSwitched }); j < 0 || k < 0 {
		t.Fatalf("no switch to one color after the split:\n%s", eventLines(evs))
	}
	switchReport(t, "v1 -> v2 canary, switch to v2 alone", l, final, "v2", false)
	t.Logf("v1 -> v2 canary: first split to the switch %s", final.seen.Sub(split.seen).Round(100*time.Millisecond))
	if got := sample(t, url, 20); len(got) != 1 || got["v2"] != 20 {
		t.Errorf("after the canary, 20 requests got %v, want v2 alone", got)
	}
	checkStatus(t, canaryNS, "v2", "v1", "promoted v1", "promoted v2")
}
