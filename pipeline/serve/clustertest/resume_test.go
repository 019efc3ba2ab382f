package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/apiserver"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// A replica that starts leading finds the deploy the previous leader was
// running when it died (left in the app's rollout state, the app's promote
// lease still held by the dead replica) and finishes it once that lease
// has expired: here a rollback left at phase RollingBack, whose candidate
// is removed and whose state ends Stable. Harbor sends no event again, so
// nothing else would finish it.
func TestNewLeaderResumesUnfinishedDeploy(t *testing.T) {
	c := apiserver.Client(t)
	ctx := context.Background()
	const ns, app = "resume-app", "hello"
	namespace(t, c, ns)
	namespace(t, c, "resume-serve")
	candidate := leftRollback(t, c, ns, app)
	// The dead leader's promote lease, just renewed: the new leader must
	// wait for it to expire (2 s) and be confirmed expired (2 s more).
	holder, secs, now := "serve/dead-replica", int32(2), metav1.NewMicroTime(time.Now())
	if _, err := c.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: rollout.LeaseName(app)},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	spec := filepath.Join(t.TempDir(), "hello.yaml")
	writeFile(t, spec, "name: hello\nnamespace: resume-app\nreplicas: 1\nports: [{name: http, containerPort: 8080}]\n")
	conf := &serve.Config{Registry: "reg.example", InsecurePlainHTTP: true, Policies: []serve.DeployPolicy{{Name: "hello", Repository: "e2e/hello", Tags: "sv*", App: app, Namespace: ns, Spec: spec}}}
	d := &serve.PromoterDeployer{Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Verify:   func(_ context.Context, image string) (string, error) { return image, nil },
		Promoter: rollout.Promoter{Client: c, Clock: rollout.RealClock{}, Holder: "serve/new-leader", LeaseDuration: 2 * time.Second}}
	start := time.Now()
	r := startServe(t, &serve.LeaderElection{Client: c, Namespace: "resume-serve", Name: "tsys-ci-serve", Identity: "new-leader",
		LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond}, conf, d)

	var rec map[string]any
	testenv.Eventually(t, "the resume recorded as done", 30*time.Second, func() bool {
		resp, err := getAPI(r, "/api/v1/deploys")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var got struct{ Deploys []map[string]any }
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatalf("deploys API: %v", err)
		}
		for _, d := range got.Deploys {
			if d["kind"] == serve.DeployResume && d["state"] == "done" {
				rec = d
				return true
			}
		}
		return false
	})
	t.Logf("resumed and finished %s after the replica started (lease held by the dead replica for 2 s)", time.Since(start).Round(time.Millisecond))
	if rec["result"] != serve.ResultRolledBack || rec["trigger"] != "leader" || rec["by"] != "new-leader" || rec["image"] != candidate || rec["app"] != app {
		t.Errorf("resume record %v, want result rolled_back, trigger leader, by new-leader, image %s", rec, candidate)
	}
	st, err := rollout.Status(ctx, c, ns, app)
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != rollout.PhaseStable || st.Candidate != nil || st.Active != nil || len(st.History) != 1 || st.History[0].Result != rollout.ResultRolledBack {
		t.Errorf("state after the resume: %+v, want Stable, no candidate, one rolled-back history entry", st)
	}
	if _, err := c.AppsV1().Deployments(ns).Get(ctx, rollout.DeploymentName(app, rollout.ColorBlue), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the rolled-back candidate's Deployment is still there: %v", err)
	}
}

// leftRollback leaves app in ns as a process that died rolling back a
// blue/green candidate would: the state at RollingBack and the
// candidate's Deployment (no kubelet runs, so finishing the rollback needs
// no pod). It returns the candidate's image.
func leftRollback(t *testing.T, c kubernetes.Interface, ns, app string) string {
	t.Helper()
	ctx := context.Background()
	candidate := "reg.example/e2e/hello@sha256:" + "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
	state := rollout.State{App: app, Phase: rollout.PhaseRollingBack, Strategy: rollout.StrategyBlueGreen,
		Candidate: &rollout.Release{Color: rollout.ColorBlue, Image: candidate, Revision: "sv1"}, Message: "probe health: 500"}
	b, _ := json.Marshal(state)
	if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: rollout.StateName(app)},
		Data: map[string]string{"state.json": string(b)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	one := int32(1)
	labels := map[string]string{"app": app}
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: rollout.DeploymentName(app, rollout.ColorBlue)},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: candidate}}}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return candidate
}

