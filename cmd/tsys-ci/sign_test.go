package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/pipeline"
	"github.com/tsys-group/tsys-ci/registry"
)

func writeKeys(t *testing.T, dir, prefix, password string) (string, string) {
	t.Helper()
	priv, pub, err := registry.GenerateKeyPair([]byte(password))
	if err != nil {
		t.Fatal(err)
	}
	k, p := filepath.Join(dir, prefix+".key"), filepath.Join(dir, prefix+".pub")
	os.WriteFile(k, priv, 0o600)
	os.WriteFile(p, pub, 0o644)
	return k, p
}

func TestPushSignThenVerify(t *testing.T) {
	host := authRegistry(t)
	dir := t.TempDir()
	from := buildApp(t, dir)
	key, pub := writeKeys(t, dir, "ci", "pw")
	_, otherPub := writeKeys(t, dir, "other", "x")
	t.Setenv("TSYS_CI_REGISTRY_USERNAME", "ci")
	t.Setenv("TSYS_CI_REGISTRY_INSECURE", "true") // the test registry is on loopback, plain HTTP
	t.Setenv("TSYS_CI_REGISTRY_PASSWORD", "secret")
	t.Setenv("COSIGN_PASSWORD", "pw")
	result := filepath.Join(dir, "push.json")
	if _, stderr, code := run(t, "push", "--from", from, "--repository", host+"/demo/app", "--sign", "--key", key, "--result", result); code != 0 {
		t.Fatalf("push --sign: exit %d: %s", code, stderr)
	}
	r, _ := pipeline.ReadPushResult(result)
	if !r.Signed || len(r.Attested) != 2 {
		t.Fatalf("push.json says unsigned or without the SBOM and provenance: %+v", r)
	}
	stdout, stderr, code := run(t, "verify", "--key", pub, host+"/demo/app:build-12")
	if code != 0 || strings.TrimSpace(stdout) != r.Image {
		t.Fatalf("verify: exit %d, stdout %q, want %s: %s", code, stdout, r.Image, stderr)
	}
	if _, stderr, code := run(t, "verify", "--key", otherPub, r.Image); code != 1 || !strings.Contains(stderr, "no signature verifies with this key") {
		t.Errorf("verify with another key: exit %d, %q", code, stderr)
	}

	// An unsigned push, then tsys-ci sign makes it verify.
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, "other.txt"), []byte("x"), 0o644)
	if _, stderr, code := run(t, "build", "--context", dir2, "--base", "scratch", "--out", filepath.Join(dir2, "image"), "--result", filepath.Join(dir2, "b.json")); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := run(t, "push", "--from", filepath.Join(dir2, "b.json"), "--repository", host+"/demo/other", "--tag", "v1", "--result", filepath.Join(dir2, "p.json")); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := run(t, "verify", "--key", pub, host+"/demo/other:v1"); code != 1 || !strings.Contains(stderr, "no cosign signature") {
		t.Errorf("verify of an unsigned image: exit %d, %q", code, stderr)
	}
	if _, stderr, code := run(t, "sign", "--key", key, host+"/demo/other:v1"); code != 0 {
		t.Fatalf("sign: exit %d: %s", code, stderr)
	}
	if _, stderr, code := run(t, "verify", "--key", pub, host+"/demo/other:v1"); code != 0 {
		t.Errorf("verify after sign: exit %d, %q", code, stderr)
	}
}

func TestPushSignWrongPasswordPushesNothing(t *testing.T) {
	host := authRegistry(t)
	dir := t.TempDir()
	from := buildApp(t, dir)
	key, _ := writeKeys(t, dir, "ci", "pw")
	t.Setenv("TSYS_CI_REGISTRY_USERNAME", "ci")
	t.Setenv("TSYS_CI_REGISTRY_INSECURE", "true") // the test registry is on loopback, plain HTTP
	t.Setenv("TSYS_CI_REGISTRY_PASSWORD", "secret")
	t.Setenv("COSIGN_PASSWORD", "not-the-password")
	_, stderr, code := run(t, "push", "--from", from, "--repository", host+"/demo/app", "--sign", "--key", key, "--result", filepath.Join(dir, "p.json"))
	if code != 2 || !strings.Contains(stderr, "COSIGN_PASSWORD") {
		t.Fatalf("push --sign with a wrong password: exit %d, %q", code, stderr)
	}
	if _, _, code := run(t, "push", "--from", from, "--repository", host+"/demo/app", "--key", key); code != 2 {
		t.Errorf("--key without --sign: exit %d, want 2", code)
	}
}

