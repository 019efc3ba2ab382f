package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/apiserver"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// The leader's pod is deleted while it runs a deploy: force-deleted
// (grace 0: the kubelet gives its container 2 s between SIGTERM and
// SIGKILL), or with a 3 s grace period. A drain until the shutdown timeout
// (5 min here) would be cut by SIGKILL and leave the deploy's promote
// lease held (10 min here) for the next leader to wait out. The leader
// instead reads that its pod is gone, or its deletion deadline, cancels
// the deploy in time, releases the promote lease and returns; the other
// replica leads, finds the deploy unfinished in the rollout state and
// resumes it under its own name. No kubelet runs, so the candidate never
// becomes ready and the deploy stays under way until canceled.
func TestLeaderWithoutTimeHandsItsDeployOver(t *testing.T) {
	for _, grace := range []int64{0, 3} {
		t.Run(fmt.Sprintf("grace %d s", grace), func(t *testing.T) { handOver(t, grace) })
	}
}

func handOver(t *testing.T, grace int64) {
	c := apiserver.Client(t)
	ctx := context.Background()
	serveNS, appNS, app := fmt.Sprintf("handover-serve-%d", grace), fmt.Sprintf("handover-app-%d", grace), "hello"
	namespace(t, c, serveNS)
	namespace(t, c, appNS)
	spec := filepath.Join(t.TempDir(), "hello.yaml")
	writeFile(t, spec, "name: hello\nnamespace: "+appNS+"\nreplicas: 1\nports: [{name: http, containerPort: 8080}]\n")
	conf := &serve.Config{Registry: "reg.example", InsecurePlainHTTP: true, Policies: []serve.DeployPolicy{{Name: "hello", Repository: "e2e/hello", Tags: "sv*", App: app, Namespace: appNS, Spec: spec}}}

	// A pod on no node is deleted at once whatever the grace period;
	// on a node (with no kubelet here) it keeps its deletion deadline.
	a := startHandoverReplica(t, c, serveNS, "serve-a", "www1", conf)
	testenv.Eventually(t, "serve-a leading", 30*time.Second, func() bool { return a.leader(t) })
	b := startHandoverReplica(t, c, serveNS, "serve-b", "", conf)

	image := "reg.example/e2e/hello@sha256:" + strings.Repeat("d", 64)
	if code := deliver(t, a, "reg.example", "e2e/hello", "sv1", strings.Repeat("d", 64)); code != http.StatusAccepted {
		t.Fatalf("serve-a answered the event %d, want 202", code)
	}
	testenv.Eventually(t, "the deploy under way, its lease held by serve-a", 30*time.Second, func() bool {
		if d := doneDeploys(t, a); len(d) != 0 {
			t.Fatalf("the deploy ended before it could be handed over: %v", d)
		}
		st, err := rollout.Status(ctx, c, appNS, app)
		return err == nil && st != nil && st.InProgress() && st.Candidate != nil && st.Candidate.Image == image &&
			promoteHolder(t, c, appNS, app) == "serve/serve-a"
	})

	// As the kubelet sees a deletion: the pod object gone (grace 0) or
	// given its deadline, then SIGTERM (the replica's context ends).
	if err := c.CoreV1().Pods(serveNS).Delete(ctx, "serve-a", metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
	a.stop()
	select {
	case err := <-a.done:
		a.done <- err // for Cleanup
		if err == nil || !strings.Contains(err.Error(), "canceled") {
			t.Errorf("serve-a's shutdown returned %v, want the canceled deploy named", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("serve-a still draining its deploy 60 s after its pod was deleted with grace %d s (its shutdown timeout is 5 min)", grace)
	}
	if h := promoteHolder(t, c, appNS, app); h == "serve/serve-a" {
		t.Fatalf("serve-a returned with the promote lease still held by it")
	}
	// The promote lease lasts 10 min: only a release lets serve-b in.
	testenv.Eventually(t, "serve-b leading and resuming the deploy under its lease", 60*time.Second, func() bool {
		return b.leader(t) && promoteHolder(t, c, appNS, app) == "serve/serve-b"
	})
	st, err := rollout.Status(ctx, c, appNS, app)
	if err != nil {
		t.Fatal(err)
	}
	if !st.InProgress() || st.Candidate == nil || st.Candidate.Image != image {
		t.Errorf("state while serve-b resumes: %+v, want the same candidate under way", st)
	}
	// serve-b's turn to go: its pod force-deleted too, so its Cleanup
	// does not wait out the shutdown timeout either.
	zero := int64(0)
	if err := c.CoreV1().Pods(serveNS).Delete(ctx, "serve-b", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
}

// startHandoverReplica runs a replica named name with its pod (on node, ""
// for none), as the chart does: leader label, a real promote deployer with a 10 min promote lease,
// a 5 min shutdown timeout.
func startHandoverReplica(t *testing.T, c kubernetes.Interface, ns, name, node string, conf *serve.Config) *replica {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "serve", Image: "tsys-ci"}}}}
	if _, err := c.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := &serve.PromoterDeployer{Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Verify:   func(_ context.Context, image string) (string, error) { return image, nil },
		Promoter: rollout.Promoter{Client: c, Clock: rollout.RealClock{}, Holder: "serve/" + name, LeaseDuration: 10 * time.Minute}}
	le := &serve.LeaderElection{Client: c, Namespace: ns, Name: "tsys-ci-serve", Identity: name,
		LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond, LabelPod: ns + "/" + name}
	return startServeFor(t, le, conf, d, 5*time.Minute)
}

// doneDeploys returns the finished deploys in r's API.
func doneDeploys(t *testing.T, r *replica) []map[string]any {
	t.Helper()
	resp, err := getAPI(r, "/api/v1/deploys")
	if err != nil {
		t.Fatalf("%s deploys API: %v", r.name, err)
	}
	defer resp.Body.Close()
	var got struct{ Deploys []map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("%s deploys API: %v", r.name, err)
	}
	var done []map[string]any
	for _, d := range got.Deploys {
		if d["state"] == "done" {
			done = append(done, d)
		}
	}
	return done
}

// promoteHolder is the holder of an app's promote lease ("" when free or
// absent).
func promoteHolder(t *testing.T, c kubernetes.Interface, ns, app string) string {
	t.Helper()
	l, err := c.CoordinationV1().Leases(ns).Get(context.Background(), rollout.LeaseName(app), metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}
