package clustertest

import (
	"context"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/rollout"
)

func exampleSpec(t *testing.T, ns string) *rollout.AppSpec {
	t.Helper()
	spec, err := rollout.LoadSpec(filepath.Join("..", "..", "templates", "app", "tsys-ci.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec.Namespace = ns
	return spec
}

// TestApplyRendered applies every object rendered from the example spec:
// the API server's own validation accepts them, tsys-ci owns their fields,
// and applying again changes nothing.
func TestApplyRendered(t *testing.T) {
	cs, ns := newNamespace(t)
	ctx := context.Background()
	spec := exampleSpec(t, ns)
	alloc := &rollout.Allocation{Address: "10.89.0.240", Ports: map[string]int32{"http": 30000, "ssh": 30001}}
	svc, err := rollout.RenderService(spec, alloc, rollout.ColorBlue, nil)
	if err != nil {
		t.Fatal(err)
	}
	objs := []runtime.Object{
		rollout.RenderDeployment(spec, rollout.Version{Color: rollout.ColorBlue, Image: "registry.example/shop@sha256:0123", Revision: "abc123", Replicas: 2}, nil),
		svc,
		rollout.RenderPreviewService(spec, rollout.ColorGreen, nil),
		rollout.RenderPDB(spec, nil),
	}
	for _, c := range rollout.RenderClaims(spec) {
		objs = append(objs, c)
	}
	for _, o := range objs {
		if err := rollout.Apply(ctx, cs, o); err != nil {
			t.Fatal(err)
		}
	}
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, "shop-blue", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.ManagedFields[0].Manager != contract.FieldManager || d.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Errorf("managed fields %+v", d.ManagedFields)
	}
	if got := d.Spec.Template.Spec.Containers[0].Lifecycle.PreStop.Sleep.Seconds; got != 10 {
		t.Errorf("preStop sleep stored as %d", got)
	}
	got, err := cs.CoreV1().Services(ns).Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Annotations[contract.AnnotationEdge] != rollout.EdgeAnnotation(spec) || got.Annotations[rollout.AnnotationLBIPs] != "10.89.0.240" {
		t.Errorf("service annotations %v", got.Annotations)
	}
	// Applying the same objects again is a no-op: nothing is rewritten.
	rv := d.ResourceVersion
	if err := rollout.Apply(ctx, cs, objs[0]); err != nil {
		t.Fatal(err)
	}
	again, err := cs.AppsV1().Deployments(ns).Get(ctx, "shop-blue", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.ResourceVersion != rv {
		t.Errorf("re-applying an unchanged Deployment rewrote it (%s -> %s)", rv, again.ResourceVersion)
	}
}
