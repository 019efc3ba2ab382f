package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/apiserver"
	"github.com/tsys-group/tsys-ci/test/podstandin"
)

// runOut runs the tsys-ci binary as run does and returns its stdout too.
func runOut(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(tsysCI, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "USER=dev"}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("running tsys-ci %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// TestPromoteEnvSecretsFromTheCLI: 'tsys-ci promote' run as Jenkins runs
// it, with the spec's fromEnv variables in its environment, writes them
// into the release's Secret; a changed value is a new release with a new
// Secret and '--rollback' brings the old one back; a missing variable
// exits 2 naming it, before anything changes; 'secrets diff' names the
// keys that differ from the live release. The value is in none of stdout
// (-o json), stderr, the JUnit report, 'status', 'secrets diff' or the
// Events.
func TestPromoteEnvSecretsFromTheCLI(t *testing.T) {
	const value = "s3cr3t-VALUE-xyz"
	cs := apiserver.Client(t)
	ns := apiserver.Namespace(t, cs, "cli-env")
	podstandin.Start(t, cs, ns)
	dir := t.TempDir()
	spec := filepath.Join(dir, "tsys-ci.yaml")
	write(t, spec, "name: shop\nnamespace: "+ns+"\nreplicas: 2\nports: [{name: http, containerPort: 8080}]\n"+
		"env:\n  - {name: LOG_LEVEL, value: info}\n  - {name: DB_PASSWORD, fromEnv: SHOP_DB_PASSWORD}\n  - {name: API_TOKEN, fromEnv: SHOP_API_TOKEN}\n"+
		"strategy: {type: blueGreen, blueGreen: {scaleDownDelay: 1s}}\n")
	report := filepath.Join(dir, "junit.xml")
	var outputs []string // everything the commands wrote, grepped at the end
	promote := func(env []string, extra ...string) (string, string, int) {
		args := append([]string{"promote", "shop", "--kubeconfig", kubeconfig, "--spec", spec, "--allow-unsigned", "--report", report, "-o", "json"}, extra...)
		stdout, stderr, code := runOut(t, env, args...)
		outputs = append(outputs, stdout, stderr)
		if b, err := os.ReadFile(report); err == nil {
			outputs = append(outputs, string(b))
		}
		return stdout, stderr, code
	}
	state := func() *rollout.State {
		s, err := rollout.Status(context.Background(), cs, ns, "shop")
		if err != nil || s == nil {
			t.Fatalf("state: %v %v", s, err)
		}
		return s
	}
	v1 := "reg.example/shop/shop@sha256:" + strings.Repeat("a1", 32)
	v2 := "reg.example/shop/shop@sha256:" + strings.Repeat("b2", 32)

	// Refused before anything is written, a first promote included.
	_, stderr, code := promote([]string{"SHOP_DB_PASSWORD=" + value}, "--image", v1)
	if code != 2 || !strings.Contains(stderr, "SHOP_API_TOKEN (env[2] API_TOKEN)") || !strings.Contains(stderr, "nothing was changed") {
		t.Fatalf("promote without SHOP_API_TOKEN: exit %d, want 2 naming it\n%s", code, stderr)
	}
	if s, err := rollout.Status(context.Background(), cs, ns, "shop"); s != nil || err != nil {
		t.Fatalf("the refused promote wrote a state: %+v %v", s, err)
	}

	env := []string{"SHOP_DB_PASSWORD=" + value, "SHOP_API_TOKEN=token-1"}
	stdout, stderr, code := promote(env, "--image", v1)
	var res rollout.Result
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || !strings.HasPrefix(res.Secret, "shop-env-") {
		t.Fatalf("promote v1: exit %d, stdout %s\n%s", code, stdout, stderr)
	}
	s1 := res.Secret
	sec, err := cs.CoreV1().Secrets(ns).Get(context.Background(), s1, metav1.GetOptions{})
	if err != nil || string(sec.Data["DB_PASSWORD"]) != value || string(sec.Data["API_TOKEN"]) != "token-1" || sec.Immutable == nil || !*sec.Immutable {
		t.Fatalf("Secret %s: %v", s1, err)
	}
	if st := state(); st.Active.Secret != s1 {
		t.Fatalf("state names %q, want %s", st.Active.Secret, s1)
	}

	env[1] = "SHOP_API_TOKEN=token-2"
	if stdout, stderr, code = promote(env, "--image", v2); code != 0 {
		t.Fatalf("promote v2: exit %d\n%s", code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Secret == s1 || res.Secret == "" {
		t.Fatalf("promote v2 with a changed value: Secret %q (v1's %s)", res.Secret, s1)
	}
	s2 := res.Secret
	before := state()
	if before.Active.Secret != s2 || before.Previous.Secret != s1 {
		t.Fatalf("after v2: active %+v, previous %+v", before.Active, before.Previous)
	}

	// A missing variable on a later promote: exit 2, the state untouched.
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(context.Background(), rollout.StateName("shop"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, code = promote([]string{"SHOP_API_TOKEN=token-3"}, "--image", v1); code != 2 || !strings.Contains(stderr, "SHOP_DB_PASSWORD") {
		t.Fatalf("promote without SHOP_DB_PASSWORD: exit %d\n%s", code, stderr)
	}
	if after, err := cs.CoreV1().ConfigMaps(ns).Get(context.Background(), rollout.StateName("shop"), metav1.GetOptions{}); err != nil || after.ResourceVersion != cm.ResourceVersion {
		t.Fatalf("the refused promote wrote the state (%v)", err)
	}

	// --rollback needs no environment: it takes v1 back with its Secret.
	if _, stderr, code = promote(nil, "--rollback"); code != 0 {
		t.Fatalf("promote --rollback: exit %d\n%s", code, stderr)
	}
	if st := state(); st.Active.Image != v1 || st.Active.Secret != s1 || st.Previous.Secret != s2 {
		t.Fatalf("after --rollback: active %+v, previous %+v", st.Active, st.Previous)
	}

	// secrets diff against the live release (v1, token-1): names only.
	diff := func(env []string, extra ...string) (string, string, int) {
		stdout, stderr, code := runOut(t, env, append([]string{"secrets", "diff", "shop", "--kubeconfig", kubeconfig, "--spec", spec}, extra...)...)
		outputs = append(outputs, stdout, stderr)
		return stdout, stderr, code
	}
	stdout, stderr, code = diff([]string{"SHOP_DB_PASSWORD=" + value, "SHOP_API_TOKEN=token-1"})
	if code != 0 || !strings.Contains(stdout, "shop: live Secret "+s1+"; a promote from this environment keeps the live values") ||
		!strings.Contains(stdout, "same     API_TOKEN (from $SHOP_API_TOKEN)") {
		t.Fatalf("secrets diff with the live values: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = diff([]string{"SHOP_DB_PASSWORD=" + value, "SHOP_API_TOKEN=token-9"}, "-o", "json")
	var d rollout.SecretsDiff
	if code != 0 || json.Unmarshal([]byte(stdout), &d) != nil || !d.Differs || d.Live != s1 || d.Next == "" || d.Next == s1 || d.Next == s2 {
		t.Fatalf("secrets diff -o json with a changed token: exit %d\n%s%s", code, stdout, stderr)
	}
	states := map[string]string{}
	for _, k := range d.Keys {
		states[k.Key] = k.State
	}
	if states["API_TOKEN"] != rollout.KeyChanged || states["DB_PASSWORD"] != rollout.KeySame || len(states) != 2 {
		t.Fatalf("secrets diff keys %+v", d.Keys)
	}
	stdout, stderr, code = diff([]string{"SHOP_API_TOKEN=token-1"})
	if code != 2 || !strings.Contains(stdout, "unset    DB_PASSWORD (from $SHOP_DB_PASSWORD)") || !strings.Contains(stderr, "SHOP_DB_PASSWORD (env[1] DB_PASSWORD)") {
		t.Fatalf("secrets diff with a variable unset: exit %d, want 2\n%s%s", code, stdout, stderr)
	}

	for _, args := range [][]string{{"status", "shop", "--namespace", ns}, {"status", "shop", "--namespace", ns, "-o", "json"}} {
		stdout, stderr, code := runOut(t, nil, append(args, "--kubeconfig", kubeconfig)...)
		if code != 0 || !strings.Contains(stdout, "shop") {
			t.Fatalf("%v: exit %d\n%s%s", args, code, stdout, stderr)
		}
		outputs = append(outputs, stdout, stderr)
	}
	evs, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(evs)
	outputs = append(outputs, string(b))
	if _, err := os.Stat(report); err != nil {
		t.Fatalf("no JUnit report was written: %v", err)
	}
	for _, o := range outputs {
		if strings.Contains(o, value) {
			t.Errorf("the secret value is in an output:\n%s", o)
		}
	}
}
