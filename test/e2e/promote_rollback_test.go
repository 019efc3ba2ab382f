//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/rollout"
)

const rollbackNS = "e2e-promote-rollback"

const blueGreenStrategy = `  type: blueGreen
  blueGreen: {scaleDownDelay: 10s}`

// TestPromoteManualRollbackUnderLoad: v1 then v2 by blue/green; then
// 'tsys-ci promote --rollback' puts v1 back while two host clients keep
// asking the app's MetalLB address, and a second --rollback goes forward
// to v2 again. Each switch is timed from the Service selecting the
// version's color; tsys-ci status shows the history after each. Last, a
// --rollback killed (SIGKILL) while it brings v1 back is completed by its
// re-run once the dead lease is taken over.
func TestPromoteManualRollbackUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	c := client(t)
	v1, v2 := helloImage(t, "v1"), helloImage(t, "v2")
	dir := specNamespace(ctx, t, c, rollbackNS, helloSpec(rollbackNS, 2, 3, blueGreenStrategy))
	mustPromoteRun(t, dir, "--image", v1)
	url := appURL(ctx, t, c, rollbackNS)
	firstAnswerAfter(ctx, t, url, time.Now())
	r := mustPromoteRun(t, dir, "--image", v2)
	t.Logf("v1, then v2 live (v2's promote %s)", r.took.Round(100*time.Millisecond))
	checkStatus(t, rollbackNS, "v2", "v1", "promoted v1", "promoted v2")

	back := func(what, to string) {
		t.Helper()
		tl := watchRollout(t, rollbackNS)
		tl.waitFor(ctx, t, "the first poll", func(rolloutEvent) bool { return true })
		l := startAppLoad(t, url)
		r := runPromote(t, dir, "--rollback")
		settle(ctx, 3*time.Second)
		total, answers, failures := l.finish(t)
		evs := tl.stop()
		if r.code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", what, r.code, r.stderr, r.stdout)
		}
		t.Logf("%s progress:\n%s", what, r.stderr)
		report(t, what, r.took, total, answers, failures)
		t.Logf("timeline:\n%s", eventLines(evs))
		if r.result.Image != helloImage(t, to) {
			t.Errorf("%s: result image %s, want %s", what, r.result.Image, helloImage(t, to))
		}
		if answers[to] == 0 {
			t.Errorf("%s: no answer from %s: %v", what, to, answers)
		}
		for _, e := range evs {
			if e.selector == "both" {
				t.Errorf("%s: the Service selected both colors at %s", what, e)
			}
		}
		switchReport(t, what, l, serviceSwitch(t, evs), to, true)
		if got := sample(t, url, 20); len(got) != 1 || got[to] != 20 {
			t.Errorf("after %s, 20 requests got %v, want %s alone", what, got, to)
		}
	}
	back("rollback v2 -> v1", "v1")
	checkStatus(t, rollbackNS, "v1", "v2", "promoted v1", "promoted v2", "rolled-back v1")
	back("second rollback v1 -> v2", "v2")
	checkStatus(t, rollbackNS, "v2", "v1", "promoted v1", "promoted v2", "rolled-back v1", "rolled-back v2")

	// A rollback whose process is killed while v1's pods come up: the
	// re-run of the same command takes the dead lease over and completes
	// it (v2 kept at zero for the next rollback).
	tl := watchRollout(t, rollbackNS)
	l := startAppLoad(t, url)
	start := time.Now()
	holder, killedAt := killPromoteWhen(ctx, t, tl, dir, "the rollback to v1 under way",
		func(e rolloutEvent) bool { return e.phase == rollout.PhaseRollingBack }, "--rollback")
	r = rerunAfterKill(ctx, t, c, rollbackNS, dir, holder, killedAt, "--rollback")
	took := time.Since(start)
	settle(ctx, 3*time.Second)
	total, answers, failures := l.finish(t)
	evs := tl.stop()
	report(t, "rollback v2 -> v1 killed, re-run", took, total, answers, failures)
	t.Logf("timeline:\n%s", eventLines(evs))
	if !r.result.Resumed || r.result.Image != v1 || !strings.Contains(r.stderr, "resuming the rollback to "+v1) {
		t.Errorf("re-run of the killed rollback: result %+v; want the rollback to v1 resumed", r.result)
	}
	switchReport(t, "rollback v2 -> v1 killed, re-run", l, serviceSwitch(t, evs), "v1", true)
	if got := sample(t, url, 20); len(got) != 1 || got["v1"] != 20 {
		t.Errorf("after the re-run of the killed rollback, 20 requests got %v, want v1 alone", got)
	}
	checkStatus(t, rollbackNS, "v1", "v2", "promoted v1", "promoted v2", "rolled-back v1", "rolled-back v2", "rolled-back v1")
}
