package serve

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/rollout"
)

// EnvSecrets reads the Secrets of serve's own namespace that policies name
// as envSecret: where a promote run by serve takes the values of the app
// spec's fromEnv variables, as the CLI takes them from its environment.
// Each deploy reads its Secret afresh (a changed value is the next push's,
// with no restart of serve), and the values stay in that deploy's promote:
// never logged, recorded or shown.
type EnvSecrets struct {
	Client kubernetes.Interface
	// Namespace is serve's own (--lease-namespace, POD_NAMESPACE): the
	// chart lets serve read the named Secrets there and nowhere else.
	Namespace string
}

// EnvSecretMissingError refuses a deploy whose spec reads fromEnv variables
// serve cannot give: the policy names no envSecret, the Secret is missing
// or unreadable, or it lacks keys. It names the Secret and the keys, never
// a value, and comes before anything in the cluster is changed.
type EnvSecretMissingError struct{ msg string }

func (e *EnvSecretMissingError) Error() string { return e.msg }

// fromEnvVars lists the spec's fromEnv entries as "VAR (env[i] NAME)".
func fromEnvVars(spec *rollout.AppSpec, only func(v string) bool) []string {
	var out []string
	for i, e := range spec.Env {
		if e.FromEnv != "" && (only == nil || only(e.FromEnv)) {
			out = append(out, fmt.Sprintf("%s (env[%d] %s)", e.FromEnv, i, e.Name))
		}
	}
	return out
}

// Lookup reads the policy's envSecret for a promote of spec and returns
// the LookupEnv promote takes the spec's fromEnv values from. Nil when the
// spec reads none (the Secret is not read); an *EnvSecretMissingError when
// serve cannot give every variable. src is nil when serve runs without
// such Secrets (no cluster); policy names the policy in the messages.
func (src *EnvSecrets) Lookup(ctx context.Context, policy, secret string, spec *rollout.AppSpec) (rollout.LookupEnv, error) {
	if !rollout.HasFromEnv(spec) {
		return nil, nil
	}
	vars := fromEnvVars(spec, nil)
	if secret == "" {
		return nil, &EnvSecretMissingError{fmt.Sprintf("policy %s: app %s/%s reads %s from promote's environment, which serve fills from a Secret of its own namespace only: "+
			"add `envSecret: NAME` to the policy in serve.yaml (and, with the chart, to config.policies, which lets serve read it), "+
			"create the Secret with a key per variable, and push again; nothing was changed",
			policy, spec.Namespace, spec.Name, strings.Join(vars, ", "))}
	}
	if src == nil || src.Client == nil {
		return nil, &EnvSecretMissingError{fmt.Sprintf("policy %s: app %s/%s reads %s from serve's Secret %s, but serve runs without a cluster; nothing was changed",
			policy, spec.Namespace, spec.Name, strings.Join(vars, ", "), secret)}
	}
	create := "kubectl -n " + src.Namespace + " create secret generic " + secret
	for _, e := range spec.Env {
		if e.FromEnv != "" {
			create += " --from-literal " + e.FromEnv + "=..."
		}
	}
	sec, err := src.Client.CoreV1().Secrets(src.Namespace).Get(ctx, secret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, &EnvSecretMissingError{fmt.Sprintf("policy %s: app %s/%s reads %s from Secret %s in serve's namespace %s, which does not exist: create it (%s) and push again; nothing was changed",
			policy, spec.Namespace, spec.Name, strings.Join(vars, ", "), secret, src.Namespace, create)}
	case apierrors.IsForbidden(err):
		return nil, &EnvSecretMissingError{fmt.Sprintf("policy %s: serve may not read Secret %s in its namespace %s (%v): with the chart, set envSecret: %s on the policy in config.policies, which grants get on it; nothing was changed",
			policy, secret, src.Namespace, err, secret)}
	case err != nil:
		return nil, fmt.Errorf("policy %s: reading Secret %s/%s, the policy's envSecret: %w", policy, src.Namespace, secret, err)
	}
	data := sec.Data
	unset := fromEnvVars(spec, func(v string) bool { return len(data[v]) == 0 })
	if len(unset) > 0 {
		var keys []string // the patch's stringData, placeholders for the values
		for _, e := range spec.Env {
			if k := fmt.Sprintf("%q:\"...\"", e.FromEnv); e.FromEnv != "" && len(data[e.FromEnv]) == 0 && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		return nil, &EnvSecretMissingError{fmt.Sprintf("policy %s: app %s/%s reads %s from Secret %s in serve's namespace %s, which has no such key (or an empty one): "+
			"add it (kubectl -n %s patch secret %s --type merge -p '{\"stringData\":{%s}}') and push again; nothing was changed",
			policy, spec.Namespace, spec.Name, strings.Join(unset, ", "), secret, src.Namespace, src.Namespace, secret, strings.Join(keys, ","))}
	}
	values := make(map[string]string, len(spec.Env))
	for _, e := range spec.Env {
		if e.FromEnv != "" {
			values[e.FromEnv] = string(data[e.FromEnv])
		}
	}
	return func(name string) (string, bool) {
		v, ok := values[name]
		return v, ok
	}, nil
}
