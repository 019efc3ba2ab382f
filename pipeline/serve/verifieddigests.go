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
	"github.com/tsys-group/tsys-ci/registry"
)

// VerifiedDigests is where the image digests serve's replicas and CLI
// promotes verified are shared, each with the signature that verified it,
// so the other replica, or one restarted, admits them without a registry
// round trip: it checks the signature again with its own key, offline.
type VerifiedDigests interface {
	// Get returns the proof recorded for digest; false when none is.
	Get(ctx context.Context, digest string) (registry.SignatureProof, bool, error)
	Add(ctx context.Context, digest string, proof registry.SignatureProof) error
}

// sharedEntry is one value of the ConfigMap: the digest reference and its
// signature (payload and signature, base64 in JSON).
type sharedEntry struct {
	Image string `json:"image"`
	registry.SignatureProof
}

// DefaultVerifiedDigestsName is the ConfigMap, in serve's own namespace,
// of KubeVerifiedDigests.
const DefaultVerifiedDigestsName = "tsys-ci-serve-verified-digests"

// maxSharedDigests bounds the ConfigMap well under its 1 MiB (an entry,
// with its signature, is about 0.7 KB): past it the list starts again (a
// registry round trip per digest, not a failure).
const maxSharedDigests = 1000

// KubeVerifiedDigests keeps the verified digests in one ConfigMap in
// serve's namespace: a key per digest reference (sha256 of it, as keys may
// not hold '/' or '@'), the reference and its signature as the value. The
// entries are proofs, not verdicts: admission checks each signature with
// its key before it admits by it, so whoever may write the ConfigMap (serve,
// and Jenkins' promotes) can save admission a registry round trip but
// cannot make it admit what the key did not sign.
type KubeVerifiedDigests struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string
	// OnlyIfPresent adds to the ConfigMap only when it exists: a CLI
	// promote shares its digests with a serve that has admission on, and
	// makes nothing in a cluster without one.
	OnlyIfPresent bool
}

func digestKey(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return "sha256-" + hex.EncodeToString(sum[:])
}

// Get returns the proof recorded for ref. A value of another shape (an
// older serve's, which held the reference only) counts as none.
func (k *KubeVerifiedDigests) Get(ctx context.Context, ref string) (registry.SignatureProof, bool, error) {
	cm, err := k.Client.CoreV1().ConfigMaps(k.Namespace).Get(ctx, k.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return registry.SignatureProof{}, false, nil
	}
	if err != nil {
		return registry.SignatureProof{}, false, fmt.Errorf("reading the verified digests %s/%s: %w", k.Namespace, k.Name, err)
	}
	var e sharedEntry
	if json.Unmarshal([]byte(cm.Data[digestKey(ref)]), &e) != nil || e.Image != ref || len(e.Signature) == 0 {
		return registry.SignatureProof{}, false, nil
	}
	return e.SignatureProof, true, nil
}

// Add records ref with its proof: a merge patch of one key, so two writers
// adding at once do not conflict; the first one creates the ConfigMap
// (unless OnlyIfPresent).
func (k *KubeVerifiedDigests) Add(ctx context.Context, ref string, proof registry.SignatureProof) error {
	b, err := json.Marshal(sharedEntry{Image: ref, SignatureProof: proof})
	if err != nil {
		return err
	}
	entry := map[string]string{digestKey(ref): string(b)}
	cms := k.Client.CoreV1().ConfigMaps(k.Namespace)
	cm, err := cms.Get(ctx, k.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) && k.OnlyIfPresent:
		return nil
	case apierrors.IsNotFound(err):
		_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: k.Name, Namespace: k.Namespace,
			Labels: map[string]string{contract.LabelManagedBy: contract.ManagedBy}},
			Data: entry}, metav1.CreateOptions{FieldManager: contract.FieldManager})
		if !apierrors.IsAlreadyExists(err) {
			return k.wrap(err)
		}
	case err != nil:
		return k.wrap(err)
	case len(cm.Data) >= maxSharedDigests:
		next := cm.DeepCopy()
		next.Data = entry
		_, err = cms.Update(ctx, next, metav1.UpdateOptions{FieldManager: contract.FieldManager})
		if !apierrors.IsConflict(err) {
			return k.wrap(err)
		}
	}
	patch, _ := json.Marshal(map[string]any{"data": entry})
	_, err = cms.Patch(ctx, k.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: contract.FieldManager})
	return k.wrap(err)
}

func (k *KubeVerifiedDigests) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("recording a verified digest in %s/%s: %w", k.Namespace, k.Name, err)
}
