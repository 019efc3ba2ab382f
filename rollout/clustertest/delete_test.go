package clustertest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/rollout"
)

// Issue 20 item 4: delete removes what promote made, gives the address and
// ports back (the next app gets them), keeps volumes unless asked, never
// races a promote, and can be run again.
func TestDeleteFreesTheAppsPlace(t *testing.T) {
	a := newApp(t, nil)
	ctx := context.Background()
	// A pool with room for one app: the example's two exposed ports.
	poolConfigMap(t, a.cs, a.ns, rollout.Pool{Addresses: []string{"10.89.0.240"}, Ports: rollout.PortRange{Min: 30000, Max: 30001}})
	mustPromote(t, a, "reg/shop@sha256:v1")

	// Another app in the namespace (without probes: the test's probe
	// server answers as shop).
	blog := *a.spec
	blog.Name, blog.Probes = "blog", nil
	if _, err := a.promoter("test").Promote(ctx, rollout.Request{Spec: &blog, Image: "reg/blog@sha256:v1"}); err == nil || !strings.Contains(err.Error(), "free") {
		t.Fatalf("a second app in a pool made for one: %v, want it refused for want of free ports", err)
	}

	held, err := rollout.AcquireLock(ctx, a.cs, rollout.RealClock{}, a.ns, "shop", "a running promote", 30*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	var heldErr *rollout.HeldError
	if _, err := a.promoter("test").Delete(ctx, a.ns, "shop", rollout.DeleteOptions{}); !errors.As(err, &heldErr) {
		t.Fatalf("delete during a promote: %v, want the promote's HeldError", err)
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}

	res, err := a.promoter("test").Delete(ctx, a.ns, "shop", rollout.DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(res.Deleted, " ")
	for _, want := range []string{"Deployment/shop-blue", "Service/shop", "PodDisruptionBudget/shop", "ConfigMap/" + rollout.StateName("shop")} {
		if !strings.Contains(got, want) {
			t.Errorf("deleted %s; missing %s", got, want)
		}
	}
	if res.Freed == nil || res.Freed.Address != "10.89.0.240" || len(res.Freed.Ports) != 2 || len(res.KeptVolumes) != 1 {
		t.Fatalf("result %+v", res)
	}
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=shop"}
	if l, _ := a.cs.AppsV1().Deployments(a.ns).List(ctx, sel); len(l.Items) != 0 {
		t.Errorf("%d Deployments left", len(l.Items))
	}
	if l, _ := a.cs.CoreV1().Services(a.ns).List(ctx, sel); len(l.Items) != 0 {
		t.Errorf("%d Services left", len(l.Items))
	}
	if l, _ := a.cs.CoreV1().PersistentVolumeClaims(a.ns).List(ctx, sel); len(l.Items) != 1 {
		t.Errorf("%d volumes left, want the one kept", len(l.Items))
	}
	if st := a.state(); st != nil {
		t.Errorf("state left: %+v", st)
	}
	if _, err := a.cs.CoordinationV1().Leases(a.ns).Get(ctx, rollout.LeaseName("shop"), metav1.GetOptions{}); err == nil {
		t.Error("the app's Lease is left")
	}

	if _, err := a.promoter("test").Promote(ctx, rollout.Request{Spec: &blog, Image: "reg/blog@sha256:v1"}); err != nil {
		t.Fatalf("blog after shop's delete: %v\n%s", err, a.out)
	}
	res, err = a.promoter("test").Delete(ctx, a.ns, "blog", rollout.DeleteOptions{Volumes: true})
	if err != nil || len(res.KeptVolumes) != 0 || !strings.Contains(strings.Join(res.Deleted, " "), "PersistentVolumeClaim/") {
		t.Fatalf("delete with volumes: %+v, %v", res, err)
	}
	again, err := a.promoter("test").Delete(ctx, a.ns, "blog", rollout.DeleteOptions{Volumes: true})
	if err != nil || len(again.Deleted) != 0 || again.Freed != nil {
		t.Fatalf("delete run again: %+v, %v", again, err)
	}
}
