package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/pipeline"
	"github.com/tsys-group/tsys-ci/registry"
	"github.com/tsys-group/tsys-ci/test/harborstandin"
)

// TestRegistrySetupThenSignedPush runs the pipeline's Harbor half against the
// Harbor stand-in: registry setup twice (the second changes nothing), then
// push --harbor --sign with the robot account it made.
func TestRegistrySetupThenSignedPush(t *testing.T) {
	srv := httptest.NewServer(harborstandin.New(harborstandin.Options{}))
	defer srv.Close()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "robot.json")
	t.Setenv("TSYS_CI_HARBOR_PASSWORD", "Harbor12345")
	args := []string{"registry", "setup", "--harbor", srv.URL, "--project", "demo",
		"--webhook-url", "http://127.0.0.1:8080/hooks/harbor", "--robot-secret-file", secretFile}
	stdout, stderr, code := run(t, args...)
	if code != 0 {
		t.Fatalf("Harbor stand-in: registry setup: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"created project demo", "created robot robot$demo+ci", "created webhook policy tsys-ci", "created tag retention", "wrote the robot's name and secret to " + secretFile} {
		if !strings.Contains(stdout, want) {
			t.Errorf("Harbor stand-in: registry setup output lacks %q:\n%s", want, stdout)
		}
	}
	st, err := os.Stat(secretFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("robot secret file: %v, mode %v", err, st.Mode())
	}
	stdout, stderr, code = run(t, args...)
	if code != 0 || !strings.Contains(stdout, "nothing changed") {
		t.Fatalf("Harbor stand-in: second registry setup: exit %d, output %q %s", code, stdout, stderr)
	}
	var robot struct{ Username, Password string }
	b, _ := os.ReadFile(secretFile)
	json.Unmarshal(b, &robot)

	from := buildApp(t, dir)
	key, pub := writeKeys(t, dir, "ci", "pw")
	t.Setenv("TSYS_CI_REGISTRY_USERNAME", robot.Username)
	t.Setenv("TSYS_CI_REGISTRY_PASSWORD", robot.Password)
	t.Setenv("COSIGN_PASSWORD", "pw")
	host := strings.TrimPrefix(srv.URL, "http://")
	result := filepath.Join(dir, "push.json")
	_, stderr, code = run(t, "push", "--from", from, "--repository", host+"/demo/shop", "--harbor", srv.URL, "--sign", "--key", key, "--result", result)
	if code != 0 || !strings.Contains(stderr, "shows "+host+"/demo/shop@") {
		t.Fatalf("Harbor stand-in: push --harbor --sign: exit %d: %s", code, stderr)
	}
	r, _ := pipeline.ReadPushResult(result)
	if _, stderr, code := run(t, "verify", "--key", pub, r.Image); code != 0 {
		t.Fatalf("verify: %s", stderr)
	}
	// The robot cannot create another project: push --harbor says what to do.
	_, stderr, code = run(t, "push", "--from", from, "--repository", host+"/newproj/shop", "--harbor", srv.URL, "--result", result)
	if code != 1 || !strings.Contains(stderr, "tsys-ci registry setup --project newproj") {
		t.Errorf("Harbor stand-in: push to a missing project as a robot: exit %d: %s", code, stderr)
	}
}

// TestPushDefaultsToEmbeddedRegistry: no --repository, no
// TSYS_CI_REPOSITORY: push goes to the embedded registry.
func TestPushDefaultsToEmbeddedRegistry(t *testing.T) {
	e, err := registry.OpenEmbedded(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	srv := httptest.NewServer(e)
	defer srv.Close()
	old := embeddedAddr
	embeddedAddr = strings.TrimPrefix(srv.URL, "http://")
	defer func() { embeddedAddr = old }()
	dir := t.TempDir()
	from := buildApp(t, dir)
	t.Setenv("TSYS_CI_REPOSITORY", "")
	t.Setenv("JOB_NAME", "")
	t.Setenv("TSYS_CI_REGISTRY_USERNAME", "")
	result := filepath.Join(dir, "push.json")
	_, stderr, code := run(t, "push", "--from", from, "--result", result)
	if code != 0 || !strings.Contains(stderr, "using the embedded registry") {
		t.Fatalf("push without a repository: exit %d: %s", code, stderr)
	}
	r, _ := pipeline.ReadPushResult(result)
	if !strings.HasPrefix(r.Image, embeddedAddr+"/library/") {
		t.Errorf("pushed to %s, want the embedded registry", r.Image)
	}

	// With the embedded registry not running, the message says how to start it.
	embeddedAddr = "127.0.0.1:1"
	_, stderr, code = run(t, "push", "--from", from, "--result", result)
	if code != 1 || !strings.Contains(stderr, "tsys-ci registry serve") {
		t.Errorf("push with the embedded registry down: exit %d: %s", code, stderr)
	}
}

func TestRegistryServeRefusesNonLoopback(t *testing.T) {
	_, stderr, code := run(t, "registry", "serve", "--addr", "0.0.0.0:5055", "--data", t.TempDir())
	if code != 2 || !strings.Contains(stderr, "loopback") {
		t.Errorf("registry serve on 0.0.0.0: exit %d: %s", code, stderr)
	}
}
