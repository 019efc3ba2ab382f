package main

import (
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
