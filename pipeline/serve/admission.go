package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/registry"
)

// AdmissionPath is where the API server sends serve's validating webhook
// (the chart's ValidatingWebhookConfiguration names it).
const AdmissionPath = "/admission/v1/images"

// ImageAdmission is serve's validating admission webhook: in the app
// namespaces it is registered for, a Pod, or a workload's pod template,
// runs only images by digest from serve's registry that are signed with
// the company key. Anyone with kubectl or Rancher could otherwise run what
// promote would refuse.
//
// A digest verified once is remembered (signatures are not withdrawn; a
// new key means a restart), including those serve's own promotes verify,
// so the pods a promote makes are admitted without a registry round trip:
// in this replica's memory, and in Shared with its signature, where the
// other replica, a restarted one, and CLI promotes' digests are found (one
// API read and an offline signature check instead of a registry round
// trip).
type ImageAdmission struct {
	// Registry is the one registry host images may come from (serve's
	// Config.Registry).
	Registry string
	// Verify checks an image's signature and returns it by digest with
	// the signature that verified (the image policy serve's deploys use).
	Verify func(ctx context.Context, image string) (string, registry.SignatureProof, error)
	// CheckProof checks a signature found in Shared against the key,
	// offline (registry.CheckProof with serve's key).
	CheckProof func(digest string, proof registry.SignatureProof) error
	Log        *slog.Logger
	// Timeout bounds one review's registry work (default 4 s, below the
	// chart's 5 s timeoutSeconds so the refusal says why).
	Timeout time.Duration
	// Shared, when set, is where the replicas share verified digests
	// (KubeVerifiedDigests); a failure to read or write it is logged and
	// the signature is checked instead.
	Shared VerifiedDigests

	mu       sync.Mutex
	verified map[string]bool
}

// maxRemembered bounds the verified digests kept; past it the memory
// starts again (a registry round trip per digest, not a failure).
const maxRemembered = 20000

// Verified records a digest reference serve verified, with the signature
// that verified it (its deploys call it after their own check):
// remembered here and shared.
func (a *ImageAdmission) Verified(ctx context.Context, digest string, proof registry.SignatureProof) {
	a.Remember(digest)
	if a.Shared == nil {
		return
	}
	if err := a.Shared.Add(ctx, digest, proof); err != nil {
		a.Log.Warn("admission: sharing a verified digest failed; the other replica checks it again", "digest", digest, "err", err)
	}
}

// Remember records a digest reference as verified in this replica's
// memory only.
func (a *ImageAdmission) Remember(digest string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.verified == nil || len(a.verified) >= maxRemembered {
		a.verified = map[string]bool{}
	}
	a.verified[digest] = true
}

func (a *ImageAdmission) remembered(digest string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.verified[digest]
}

// ServeHTTP answers one AdmissionReview (admission.k8s.io/v1).
func (a *ImageAdmission) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, fmt.Sprintf("not an AdmissionReview with a request: %v", err), http.StatusBadRequest)
		return
	}
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = 4 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	resp := a.Review(ctx, review.Request)
	resp.UID = review.Request.UID
	review.Response, review.Request = resp, nil
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(review); err != nil {
		a.Log.Warn("admission: writing the answer failed", "err", err)
	}
}

