//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/rollout"
)

// killPromoteWhen starts tsys-ci promote with args, waits until the
// timeline shows cond, and kills the process with SIGKILL (nothing runs
// on its way out: no rollback, no lease release). It returns the lease
// holder the process wrote and when it was killed.
func killPromoteWhen(ctx context.Context, t *testing.T, tl *timeline, dir, what string, cond func(rolloutEvent) bool, args ...string) (holder string, killedAt time.Time) {
	t.Helper()
	cmd := promoteCmd(t, dir, moreApp, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ev := tl.waitFor(ctx, t, what, func(e rolloutEvent) bool {
		select {
		case err := <-exited:
			t.Fatalf("the promote to be killed %s ended on its own before %s: %v\n%s", strings.Join(args, " "), what, err, out.String())
		default:
		}
		return cond(e)
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt = time.Now()
	<-exited
	t.Logf("killed tsys-ci promote %s (pid %d) with SIGKILL at %s, %s (seen %s); its output:\n%s",
		strings.Join(args, " "), cmd.Process.Pid, killedAt.UTC().Format("15:04:05.000"), what, ev, out.String())
	return fmt.Sprintf("/%d", cmd.Process.Pid), killedAt
}

// rerunAfterKill re-runs a promote after its process was killed: at once,
// the dead process's lease is still live and the re-run is refused with
// who holds it; once the lease has expired, the next re-run watches it stay
// unchanged for one more lease duration (a clock ahead here must not take
// a live lease) and takes it over.
func rerunAfterKill(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, dir, holderSuffix string, killedAt time.Time, args ...string) promoteRun {
	t.Helper()
	r := runPromote(t, dir, args...)
	if r.code == 0 || !strings.Contains(r.stderr, "another promote of "+moreApp+" is running (") || !strings.Contains(r.stderr, holderSuffix+",") {
		t.Fatalf("a re-run at once after the kill: exit %d, want a refusal naming the dead holder (…%s)\n%s", r.code, holderSuffix, r.stderr)
	}
	t.Logf("re-run at once: refused after %s, exit %d: %s", r.took.Round(100*time.Millisecond), r.code, strings.TrimSpace(lastLine(r.stderr)))

	waitLeaseExpired(ctx, t, c, ns, killedAt, holderSuffix)
	r = runPromote(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("re-run after the lease expired: exit %d\n%s\n%s", r.code, r.stderr, r.stdout)
	}
	if !strings.Contains(r.stderr, "looks expired; watching it for") {
		t.Errorf("re-run after the lease expired: no word of taking the dead process's lease over:\n%s", r.stderr)
	}
	t.Logf("re-run after the lease expired: done in %s (kill to done %s); progress:\n%s",
		r.took.Round(100*time.Millisecond), time.Since(killedAt).Round(100*time.Millisecond), r.stderr)
	return r
}

// waitLeaseExpired waits until the lease of moreApp in ns, held by the
// process killed at killedAt (its holder ends in holderSuffix), expires.
func waitLeaseExpired(ctx context.Context, t *testing.T, c kubernetes.Interface, ns string, killedAt time.Time, holderSuffix string) {
	t.Helper()
	lease, err := c.CoordinationV1().Leases(ns).Get(ctx, rollout.LeaseName(moreApp), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h == nil || !strings.HasSuffix(*h, holderSuffix) {
		t.Fatalf("lease %s holder %v, want the killed process (…%s)", lease.Name, h, holderSuffix)
	}
	expires := lease.Spec.RenewTime.Add(time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second)
	t.Logf("the dead process's lease was last renewed %s before the kill; it expires %s after the kill",
		killedAt.Sub(lease.Spec.RenewTime.Time).Round(100*time.Millisecond), expires.Sub(killedAt).Round(100*time.Millisecond))
	for time.Now().Before(expires) {
		select {
		case <-ctx.Done():
			t.Fatalf("the lease did not expire before the deadline (expires %s)", expires)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestPromoteKilledBlueGreenRolledBack: a blue/green promote of v2 is
// killed (SIGKILL) while its new version is up on the preview Service and
// being probed; the re-run promotes another image (v4): it rolls the
// interrupted v2 back first (v2 never got a user's request), then puts v4
// live, while two host clients keep asking the app's MetalLB address.
func TestPromoteKilledBlueGreenRolledBack(t *testing.T) {
	const ns = "e2e-promote-kill-bg"
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	c := client(t)
	v1, v2, v4 := helloImage(t, "v1"), helloImage(t, "v2"), helloImage(t, "v4")
	// Five probe successes a second apart: the window to kill in.
	dir := specNamespace(ctx, t, c, ns, helloSpec(ns, 2, 5, blueGreenStrategy))
	mustPromoteRun(t, dir, "--image", v1)
	url := appURL(ctx, t, c, ns)
	firstAnswerAfter(ctx, t, url, time.Now())

	tl := watchRollout(t, ns)
	l := startAppLoad(t, url)
	start := time.Now()
	holder, killedAt := killPromoteWhen(ctx, t, tl, dir, "v2 on the preview, being probed",
		func(e rolloutEvent) bool { return e.phase == rollout.PhaseProbing && e.candidate == "v2" }, "--image", v2)
	r := rerunAfterKill(ctx, t, c, ns, dir, holder, killedAt, "--image", v4)
	took := time.Since(start)
	settle(ctx, 3*time.Second)
	total, answers, failures := l.finish(t)
	evs := tl.stop()
	report(t, "v1 -> v2 killed while probed -> re-run with v4", took, total, answers, failures)
	t.Logf("timeline:\n%s", eventLines(evs))
	if !strings.Contains(r.stderr, "was left at phase Probing; rolling it back before promoting "+v4) || r.result.Result != rollout.ResultPromoted || r.result.Resumed {
		t.Errorf("re-run with v4: result %+v; want the interrupted v2 rolled back, then v4 promoted", r.result)
	}
	if answers["v2"] != 0 {
		t.Errorf("the interrupted v2 answered %d requests on the live address", answers["v2"])
	}
	for _, e := range evs {
		if e.selector == "both" {
			t.Errorf("the Service selected both colors at %s", e)
		}
	}
	switchReport(t, "killed v2, re-run v4", l, serviceSwitch(t, evs), "v4", true)
	if got := sample(t, url, 20); len(got) != 1 || got["v4"] != 20 {
		t.Errorf("after the re-run, 20 requests got %v, want v4 alone", got)
	}
	checkStatus(t, ns, "v4", "v1", "promoted v1", "rolled-back v2", "promoted v4")
}

// TestPromoteKilledCanaryResumed: a canary promote of v2 (two replicas:
// 50 %, then 100 %) is killed (SIGKILL) while its first step splits the
// traffic; the split stays as the recorded state says (phase Canary, step
// 1) until the re-run of the same promote takes the dead lease over and
// resumes from that step to the end, while two host clients keep asking
// the app's MetalLB address.
func TestPromoteKilledCanaryResumed(t *testing.T) {
	const ns = "e2e-promote-kill-canary"
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	c := client(t)
	v1, v2 := helloImage(t, "v1"), helloImage(t, "v2")
	dir := specNamespace(ctx, t, c, ns, helloSpec(ns, 2, 3, `  type: canary
  canary: {steps: [50, 100], stepPause: 8s}
  blueGreen: {scaleDownDelay: 10s}`))
	mustPromoteRun(t, dir, "--image", v1)
	url := appURL(ctx, t, c, ns)
	firstAnswerAfter(ctx, t, url, time.Now())

	tl := watchRollout(t, ns)
	l := startAppLoad(t, url)
	start := time.Now()
	holder, killedAt := killPromoteWhen(ctx, t, tl, dir, "the first canary step splitting traffic",
		func(e rolloutEvent) bool { return e.phase == rollout.PhaseCanary && e.selector == "both" }, "--image", v2)
	text, st := status(t, ns)
	t.Logf("tsys-ci status right after the kill:\n%s", text)
	if st.Phase != rollout.PhaseCanary || st.Candidate == nil || st.Candidate.Image != v2 || !strings.Contains(text, "in progress: "+v2) {
		t.Errorf("status after the kill: phase %s, candidate %v; want the canary of v2 in progress", st.Phase, st.Candidate)
	}
	r := rerunAfterKill(ctx, t, c, ns, dir, holder, killedAt, "--image", v2)
	took := time.Since(start)
	settle(ctx, 3*time.Second)
	total, answers, failures := l.finish(t)
	evs := tl.stop()
	report(t, "v1 -> v2 canary killed in step 1 -> re-run resumed", took, total, answers, failures)
	t.Logf("timeline:\n%s", eventLines(evs))
	if !r.result.Resumed || r.result.Result != rollout.ResultPromoted || !strings.Contains(r.stderr, "resuming the promote of "+v2+" left at phase Canary") {
		t.Errorf("re-run: result %+v; want the killed canary resumed and promoted", r.result)
	}
	// Traffic split only while the recorded state is a canary step.
	for _, e := range evs {
		if e.selector == "both" && e.phase != rollout.PhaseCanary {
			t.Errorf("the Service selected both colors outside a canary step: %s", e)
		}
	}
	l.mu.Lock()
	hits := append([]hit(nil), l.hits...)
	l.mu.Unlock()
	lines, _ := sharesBy(hits, evs, "new-connection", func(e rolloutEvent) string {
		return fmt.Sprintf("%s step %d (Service on %s)", e.phase, e.step+1, e.selector)
	})
	t.Logf("new connections' answers by rollout state:\n  %s", strings.Join(lines, "\n  "))
	switchReport(t, "killed canary, resumed", l, serviceSwitch(t, evs), "v2", false)
	if got := sample(t, url, 20); len(got) != 1 || got["v2"] != 20 {
		t.Errorf("after the re-run, 20 requests got %v, want v2 alone", got)
	}
	checkStatus(t, ns, "v2", "v1", "promoted v1", "promoted v2")
}