// A resume that finds the app's promote lease held (here for 10 min) by
// a replica still draining asks for it again every 2 s, so it starts as
// soon as that replica releases the lease, not when the lease would
// expire.
func TestResumeTakesAReleasedLeaseAtOnce(t *testing.T) {
	c := apiserver.Client(t)
	ctx := context.Background()
	const ns, app = "resume-poll", "hello"
	namespace(t, c, ns)
	leftRollback(t, c, ns, app)
	holder, secs, now := "serve/draining-replica", int32(600), metav1.NewMicroTime(time.Now())
	if _, err := c.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: rollout.LeaseName(app)},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(t.TempDir(), "hello.yaml")
	writeFile(t, spec, "name: hello\nnamespace: "+ns+"\nreplicas: 1\nports: [{name: http, containerPort: 8080}]\n")
	clock := &waitsClock{}
	d := &serve.PromoterDeployer{Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Promoter: rollout.Promoter{Client: c, Clock: clock, Holder: "serve/new-leader", Out: io.Discard}}
	done := make(chan error, 1)
	go func() {
		done <- d.Deploy(ctx, serve.DeployRequest{ID: "1", Kind: serve.DeployResume, Policy: "hello", App: app, Namespace: ns, Spec: spec})
	}()
	testenv.Eventually(t, "the resume waiting for the lease", 30*time.Second, func() bool { return len(clock.waits()) > 0 })
	l, err := c.CoordinationV1().Leases(ns).Get(ctx, rollout.LeaseName(app), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l.Spec.HolderIdentity = nil // released, as promote does when it ends
	if _, err := c.CoordinationV1().Leases(ns).Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The waits while the lease was held (the lease's renewals come after).
	held := clock.waits()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, serve.ErrRolledBack) {
			t.Fatalf("resume: %v, want the interrupted rollback finished", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the resume did not start within 60 s of the lease's release; it waited %v", clock.waits())
	}
	for _, w := range held {
		if w > 2*time.Second {
			t.Errorf("the resume slept %s at once while the lease was held; it must ask again within 2 s (waits %v)", w, held)
		}
	}
}

// waitsClock is the wall clock, keeping every wait asked of it.
type waitsClock struct {
	mu sync.Mutex
	d  []time.Duration
}

func (c *waitsClock) Now() time.Time { return time.Now() }

func (c *waitsClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.d = append(c.d, d)
	c.mu.Unlock()
	return time.After(d)
}

func (c *waitsClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.d...)
}

// A replica whose container restarted finds its pod still labelled as the
// leader's by the process before it; while another replica holds the
// Lease, the label must go, or the Service would send Harbor's deliveries
// to a follower.
func TestRestartedReplicaDropsStaleLeaderLabel(t *testing.T) {
	c := apiserver.Client(t)
	ctx := context.Background()
	const ns = "serve-stale"
	namespace(t, c, ns)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "serve-x", Labels: map[string]string{serve.LeaderLabel: "true"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "serve", Image: "tsys-ci"}}}}
	if _, err := c.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	holder, secs, now := "serve-y", int32(3600), metav1.NewMicroTime(time.Now())
	if _, err := c.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "tsys-ci-serve"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := startReplicaWith(t, &serve.LeaderElection{Client: c, Namespace: ns, Name: "tsys-ci-serve", Identity: "serve-x",
		LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond, LabelPod: ns + "/serve-x"})
	testenv.Eventually(t, "the stale leader label removed", 10*time.Second, func() bool { return len(labelled(t, c, ns)) == 0 })
	if r.leader(t) {
		t.Fatal("the replica leads although serve-y holds the Lease")
	}
}

// A resume finds the app's promote lease held (10 min, just renewed) by
// another replica. If the kubelet reports that replica's container not
// running (crash back-off after a SIGKILL), the lease is taken at once;
// while it runs the process that took the lease, the resume waits (here
// given up after 3 s).
func TestResumeTakesADeadReplicasLeaseAtOnce(t *testing.T) {
	c := apiserver.Client(t)
	ctx := context.Background()
	const ns, app, serveNS = "resume-gone", "hello", "resume-gone-serve"
	namespace(t, c, ns)
	namespace(t, c, serveNS)
	leftRollback(t, c, ns, app)
	pod, err := c.CoreV1().Pods(serveNS).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "serve-a"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "serve", Image: "tsys-ci"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	taken := time.Now()
	holder, secs, at := serve.ReplicaHolderPrefix+"serve-a", int32(600), metav1.NewMicroTime(taken)
	if _, err := c.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: rollout.LeaseName(app)},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &at, RenewTime: &at}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	setState := func(s corev1.ContainerState) {
		t.Helper()
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "serve", Image: "tsys-ci", State: s}}
		if pod, err = c.CoreV1().Pods(serveNS).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	spec := filepath.Join(t.TempDir(), "hello.yaml")
	writeFile(t, spec, "name: hello\nnamespace: "+ns+"\nreplicas: 1\nports: [{name: http, containerPort: 8080}]\n")
	out := &testenv.SyncBuffer{}
	d := &serve.PromoterDeployer{Log: slog.New(slog.NewTextHandler(out, nil)), ResumeWait: 3 * time.Second,
		Promoter: rollout.Promoter{Client: c, Clock: rollout.RealClock{}, Holder: serve.ReplicaHolderPrefix + "serve-b",
			HolderGone: serve.ReplicaGone(c, serveNS, "serve")}}
	resume := func() error {
		return d.Deploy(ctx, serve.DeployRequest{ID: "1", Kind: serve.DeployResume, Policy: "hello", App: app, Namespace: ns, Spec: spec})
	}

	// Running since before the lease was taken: that process may still
	// be deploying.
	setState(corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(taken.Add(-time.Hour))}})
	if err := resume(); err == nil || !strings.Contains(err.Error(), "gave up after 3s") {
		t.Fatalf("resume while the holder runs: %v, want it to wait and give up\n%s", err, out)
	}
	// Killed and in crash back-off: the lease is free now.
	setState(corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}})
	if err := resume(); !errors.Is(err, serve.ErrRolledBack) {
		t.Fatalf("resume after the holder died: %v, want the interrupted rollback finished at once\n%s", err, out)
	}
	if !strings.Contains(out.String(), "container serve of pod serve-a is not running (CrashLoopBackOff)") {
		t.Errorf("the log does not say why the lease was taken over:\n%s", out)
	}
}