// Review decides one request: every image that is new in the object must
// pass. On an update, images the old object already ran are not judged
// again (a label patch on a pod admitted before the webhook existed is not
// refused for it).
func (a *ImageAdmission) Review(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	spec, err := podSpecOf(req.Kind.Kind, req.Object.Raw)
	if err != nil {
		return deny(http.StatusBadRequest, fmt.Sprintf("tsys-ci admission could not read the %s: %v", req.Kind.Kind, err))
	}
	if spec == nil {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	old := map[string]bool{}
	if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 {
		if oldSpec, err := podSpecOf(req.Kind.Kind, req.OldObject.Raw); err == nil && oldSpec != nil {
			for _, c := range containersOf(oldSpec) {
				old[c.image] = true
			}
		}
	}
	var refused []string
	for _, c := range containersOf(spec) {
		if old[c.image] {
			continue
		}
		if why := a.check(ctx, c.image); why != "" {
			refused = append(refused, fmt.Sprintf("container %q image %q %s", c.name, c.image, why))
		}
	}
	if len(refused) > 0 {
		a.Log.Info("admission refused", "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name, "user", req.UserInfo.Username, "reasons", strings.Join(refused, "; "))
		return deny(http.StatusForbidden, fmt.Sprintf("tsys-ci admits in this namespace only images by digest from %s signed with the company key (tsys-ci push --sign, then promote): %s",
			a.Registry, strings.Join(refused, "; ")))
	}
	return &admissionv1.AdmissionResponse{Allowed: true}
}

// check says why image may not run ("" when it may).
func (a *ImageAdmission) check(ctx context.Context, image string) string {
	d, err := name.NewDigest(image, name.StrictValidation)
	if err != nil {
		return "is not a reference by digest (REGISTRY/REPOSITORY@sha256:...): a tag can be moved to other bits after the check"
	}
	if host := d.Context().RegistryStr(); host != a.Registry {
		return fmt.Sprintf("is from %s, not from %s", host, a.Registry)
	}
	if a.remembered(d.String()) {
		return ""
	}
	if a.Shared != nil {
		proof, ok, err := a.Shared.Get(ctx, d.String())
		if err != nil {
			a.Log.Warn("admission: reading the shared verified digests failed; checking the signature", "err", err)
		}
		if ok {
			err := a.CheckProof(d.String(), proof)
			if err == nil {
				a.Remember(d.String())
				return ""
			}
			// Someone who may write the ConfigMap wrote what the key did
			// not sign (or a key changed): the registry decides.
			a.Log.Warn("admission: a shared verified digest's signature does not check; asking the registry", "digest", d.String(), "err", err)
		}
	}
	got, proof, err := a.Verify(ctx, d.String())
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Sprintf("could not be checked in time (%v): try again; if it lasts, see serve's log", err)
		}
		return fmt.Sprintf("fails the signature check: %v", err)
	}
	a.Verified(ctx, got, proof)
	return ""
}

func deny(code int32, msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{Status: metav1.StatusFailure, Code: code, Message: msg}}
}

// podSpecOf reads the pod spec of a Pod or of a workload's pod template
// (nil for other kinds: the webhook's rules should not send them).
func podSpecOf(kind string, raw []byte) (*corev1.PodSpec, error) {
	var obj any
	var spec func() *corev1.PodSpec
	switch kind {
	case "Pod":
		o := &corev1.Pod{}
		obj, spec = o, func() *corev1.PodSpec { return &o.Spec }
	case "ReplicationController":
		o := &corev1.ReplicationController{}
		obj, spec = o, func() *corev1.PodSpec {
			if o.Spec.Template == nil {
				return nil
			}
			return &o.Spec.Template.Spec
		}
	case "Deployment":
		o := &appsv1.Deployment{}
		obj, spec = o, func() *corev1.PodSpec { return &o.Spec.Template.Spec }
	case "ReplicaSet":
		o := &appsv1.ReplicaSet{}
		obj, spec = o, func() *corev1.PodSpec { return &o.Spec.Template.Spec }
	case "StatefulSet":
		o := &appsv1.StatefulSet{}
		obj, spec = o, func() *corev1.PodSpec { return &o.Spec.Template.Spec }
	case "DaemonSet":
		o := &appsv1.DaemonSet{}
		obj, spec = o, func() *corev1.PodSpec { return &o.Spec.Template.Spec }
	case "Job":
		o := &batchv1.Job{}
		obj, spec = o, func() *corev1.PodSpec { return &o.Spec.Template.Spec }
	case "CronJob":
		o := &batchv1.CronJob{}
		obj, spec = o, func() *corev1.PodSpec { return &o.Spec.JobTemplate.Spec.Template.Spec }
	default:
		return nil, nil
	}
	if err := json.Unmarshal(raw, obj); err != nil {
		return nil, err
	}
	return spec(), nil
}

type container struct{ name, image string }

// containersOf lists every container that runs an image: init,
// ephemeral (kubectl debug) and the app's own.
func containersOf(s *corev1.PodSpec) []container {
	var out []container
	for _, c := range s.InitContainers {
		out = append(out, container{c.Name, c.Image})
	}
	for _, c := range s.Containers {
		out = append(out, container{c.Name, c.Image})
	}
	for _, c := range s.EphemeralContainers {
		out = append(out, container{c.Name, c.Image})
	}
	return out
}
