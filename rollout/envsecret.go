package rollout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/tsys-group/tsys-ci/internal/contract"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// LookupEnv reads one variable of promote's own environment (os.LookupEnv
// in the CLI; in serve, the policy's envSecret; a map in tests): where the spec's fromEnv values
// come from.
type LookupEnv func(name string) (value string, ok bool)

// MissingEnvError means the spec reads variables from promote's
// environment that it does not set (or sets empty). It names the
// variables, never a value, and is returned before anything in the
// cluster is changed. The CLI exits 2 on it.
type MissingEnvError struct {
	App string
	// Missing lists each unset variable with the env entry that reads it,
	// like "SHOP_DB_PASSWORD (env[1] DB_PASSWORD)".
	Missing []string
}

// BadInput marks the environment as the caller's to fix.
func (e *MissingEnvError) BadInput() bool { return true }

func (e *MissingEnvError) Error() string {
	return fmt.Sprintf("app %s reads %s from promote's environment, which does not set %s (or sets it empty); "+
		"set it (envwarden, Jenkins' credentials binding, serve's environment Secret) and promote again: nothing was changed",
		e.App, strings.Join(e.Missing, ", "), plural(len(e.Missing), "it", "them"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// HasFromEnv reports whether the spec reads any variable from promote's
// environment.
func HasFromEnv(spec *AppSpec) bool {
	for _, e := range spec.Env {
		if e.FromEnv != "" {
			return true
		}
	}
	return false
}

// EnvSecretData reads the spec's fromEnv variables with lookup: the
// Secret's data, keyed by the variables' names in the pod. Nil when the
// spec has none; a *MissingEnvError naming every variable that is unset
// or empty.
func EnvSecretData(spec *AppSpec, lookup LookupEnv) (map[string][]byte, error) {
	if !HasFromEnv(spec) {
		return nil, nil
	}
	data := map[string][]byte{}
	var missing []string
	for i, e := range spec.Env {
		if e.FromEnv == "" {
			continue
		}
		var v string
		ok := false
		if lookup != nil {
			v, ok = lookup(e.FromEnv)
		}
		if !ok || v == "" {
			missing = append(missing, fmt.Sprintf("%s (env[%d] %s)", e.FromEnv, i, e.Name))
			continue
		}
		data[e.Name] = []byte(v)
	}
	if len(missing) > 0 {
		return nil, &MissingEnvError{App: spec.Name, Missing: missing}
	}
	return data, nil
}

// EnvSecretName names the Secret holding data by a hash of its content,
// as kustomize's secretGenerator does: sha256 of the sorted keys and
// values (each length-prefixed, so no two contents hash alike by
// concatenation), its first 10 hex digits. The same values give the same
// name, so a re-run finds its Secret; changed values give a new Secret,
// and the release that ran with the old ones keeps them.
func EnvSecretName(app string, data map[string][]byte) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s%d:", len(k), k, len(data[k]))
		h.Write(data[k])
	}
	return app + "-env-" + hex.EncodeToString(h.Sum(nil))[:10]
}

// RenderEnvSecret renders the release's Secret of the spec's fromEnv
// values: immutable, named by its content (EnvSecretName), labelled with
// the app and LabelEnvSecret. owner is set by the caller once known.
func RenderEnvSecret(spec *AppSpec, data map[string][]byte, owner *metav1.OwnerReference) *corev1.Secret {
	l := AppLabels(spec.Name)
	l[LabelEnvSecret] = "true"
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: objectMeta(spec, EnvSecretName(spec.Name, data), l, owner),
		Immutable:  ptr(true),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// ensureEnvSecret creates the candidate's Secret, or finds it made by an
// earlier run of the same promote.
//
// It is owned by the app's state ConfigMap, like the app's other objects,
// not by a Deployment or a ReplicaSet. A release is not a Kubernetes
// object but an entry of the state (candidate, active, previous, the
// history); its Deployment is one of the app's two colors, re-applied with
// the release after next, so a Secret it owned would live as long as the
// color, not the release. The ReplicaSet of the release's pod template is
// made by the Deployment controller after the pods already need the
// Secret, and is trimmed by the Deployment's revisionHistoryLimit (3), not
// by the history, so a release a rollback can still reach could lose its
// values. Owned by the ConfigMap, the Secrets go when the app is deleted,
// and pruneEnvSecrets deletes each one once no entry of the state names it.
func (r *run) ensureEnvSecret(ctx context.Context, data map[string][]byte) error {
	want := RenderEnvSecret(r.spec, data, r.store.Owner())
	secrets := r.p.Client.CoreV1().Secrets(r.spec.Namespace)
	_, err := secrets.Create(ctx, want, metav1.CreateOptions{FieldManager: contract.FieldManager})
	if err == nil {
		r.logf("created Secret %s with %s from the environment", want.Name, strings.Join(sortedKeys(data), ", "))
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating Secret %s/%s for the fromEnv variables: %w", r.spec.Namespace, want.Name, err)
	}
	have, err := secrets.Get(ctx, want.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading Secret %s/%s: %w", r.spec.Namespace, want.Name, err)
	}
	if !sameData(have.Data, data) {
		return fmt.Errorf("Secret %s/%s exists with other content and was not made by tsys-ci from these values; delete or rename it, then promote again", r.spec.Namespace, want.Name)
	}
	return nil
}

func sortedKeys(data map[string][]byte) []string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sameData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// referencedSecrets are the env Secrets the state's releases name.
func (s *State) referencedSecrets() map[string]bool {
	out := map[string]bool{}
	for _, rel := range []*Release{s.Active, s.Previous, s.Candidate} {
		if rel != nil && rel.Secret != "" {
			out[rel.Secret] = true
		}
	}
	for _, h := range s.History {
		if h.Secret != "" {
			out[h.Secret] = true
		}
	}
	return out
}

// pruneEnvSecrets deletes the app's env Secrets no release in the state
// names any more: the history entry that held the last reference was
// dropped (maxHistory), or a run died between creating a Secret and
// recording it. A failure is logged, not returned: the promote it follows
// has happened, and the next one prunes again.
//
// Apps that never had an env Secret are not asked about (no Secret list
// on every promote of every app, and none for callers without the right
// to list Secrets): only when the spec reads fromEnv variables, or the
// state named a Secret when this run loaded it.
func (r *run) pruneEnvSecrets(ctx context.Context) {
	if !r.hadEnvSecrets && !HasFromEnv(r.spec) && len(r.state.referencedSecrets()) == 0 {
		return
	}
	sel := labels.SelectorFromSet(AppLabels(r.spec.Name)).String() + "," + LabelEnvSecret + "=true"
	secrets := r.p.Client.CoreV1().Secrets(r.spec.Namespace)
	list, err := secrets.List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		r.logf("warning: listing the env Secrets to delete unused ones: %v", err)
		return
	}
	keep := r.state.referencedSecrets()
	for _, sec := range list.Items {
		if keep[sec.Name] {
			continue
		}
		err := secrets.Delete(ctx, sec.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &sec.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			r.logf("warning: deleting Secret %s, which no release in the history uses: %v", sec.Name, err)
			continue
		}
		r.logf("deleted Secret %s: no release in the history uses it", sec.Name)
	}
}
