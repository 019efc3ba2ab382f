package clustertest

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/apiserver"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// The chart's RBAC, applied to a real API server, lets serve's
// ServiceAccount do what serve and promote do, in the app namespaces only.
func TestChartRBACIsEnoughAndNoMore(t *testing.T) {
	admin := apiserver.Client(t)
	for _, ns := range []string{"tsys-ci", "rbac-shop", "rbac-other", rollout.DefaultAllocNamespace} {
		namespace(t, admin, ns)
	}
	ctx := context.Background()
	c := applyChartRights(t, admin, "tsys-ci", "tsys-ci", "webhookSecrets: {demo: 'Bearer 0123456789abcdef0123'}\nconfig: {registry: harbor.company.example}\ninsecurePlainHTTP: true\nallowUnsigned: true\nappNamespaces: [rbac-shop]\n",
		"rbac.yaml", "leaderpolicy.yaml", "envsecrets.yaml")
	checkAccess(t, c, []access{
		{"patch", "apps", "deployments", "", "rbac-shop", "shop-blue", true},
		{"delete", "apps", "deployments", "", "rbac-shop", "shop-green", true},
		{"patch", "", "services", "", "rbac-shop", "shop", true},
		{"delete", "", "services", "", "rbac-shop", "shop-blue", true}, // a version's own Service, with its Deployment
		{"delete", "", "services", "", "rbac-other", "shop-blue", false},
		{"get", "", "services", "proxy", "rbac-shop", "shop-preview", true},
		{"list", "", "pods", "", "rbac-shop", "", true},
		{"update", "", "configmaps", "", "rbac-shop", "tsys-ci-shop", true},
		{"update", "", "configmaps", "", rollout.DefaultAllocNamespace, rollout.DefaultAllocName, true},
		{"patch", "policy", "poddisruptionbudgets", "", "rbac-shop", "shop", true},
		{"patch", "", "persistentvolumeclaims", "", "rbac-shop", "shop-data", true},
		// Issue 26: the gateway's objects of an api: section, in app namespaces only.
		{"patch", "traefik.io", "ingressroutes", "", "rbac-shop", "shop-api", true},
		{"list", "traefik.io", "middlewares", "", "rbac-shop", "", true},
		{"delete", "traefik.io", "middlewares", "", "rbac-shop", "shop-orders-auth", true},
		{"patch", "traefik.io", "ingressroutes", "", "rbac-other", "shop-api", false},
		// The dashboard's reads (KubeAppReader).
		{"get", "", "configmaps", "", "rbac-shop", "tsys-ci-shop", true},
		{"get", "", "services", "", "rbac-shop", "shop", true},
		{"get", "", "services", "", "rbac-other", "shop", false},
		// Issue 17 finding 4: serve touches no Namespace object.
		{"patch", "", "namespaces", "", "", "rbac-shop", false},
		{"get", "", "namespaces", "", "", "rbac-shop", false},
		{"get", "", "namespaces", "", "", "kube-system", false},
		{"create", "", "events", "", "rbac-shop", "", true},
		{"update", "coordination.k8s.io", "leases", "", "tsys-ci", "tsys-ci-serve", true},
		{"patch", "", "pods", "", "tsys-ci", "tsys-ci-serve-abc12", true}, // the leader label
		{"get", "", "pods", "", "tsys-ci", "tsys-ci-serve-abc12", true},   // its deletion deadline
		{"patch", "", "pods", "", "rbac-shop", "shop-blue-abc12", false},
		// Nothing outside the app namespaces, no secrets, no other namespaces.
		{"patch", "apps", "deployments", "", "rbac-other", "x", false},
		{"get", "", "secrets", "", "rbac-shop", "db", false},
		{"patch", "", "namespaces", "", "", "rbac-other", false},
		{"create", "", "namespaces", "", "", "", false},
		{"delete", "", "namespaces", "", "", "rbac-shop", false},
	})
	leaderLabelOnly(t, admin, c)
	// And for real: the leader Lease, a promote rollback (its Lease and
	// state), an Event, all as the ServiceAccount.
	le := &serve.LeaderElection{Client: c, Namespace: "tsys-ci", Name: "tsys-ci-serve", Identity: "serve-rbac",
		LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond,
		LabelPod: "tsys-ci/tsys-ci-serve-abc12"}
	r := startReplicaWith(t, le)
	testenv.Eventually(t, "the ServiceAccount to take the leader Lease", 30*time.Second, func() bool { return r.leader(t) })
	// serve's own labelling passes the admission policy.
	testenv.Eventually(t, "serve to label its pod as the leader's", 30*time.Second, func() bool {
		p, err := admin.CoreV1().Pods("tsys-ci").Get(ctx, "tsys-ci-serve-abc12", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p.Labels[serve.LeaderLabel] == "true"
	})
	d := &serve.PromoterDeployer{Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Verify:   func(_ context.Context, image string) (string, error) { return image, nil },
		Promoter: rollout.Promoter{Client: c, Clock: rollout.RealClock{}, Holder: "serve/rbac"}}
	spec := t.TempDir() + "/shop.yaml"
	writeFile(t, spec, "name: shop\nnamespace: rbac-shop\nports: [{name: http, containerPort: 8080}]\n")
	err := d.Deploy(ctx, serve.DeployRequest{ID: "1", Kind: serve.DeployRollback, App: "shop", Namespace: "rbac-shop", Spec: spec})
	if err == nil || !strings.Contains(err.Error(), "no previous version") {
		t.Fatalf("rollback as the ServiceAccount: %v, want promote's 'no previous version' (not forbidden)", err)
	}
	sink := &serve.KubeEventSink{Client: c, Instance: "serve-rbac"}
	if err := sink.DeployFinished(ctx, serve.DeployRecord{DeployRequest: serve.DeployRequest{ID: "1", Kind: serve.DeployRollback, App: "shop", Namespace: "rbac-shop"},
		Result: serve.ResultFailed, Finished: time.Now()}); err != nil {
		t.Fatalf("event as the ServiceAccount: %v", err)
	}
	if _, err := (serve.KubeAppReader{Client: c}).AppInfo(ctx, "rbac-shop", "shop"); err != nil {
		t.Fatalf("the dashboard's reads as the ServiceAccount: %v", err)
	}
}

// leaderLabelOnly: RBAC lets serve patch every pod of its namespace (it
// learns its own pod's name at run time); the chart's admission policy
// narrows that to the leader label of its own release's pods (issue 17
// finding 4). Each refused patch below was allowed before the policy.
func leaderLabelOnly(t *testing.T, admin, c kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	pod := func(name string, labels map[string]string) {
		t.Helper()
		_, err := admin.CoreV1().Pods("tsys-ci").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/c@sha256:" + strings.Repeat("ab", 32)}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	pod("tsys-ci-serve-abc12", map[string]string{"app.kubernetes.io/name": "tsys-ci-serve", "app.kubernetes.io/instance": "tsys-ci", "pod-template-hash": "abc"})
	pod("postgres-0", map[string]string{"app": "postgres"})
	patch := func(name, p string) error {
		_, err := c.CoreV1().Pods("tsys-ci").Patch(ctx, name, types.StrategicMergePatchType, []byte(p), metav1.PatchOptions{})
		return err
	}
	const forged = `{"metadata":{"labels":{"tsys-ci.io/serve-leader":"true"}}}`
	// The policy takes effect once the API server has compiled it: wait
	// until it refuses the first forged patch.
	testenv.Eventually(t, "the admission policy to refuse labelling another pod", 30*time.Second, func() bool {
		err := patch("postgres-0", forged)
		if err == nil {
			if _, err := admin.CoreV1().Pods("tsys-ci").Patch(ctx, "postgres-0", types.MergePatchType, []byte(`{"metadata":{"labels":{"tsys-ci.io/serve-leader":null}}}`), metav1.PatchOptions{}); err != nil {
				t.Fatalf("undoing the forged label: %v", err)
			}
		}
		return err != nil && strings.Contains(err.Error(), "only its own release's serve pods")
	})
	for _, p := range []struct{ name, patch, refusal string }{
		{"tsys-ci-serve-abc12", `{"metadata":{"labels":{"tsys-ci.io/serve-leader":"true"}}}`, ""},
		{"tsys-ci-serve-abc12", `{"metadata":{"labels":{"tsys-ci.io/serve-leader":null}}}`, ""},
		{"tsys-ci-serve-abc12", `{"metadata":{"labels":{"tsys-ci.io/serve-leader":"yes"}}}`, "only the label tsys-ci.io/serve-leader"},
		{"tsys-ci-serve-abc12", `{"metadata":{"labels":{"app":"postgres"}}}`, "only the label tsys-ci.io/serve-leader"},
		{"tsys-ci-serve-abc12", `{"metadata":{"labels":{"pod-template-hash":null}}}`, "only the label tsys-ci.io/serve-leader"},
		{"tsys-ci-serve-abc12", `{"metadata":{"annotations":{"x":"y"}}}`, "not their spec, annotations"},
		{"tsys-ci-serve-abc12", `{"metadata":{"finalizers":["example.com/block"]}}`, "not their spec, annotations"},
		{"tsys-ci-serve-abc12", `{"spec":{"containers":[{"name":"c","image":"attacker.example/c:latest"}]}}`, "not their spec, annotations"},
		{"postgres-0", forged, "only its own release's serve pods"},
	} {
		err := patch(p.name, p.patch)
		switch {
		case p.refusal == "" && err != nil:
			t.Errorf("serve patches %s with %s: %v", p.name, p.patch, err)
		case p.refusal != "" && (err == nil || !strings.Contains(err.Error(), p.refusal)):
			t.Errorf("serve patches %s with %s: %v, want a refusal saying %q", p.name, p.patch, err, p.refusal)
		}
	}
}
