package rollout

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func fromEnvSpec(t *testing.T) *AppSpec {
	return exampleSpec(t, func(s *AppSpec) {
		s.Env = append(s.Env,
			EnvVar{Name: "DB_PASSWORD_NEW", FromEnv: "SHOP_DB_PASSWORD"},
			EnvVar{Name: "API_TOKEN", FromEnv: "SHOP_API_TOKEN"})
	})
}

// TestEnvSecretName: the name is the app, "-env-" and the first 10 hex
// digits of sha256 over the sorted, length-prefixed keys and values; it
// does not depend on map order, and changes with any key or value.
func TestEnvSecretName(t *testing.T) {
	data := map[string][]byte{"B": []byte("2"), "A": []byte("1")}
	sum := sha256.Sum256([]byte("1:A1:1" + "1:B1:2"))
	want := "shop-env-" + hex.EncodeToString(sum[:])[:10]
	if got := EnvSecretName("shop", data); got != want {
		t.Fatalf("name %s, want %s", got, want)
	}
	for i := 0; i < 20; i++ { // map iteration order varies
		if got := EnvSecretName("shop", map[string][]byte{"A": []byte("1"), "B": []byte("2")}); got != want {
			t.Fatalf("name %s on run %d, want %s", got, i, want)
		}
	}
	others := []map[string][]byte{
		{"A": []byte("1"), "B": []byte("3")},
		{"A": []byte("1"), "C": []byte("2")},
		{"A": []byte("1B1:2")}, // the concatenation of the first, without lengths
		{"A": []byte("1")},
	}
	for _, o := range others {
		if got := EnvSecretName("shop", o); got == want {
			t.Errorf("%q hashes like %q", o, data)
		}
	}
}

func TestEnvSecretData(t *testing.T) {
	spec := fromEnvSpec(t)
	env := map[string]string{"SHOP_DB_PASSWORD": "s3cr3t-VALUE-xyz", "SHOP_API_TOKEN": "tok"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	data, err := EnvSecretData(spec, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 2 || string(data["DB_PASSWORD_NEW"]) != "s3cr3t-VALUE-xyz" || string(data["API_TOKEN"]) != "tok" {
		t.Fatalf("data %q", data)
	}
	sec := RenderEnvSecret(spec, data, testOwner)
	if sec.Name != EnvSecretName("shop", data) || sec.Immutable == nil || !*sec.Immutable || sec.Labels[LabelEnvSecret] != "true" ||
		sec.Labels["app.kubernetes.io/name"] != "shop" || sec.OwnerReferences[0].Name != "tsys-ci-shop" || sec.Namespace != "shop" {
		t.Fatalf("secret %+v", sec.ObjectMeta)
	}

	delete(env, "SHOP_API_TOKEN")
	env["SHOP_DB_PASSWORD"] = ""
	_, err = EnvSecretData(spec, lookup)
	var missing *MissingEnvError
	if !errors.As(err, &missing) || !missing.BadInput() {
		t.Fatalf("want a *MissingEnvError, got %v", err)
	}
	for _, w := range []string{"SHOP_DB_PASSWORD (env[2] DB_PASSWORD_NEW)", "SHOP_API_TOKEN (env[3] API_TOKEN)", "nothing was changed"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q: %v", w, err)
		}
	}
	if _, err := EnvSecretData(spec, nil); !errors.As(err, &missing) {
		t.Fatalf("no lookup: %v", err)
	}
	if data, err := EnvSecretData(exampleSpec(t, nil), nil); data != nil || err != nil {
		t.Fatalf("a spec without fromEnv: %v %v", data, err)
	}
}

// TestMissingEnvNamesNoValue: the error names the variables, never a
// value another variable has.
func TestMissingEnvNamesNoValue(t *testing.T) {
	spec := fromEnvSpec(t)
	_, err := EnvSecretData(spec, func(k string) (string, bool) {
		if k == "SHOP_DB_PASSWORD" {
			return "s3cr3t-VALUE-xyz", true
		}
		return "", false
	})
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "SHOP_API_TOKEN") {
		t.Fatalf("error %v", err)
	}
}

// TestRenderFromEnv: the pods read fromEnv variables from the release's
// Secret, under their own names; a release without a Secret (made before
// the spec had them) runs without them.
func TestRenderFromEnv(t *testing.T) {
	spec := fromEnvSpec(t)
	v := Version{Color: ColorBlue, Image: "reg/shop@sha256:abc", Replicas: 2, Secret: "shop-env-0123456789"}
	env := RenderDeployment(spec, v, testOwner).Spec.Template.Spec.Containers[0].Env
	byName := map[string]int{}
	for i, e := range env {
		byName[e.Name] = i
	}
	for _, name := range []string{"DB_PASSWORD_NEW", "API_TOKEN"} {
		i, ok := byName[name]
		if !ok {
			t.Fatalf("%s not rendered: %+v", name, env)
		}
		ref := env[i].ValueFrom
		if env[i].Value != "" || ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "shop-env-0123456789" || ref.SecretKeyRef.Key != name {
			t.Errorf("%s rendered as %+v", name, env[i])
		}
	}
	if ref := env[byName["DB_PASSWORD"]].ValueFrom.SecretKeyRef; ref.Name != "shop-db" {
		t.Errorf("the secretRef entry changed: %+v", ref)
	}
	v.Secret = ""
	for _, e := range RenderDeployment(spec, v, testOwner).Spec.Template.Spec.Containers[0].Env {
		if e.Name == "DB_PASSWORD_NEW" || e.Name == "API_TOKEN" {
			t.Errorf("a release without a Secret got %s", e.Name)
		}
	}
}
