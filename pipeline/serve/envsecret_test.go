package serve

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tsys-group/tsys-ci/rollout"
)

// TestEnvSecretsLookup: the policy's envSecret gives promote the spec's
// fromEnv values; every way it cannot is refused naming the policy, the
// Secret, its namespace and the variable, saying what to do, and never
// showing a value. (On a real API server, with RBAC and pods:
// clustertest's TestServeDeploysFromEnvSecret.)
func TestEnvSecretsLookup(t *testing.T) {
	const value = "v4lue-never-shown"
	spec := &rollout.AppSpec{Name: "shop", Namespace: "shop", Env: []rollout.EnvVar{
		{Name: "LOG_LEVEL", Value: "info"},
		{Name: "DB_PASSWORD", FromEnv: "SHOP_DB_PASSWORD"},
		{Name: "API_TOKEN", FromEnv: "SHOP_API_TOKEN"},
	}}
	cs := fake.NewClientset(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tsys-ci", Name: "shop-env"},
			Data: map[string][]byte{"SHOP_DB_PASSWORD": []byte(value), "SHOP_API_TOKEN": []byte("token"), "OTHER": []byte("x")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tsys-ci", Name: "half"},
			Data: map[string][]byte{"SHOP_DB_PASSWORD": []byte(value), "SHOP_API_TOKEN": nil}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "elsewhere"},
			Data: map[string][]byte{"SHOP_DB_PASSWORD": []byte(value), "SHOP_API_TOKEN": []byte("token")}},
	)
	src := &EnvSecrets{Client: cs, Namespace: "tsys-ci"}
	ctx := context.Background()

	lookup, err := src.Lookup(ctx, "shop-main", "shop-env", spec)
	if err != nil {
		t.Fatal(err)
	}
	data, err := rollout.EnvSecretData(spec, lookup)
	if err != nil || string(data["DB_PASSWORD"]) != value || string(data["API_TOKEN"]) != "token" || len(data) != 2 {
		t.Fatalf("the values promote gets: %v (%d keys)", err, len(data))
	}
	if _, ok := lookup("OTHER"); ok {
		t.Error("the lookup gives a key of the Secret no fromEnv entry reads")
	}

	// A spec without fromEnv reads nothing, with or without envSecret.
	plain := &rollout.AppSpec{Name: "blog", Namespace: "web"}
	if l, err := src.Lookup(ctx, "blog", "", plain); l != nil || err != nil {
		t.Fatalf("spec without fromEnv: %v", err)
	}

	for _, tc := range []struct {
		name, secret string
		src          *EnvSecrets
		words        []string
	}{
		{"no envSecret", "", src, []string{"policy shop-main", "SHOP_DB_PASSWORD (env[1] DB_PASSWORD), SHOP_API_TOKEN (env[2] API_TOKEN)", "add `envSecret: NAME` to the policy", "nothing was changed"}},
		{"missing Secret", "nope", src, []string{"Secret nope in serve's namespace tsys-ci, which does not exist",
			"kubectl -n tsys-ci create secret generic nope --from-literal SHOP_DB_PASSWORD=... --from-literal SHOP_API_TOKEN=...", "nothing was changed"}},
		{"Secret in the app's namespace only", "elsewhere", src, []string{"Secret elsewhere in serve's namespace tsys-ci, which does not exist"}},
		{"empty key", "half", src, []string{"SHOP_API_TOKEN (env[2] API_TOKEN) from Secret half in serve's namespace tsys-ci, which has no such key",
			`kubectl -n tsys-ci patch secret half --type merge -p '{"stringData":{"SHOP_API_TOKEN":"..."}}'`, "nothing was changed"}},
		{"no cluster", "shop-env", nil, []string{"without a cluster"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := tc.src.Lookup(ctx, "shop-main", tc.secret, spec)
			var missing *EnvSecretMissingError
			if l != nil || !errors.As(err, &missing) {
				t.Fatalf("got %v, want an *EnvSecretMissingError", err)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), value) {
				t.Errorf("the refusal shows the value: %q", err)
			}
		})
	}
	// Read afresh each time: a changed value is the next deploy's.
	sec, _ := cs.CoreV1().Secrets("tsys-ci").Get(ctx, "shop-env", metav1.GetOptions{})
	sec.Data["SHOP_API_TOKEN"] = []byte("token-2")
	if _, err := cs.CoreV1().Secrets("tsys-ci").Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	lookup, err = src.Lookup(ctx, "shop-main", "shop-env", spec)
	if v, _ := lookup("SHOP_API_TOKEN"); err != nil || v != "token-2" {
		t.Fatalf("after the change: %v, the old value still given: %v", err, v != "token-2")
	}
}
