package rollout

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tsys-group/tsys-ci/internal/contract"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Apply writes obj with server-side apply as field manager "tsys-ci",
// forcing ownership of the fields it sets: tsys-ci is the one writer of the
// objects it renders. Status and server-set metadata are left out.
func Apply(ctx context.Context, cs kubernetes.Interface, obj runtime.Object) error {
	m, ok := obj.(metav1.Object)
	if !ok {
		return fmt.Errorf("applying %T: not a Kubernetes object", obj)
	}
	data, err := applyPatch(obj)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: contract.FieldManager, Force: ptr(true)}
	ns, name := m.GetNamespace(), m.GetName()
	switch obj.(type) {
	case *appsv1.Deployment:
		_, err = cs.AppsV1().Deployments(ns).Patch(ctx, name, types.ApplyPatchType, data, opts)
	case *corev1.Service:
		_, err = cs.CoreV1().Services(ns).Patch(ctx, name, types.ApplyPatchType, data, opts)
	case *corev1.PersistentVolumeClaim:
		_, err = cs.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, name, types.ApplyPatchType, data, opts)
	case *policyv1.PodDisruptionBudget:
		_, err = cs.PolicyV1().PodDisruptionBudgets(ns).Patch(ctx, name, types.ApplyPatchType, data, opts)
	case *corev1.Namespace:
		_, err = cs.CoreV1().Namespaces().Patch(ctx, name, types.ApplyPatchType, data, opts)
	default:
		return fmt.Errorf("applying %T %s/%s: kind not supported", obj, ns, name)
	}
	if err != nil {
		return fmt.Errorf("applying %s %s/%s: %w", obj.GetObjectKind().GroupVersionKind().Kind, ns, name, err)
	}
	return nil
}

// applyPatch turns a typed object into an apply patch without status and
// without the null creationTimestamp typed objects marshal to.
func applyPatch(obj runtime.Object) ([]byte, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %T for apply: %w", obj, err)
	}
	delete(u, "status")
	if meta, ok := u["metadata"].(map[string]any); ok {
		delete(meta, "creationTimestamp")
	}
	return json.Marshal(u)
}