// TestVerifyAttestations: what push --sign attached from a Jenkins build
// is shown by verify --attestations, as text for the console and as JSON.
func TestVerifyAttestations(t *testing.T) {
	host := authRegistry(t)
	dir := t.TempDir()
	t.Setenv("JENKINS_URL", "https://jenkins.example.com/")
	t.Setenv("JOB_NAME", "team/app")
	t.Setenv("BUILD_URL", "https://jenkins.example.com/job/team/job/app/12/")
	t.Setenv("GIT_URL", "https://ci:token@git.example.com/team/app.git")
	t.Setenv("BRANCH_NAME", "main")
	from := buildApp(t, dir)
	key, pub := writeKeys(t, dir, "ci", "pw")
	_, otherPub := writeKeys(t, dir, "other", "x")
	t.Setenv("TSYS_CI_REGISTRY_USERNAME", "ci")
	t.Setenv("TSYS_CI_REGISTRY_INSECURE", "true") // the test registry is on loopback, plain HTTP
	t.Setenv("TSYS_CI_REGISTRY_PASSWORD", "secret")
	t.Setenv("COSIGN_PASSWORD", "pw")
	result := filepath.Join(dir, "push.json")
	if _, stderr, code := run(t, "push", "--from", from, "--repository", host+"/demo/app", "--sign", "--key", key, "--result", result); code != 0 {
		t.Fatalf("push --sign: exit %d: %s", code, stderr)
	}
	r, _ := pipeline.ReadPushResult(result)
	stdout, stderr, code := run(t, "verify", "--key", pub, "--attestations", r.Image)
	if code != 0 {
		t.Fatalf("verify --attestations: exit %d: %s", code, stderr)
	}
	t.Logf("verify --attestations:\n%s", stdout)
	for _, want := range []string{
		"image:       " + r.Image,
		"sbom:        CycloneDX 1.5, 1 components: 1 files (0 Go programs), 0 Go modules",
		"base:        scratch (none)",
		"builder:     https://jenkins.example.com/ (tsys-ci dev)",
		"build:       team/app #12 https://jenkins.example.com/job/team/job/app/12/",
		"source:      https://git.example.com/team/app.git\n",
		"commit:      89abcdef0123456789abcdef0123456789abcdef (main)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("verify --attestations does not say %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "token") {
		t.Errorf("the login of GIT_URL reached the provenance:\n%s", stdout)
	}
	stdout, stderr, code = run(t, "verify", "--key", pub, "--attestations", "-o", "json", r.Image)
	var rep registry.AttestationReport
	if err := json.Unmarshal([]byte(stdout), &rep); code != 0 || err != nil || rep.Provenance == nil || rep.Provenance.Commit != "89abcdef0123456789abcdef0123456789abcdef" || rep.SBOM == nil || rep.SBOM.Files != 1 {
		t.Errorf("verify --attestations -o json: exit %d, %v: %s %s", code, err, stdout, stderr)
	}
	if _, stderr, code := run(t, "verify", "--key", pub, "-o", "json", r.Image); code != 2 || !strings.Contains(stderr, "add --attestations") {
		t.Errorf("-o json without --attestations: exit %d, %q", code, stderr)
	}
	if _, stderr, code := run(t, "verify", "--key", otherPub, "--attestations", r.Image); code != 1 || !strings.Contains(stderr, "no signature verifies with this key") {
		t.Errorf("verify --attestations with another key: exit %d, %q", code, stderr)
	}
	// An image signed without attestations (tsys-ci sign) is signed, and
	// verify --attestations says what is missing.
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, "other.txt"), []byte("x"), 0o644)
	if _, stderr, code := run(t, "build", "--context", dir2, "--base", "scratch", "--out", filepath.Join(dir2, "image"), "--result", filepath.Join(dir2, "b.json")); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := run(t, "push", "--from", filepath.Join(dir2, "b.json"), "--repository", host+"/demo/other", "--tag", "v1", "--result", filepath.Join(dir2, "p.json")); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := run(t, "sign", "--key", key, host+"/demo/other:v1"); code != 0 {
		t.Fatal(stderr)
	}
	stdout, stderr, code = run(t, "verify", "--key", pub, "--attestations", host+"/demo/other:v1")
	if code != 1 || !strings.Contains(stdout, "problem:     SBOM:") || !strings.Contains(stderr, "no attestation of this type verifies with this key") {
		t.Errorf("verify --attestations of an image without any: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestPromoteChecksSourceRepository: with source.repository in the app's
// spec, promote refuses an image signed with the key but built from
// another repository (naming both), and one without provenance; the
// refusal comes before the cluster is contacted (there is none here).
func TestPromoteChecksSourceRepository(t *testing.T) {
	host := authRegistry(t)
	dir := t.TempDir()
	t.Setenv("GIT_URL", "https://git.example.com/team/tool.git")
	from := buildApp(t, dir)
	key, pub := writeKeys(t, dir, "ci", "pw")
	t.Setenv("TSYS_CI_REGISTRY_USERNAME", "ci")
	t.Setenv("TSYS_CI_REGISTRY_INSECURE", "true") // the test registry is on loopback, plain HTTP
	t.Setenv("TSYS_CI_REGISTRY_PASSWORD", "secret")
	t.Setenv("COSIGN_PASSWORD", "pw")
	pushed := filepath.Join(dir, "push.json")
	if _, stderr, code := run(t, "push", "--from", from, "--repository", host+"/demo/shop", "--sign", "--key", key, "--result", pushed); code != 0 {
		t.Fatalf("push --sign: exit %d: %s", code, stderr)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"+
		"contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {token: x}}]\n"), 0o600)
	spec := func(source string) string {
		p := filepath.Join(t.TempDir(), "tsys-ci.yaml")
		os.WriteFile(p, []byte("name: shop\nports: [{name: http, containerPort: 8080}]\nsource: {repository: '"+source+"'}\n"), 0o644)
		return p
	}
	_, err := runPromoteCLI(t, "promote", "shop", "--kubeconfig", kubeconfig, "--spec", spec("https://git.example.com/team/shop"), "--from", pushed, "--verify-key", pub)
	t.Logf("refusal: %v", err)
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "built from https://git.example.com/team/tool.git") ||
		!strings.Contains(err.Error(), "names https://git.example.com/team/shop") {
		t.Errorf("promote of an image built from another repository: %v, want a refusal naming both", err)
	}
	// The spec's repository: the source check passes and promote goes on
	// to the cluster, which is not there.
	out, err := runPromoteCLI(t, "promote", "shop", "--kubeconfig", kubeconfig, "--spec", spec("git@git.example.com:team/tool.git"), "--from", pushed, "--verify-key", pub)
	if err == nil || strings.Contains(err.Error(), "source") || !strings.Contains(out, "was built from https://git.example.com/team/tool.git at 89abcdef") {
		t.Errorf("promote of an image from the spec's repository: %v\n%s", err, out)
	}
	// Signed, but without any attestation (tsys-ci sign of a plain push).
	if _, stderr, code := run(t, "push", "--from", from, "--repository", host+"/demo/plain", "--result", filepath.Join(dir, "p2.json")); code != 0 {
		t.Fatal(stderr)
	}
	p2, _ := pipeline.ReadPushResult(filepath.Join(dir, "p2.json"))
	if _, stderr, code := run(t, "sign", "--key", key, p2.Image); code != 0 {
		t.Fatal(stderr)
	}
	_, err = runPromoteCLI(t, "promote", "shop", "--kubeconfig", kubeconfig, "--spec", spec("https://git.example.com/team/tool"), "--image", p2.Image, "--verify-key", pub)
	t.Logf("refusal: %v", err)
	if err == nil || !strings.Contains(err.Error(), "needs a SLSA provenance signed with") || !strings.Contains(err.Error(), "the image has no attestations") {
		t.Errorf("promote of an image without provenance: %v", err)
	}
}
