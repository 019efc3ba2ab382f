package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/internal/contract"
)

// VerifiedDigests is where serve's replicas share the image digests one of
// them verified, so the other replica, or one restarted, admits them
// without a registry round trip.
type VerifiedDigests interface {
	Has(ctx context.Context, digest string) (bool, error)
	Add(ctx context.Context, digest string) error
}

// DefaultVerifiedDigestsName is the ConfigMap, in serve's own namespace,
// of KubeVerifiedDigests.
const DefaultVerifiedDigestsName = "tsys-ci-serve-verified-digests"

// maxSharedDigests bounds the ConfigMap well under its 1 MiB: past it the
// list starts again (a registry round trip per digest, not a failure).
const maxSharedDigests = 4000

// KubeVerifiedDigests keeps the verified digests in one ConfigMap in
// serve's namespace: a key per digest reference (sha256 of it, as keys may
// not hold '/' or '@'), the reference as its value. Whoever may write
// ConfigMaps in serve's namespace may mark a digest verified, so that
// namespace must be as closed as serve's Secrets, which it holds too.
type KubeVerifiedDigests struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string
}

func digestKey(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return "sha256-" + hex.EncodeToString(sum[:])
}

// Has reports whether ref was recorded as verified.
func (k *KubeVerifiedDigests) Has(ctx context.Context, ref string) (bool, error) {
	cm, err := k.Client.CoreV1().ConfigMaps(k.Namespace).Get(ctx, k.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the verified digests %s/%s: %w", k.Namespace, k.Name, err)
	}
	return cm.Data[digestKey(ref)] == ref, nil
}

// Add records ref as verified: a merge patch of one key, so two replicas
// adding at once do not conflict; the first one creates the ConfigMap.
func (k *KubeVerifiedDigests) Add(ctx context.Context, ref string) error {
	cms := k.Client.CoreV1().ConfigMaps(k.Namespace)
	cm, err := cms.Get(ctx, k.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: k.Name, Namespace: k.Namespace,
			Labels: map[string]string{contract.LabelManagedBy: contract.ManagedBy}},
			Data: map[string]string{digestKey(ref): ref}}, metav1.CreateOptions{FieldManager: contract.FieldManager})
		if !apierrors.IsAlreadyExists(err) {
			return k.wrap(err)
		}
	case err != nil:
		return k.wrap(err)
	case len(cm.Data) >= maxSharedDigests:
		next := cm.DeepCopy()
		next.Data = map[string]string{digestKey(ref): ref}
		_, err = cms.Update(ctx, next, metav1.UpdateOptions{FieldManager: contract.FieldManager})
		if !apierrors.IsConflict(err) {
			return k.wrap(err)
		}
	}
	patch, _ := json.Marshal(map[string]any{"data": map[string]string{digestKey(ref): ref}})
	_, err = cms.Patch(ctx, k.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: contract.FieldManager})
	return k.wrap(err)
}

func (k *KubeVerifiedDigests) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("recording a verified digest in %s/%s: %w", k.Namespace, k.Name, err)
}
