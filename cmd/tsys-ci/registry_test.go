package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		"--webhook-url", "http://127.0.0.1:8080/hooks/harbor", "--robot-secret-file", secretFile, "--webhook-secrets-dir", filepath.Join(dir, "hooks")}
	stdout, stderr, code := run(t, args...)
	if code != 0 {
		t.Fatalf("Harbor stand-in: registry setup: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"created project demo", "created robot robot$demo+ci", "created webhook policy tsys-ci", "created tag retention", "wrote the robot's name and secret to " + secretFile,
		"wrote project demo's webhook secret to " + filepath.Join(dir, "hooks", "demo")} {
		if !strings.Contains(stdout, want) {
			t.Errorf("Harbor stand-in: registry setup output lacks %q:\n%s", want, stdout)
		}
	}
	st, err := os.Stat(secretFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("robot secret file: %v, mode %v", err, st.Mode())
	}
	if st, err := os.Stat(filepath.Join(dir, "hooks", "demo")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("webhook secret file: %v", err)
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
	t.Setenv("TSYS_CI_REGISTRY_INSECURE", "true") // the stand-in is on loopback, plain HTTP
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

// TestRegistryServeSurvivesRestart runs the real `registry serve` command,
// pushes to it with the CLI, stops it, starts it again on the same data and
// finds the image there.
func TestRegistryServeSurvivesRestart(t *testing.T) {
	data := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	serve := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			app := newApp()
			app.Writer, app.ErrWriter = io.Discard, io.Discard
			done <- runCLI(ctx, app, []string{"tsys-ci", "registry", "serve", "--addr", addr, "--data", data})
		}()
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + "/v2/")
			if err == nil {
				resp.Body.Close()
				break
			}
			select {
			case err := <-done:
				t.Fatalf("registry serve exited: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("registry serve did not answer on %s within 10 s: %v", addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("registry serve: %v", err)
			}
		}
	}
	stop := serve()
	dir := t.TempDir()
	from := buildApp(t, dir)
	t.Setenv("TSYS_CI_REGISTRY_USERNAME", "")
	result := filepath.Join(dir, "push.json")
	if _, stderr, code := run(t, "push", "--from", from, "--repository", addr+"/library/app", "--result", result); code != 0 {
		t.Fatalf("push: %s", stderr)
	}
	stop()
	stop = serve()
	defer stop()
	r, _ := pipeline.ReadPushResult(result)
	for _, ref := range []string{r.Image, addr + "/library/app:build-12"} {
		resp, err := http.Head("http://" + strings.Replace(strings.Replace(ref, "/library/app@", "/v2/library/app/manifests/", 1), "/library/app:", "/v2/library/app/manifests/", 1))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != r.Digest {
			t.Errorf("after a restart, HEAD %s: %d, digest %q, want %s", ref, resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), r.Digest)
		}
	}
}
