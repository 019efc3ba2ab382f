package rollout

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// States of one key in a SecretsDiff.
const (
	// KeySame: the environment has the value the live release runs with.
	KeySame = "same"
	// KeyChanged: the environment has another value; the next promote
	// makes a new Secret.
	KeyChanged = "changed"
	// KeyAdded: the spec reads it from the environment, the live
	// release's Secret lacks it.
	KeyAdded = "added"
	// KeyRemoved: the live release's Secret has it, the spec no longer
	// reads it.
	KeyRemoved = "removed"
	// KeyUnset: the spec reads it, the environment does not set it (or
	// sets it empty); a promote would be refused.
	KeyUnset = "unset"
)

// SecretsDiff says which fromEnv keys a promote from this environment would
// change against the live release: names and states only, never a value.
// 'tsys-ci secrets diff' prints it, for a Jenkins stage before promote.
type SecretsDiff struct {
	App string `json:"app"`
	// Live is the serving release's Secret ("" when it has none or the
	// app was never promoted).
	Live string `json:"liveSecret,omitempty"`
	// Next is the Secret a promote from this environment would use (""
	// when a variable is unset or the spec reads none).
	Next string      `json:"nextSecret,omitempty"`
	Keys []KeyChange `json:"keys"`
	// Differs: some key is changed, added or removed.
	Differs bool `json:"differs"`
}

// KeyChange is one key of a SecretsDiff.
type KeyChange struct {
	Key     string `json:"key"`
	FromEnv string `json:"fromEnv,omitempty"`
	State   string `json:"state"`
}

// DiffSecrets compares the spec's fromEnv variables, read with lookup,
// with the Secret of the release serving now. It changes nothing.
func DiffSecrets(ctx context.Context, cs kubernetes.Interface, spec *AppSpec, lookup LookupEnv) (*SecretsDiff, error) {
	d := &SecretsDiff{App: spec.Name, Keys: []KeyChange{}}
	st, err := Status(ctx, cs, spec.Namespace, spec.Name)
	if err != nil {
		return nil, err
	}
	live := map[string][]byte{}
	if st != nil && st.Active != nil && st.Active.Secret != "" {
		d.Live = st.Active.Secret
		sec, err := cs.CoreV1().Secrets(spec.Namespace).Get(ctx, d.Live, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil, fmt.Errorf("the live release of %s names Secret %s/%s, which does not exist; a promote makes a new one", spec.Name, spec.Namespace, d.Live)
		case err != nil:
			return nil, fmt.Errorf("reading the live release's Secret %s/%s: %w", spec.Namespace, d.Live, err)
		}
		live = sec.Data
	}
	next := map[string][]byte{}
	unset := false
	for _, e := range spec.Env {
		if e.FromEnv == "" {
			continue
		}
		k := KeyChange{Key: e.Name, FromEnv: e.FromEnv}
		v, ok := "", false
		if lookup != nil {
			v, ok = lookup(e.FromEnv)
		}
		old, had := live[e.Name]
		switch {
		case !ok || v == "":
			k.State, unset = KeyUnset, true
		case !had:
			k.State = KeyAdded
		case bytes.Equal(old, []byte(v)):
			k.State = KeySame
		default:
			k.State = KeyChanged
		}
		if ok && v != "" {
			next[e.Name] = []byte(v)
		}
		d.Keys = append(d.Keys, k)
	}
	for _, name := range sortedKeys(live) {
		if _, read := next[name]; read {
			continue
		}
		if slices.ContainsFunc(d.Keys, func(k KeyChange) bool { return k.Key == name }) {
			continue // unset: already listed
		}
		d.Keys = append(d.Keys, KeyChange{Key: name, State: KeyRemoved})
	}
	for _, k := range d.Keys {
		if k.State == KeyChanged || k.State == KeyAdded || k.State == KeyRemoved {
			d.Differs = true
		}
	}
	if !unset && len(next) > 0 {
		d.Next = EnvSecretName(spec.Name, next)
	}
	return d, nil
}
