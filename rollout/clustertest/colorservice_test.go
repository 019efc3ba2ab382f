package clustertest

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/rollout"
)

// colorService returns the edge's per-color Service of a color, or nil.
func (a *app) colorService(color string) *corev1.Service {
	svc, err := a.cs.CoreV1().Services(a.ns).Get(context.Background(), contract.ColorServiceName(a.spec.Name, color), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		a.t.Fatal(err)
	}
	return svc
}

// TestColorServices: a promote of an app with hosts creates the Service of
// each color it deploys (the API server accepts the NodePort, Local shape
// and allocates the node port); the previous version's stays while its
// Deployment is kept at zero for a rollback, a rolled-back candidate's
// goes with its Deployment, and an app whose spec drops its hosts loses
// both.
func TestColorServices(t *testing.T) {
	a := newApp(t, nil)
	mustPromote(t, a, "reg/shop@sha256:v1")
	blue := a.colorService(rollout.ColorBlue)
	if blue == nil || a.colorService(rollout.ColorGreen) != nil {
		t.Fatalf("after v1: blue Service %v, green %v; want blue only\n%s", blue, a.colorService(rollout.ColorGreen), a.out)
	}
	if blue.Spec.Type != corev1.ServiceTypeNodePort || blue.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal ||
		len(blue.Spec.Ports) != 1 || blue.Spec.Ports[0].Name != "http" || blue.Spec.Ports[0].NodePort == 0 ||
		blue.Spec.Selector[rollout.LabelColor] != rollout.ColorBlue || blue.Labels[contract.LabelColor] != rollout.ColorBlue ||
		len(blue.OwnerReferences) != 1 || blue.OwnerReferences[0].Name != rollout.StateName(a.spec.Name) {
		t.Fatalf("blue Service: %+v", blue)
	}
	mustPromote(t, a, "reg/shop@sha256:v2")
	if a.colorService(rollout.ColorBlue) == nil || a.colorService(rollout.ColorGreen) == nil {
		t.Fatalf("after v2 both colors' Services must exist (blue kept at zero for a rollback)\n%s", a.out)
	}
	if _, err := a.promote("reg/shop@sha256:bad3"); err == nil {
		t.Fatalf("bad3 was promoted\n%s", a.out)
	}
	if a.colorService(rollout.ColorBlue) != nil || a.colorService(rollout.ColorGreen) == nil {
		t.Fatalf("after bad3 (on blue) was rolled back: blue Service %v, green %v; want green only", a.colorService(rollout.ColorBlue), a.colorService(rollout.ColorGreen))
	}
	a.spec.Ports[0].Hosts = nil
	if res := mustPromote(t, a, "reg/shop@sha256:v2"); res.Result != "unchanged" {
		t.Fatalf("re-promote: %+v", res)
	}
	if a.colorService(rollout.ColorGreen) != nil {
		t.Fatal("the app has no hosts any more, but its green Service stayed")
	}
}
