package rollout

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestDiffSecrets: each fromEnv key is same, changed, added (not in the
// live Secret), removed (no longer read) or unset; no value is in the
// result. Never promoted: every key read is added.
func TestDiffSecrets(t *testing.T) {
	spec := fromEnvSpec(t) // DB_PASSWORD_NEW <- SHOP_DB_PASSWORD, API_TOKEN <- SHOP_API_TOKEN
	env := map[string]string{"SHOP_DB_PASSWORD": "s3cr3t-VALUE-xyz", "SHOP_API_TOKEN": "tok-2"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cs := fake.NewClientset()
	ctx := context.Background()

	d, err := DiffSecrets(ctx, cs, spec, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if d.Live != "" || !d.Differs || len(d.Keys) != 2 || d.Keys[0].State != KeyAdded || d.Keys[1].State != KeyAdded {
		t.Fatalf("never promoted: %+v", d)
	}

	live := map[string][]byte{"API_TOKEN": []byte("tok-1"), "DB_PASSWORD_NEW": []byte("s3cr3t-VALUE-xyz"), "OLD_KEY": []byte("x")}
	name := EnvSecretName("shop", live)
	if _, err := cs.CoreV1().Secrets("shop").Create(ctx, RenderEnvSecret(spec, live, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	state, _ := json.Marshal(State{App: "shop", Phase: PhaseStable, Active: &Release{Color: ColorBlue, Image: "reg/shop@sha256:v1", Secret: name}})
	if _, err := cs.CoreV1().ConfigMaps("shop").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: StateName("shop"), Namespace: "shop"},
		Data: map[string]string{stateKey: string(state)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d, err = DiffSecrets(ctx, cs, spec, lookup)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, k := range d.Keys {
		got[k.Key] = k.State
	}
	want := map[string]string{"DB_PASSWORD_NEW": KeySame, "API_TOKEN": KeyChanged, "OLD_KEY": KeyRemoved}
	if d.Live != name || !d.Differs || len(got) != len(want) || d.Next == "" || d.Next == name {
		t.Fatalf("diff %+v", d)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s, want %s", k, got[k], w)
		}
	}
	b, _ := json.Marshal(d)
	if strings.Contains(string(b), "s3cr3t") || strings.Contains(string(b), "tok-") {
		t.Fatalf("a value is in the diff: %s", b)
	}

	delete(env, "SHOP_API_TOKEN")
	d, err = DiffSecrets(ctx, cs, spec, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if d.Next != "" || d.Keys[1].Key != "API_TOKEN" || d.Keys[1].State != KeyUnset {
		t.Fatalf("unset: %+v", d)
	}
}
