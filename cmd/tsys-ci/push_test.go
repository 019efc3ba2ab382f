package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tsys-group/tsys-ci/pipeline"
)

// authRegistry is go-containerregistry's registry on loopback behind basic
// auth ci/secret; it returns the host:port.
func authRegistry(t *testing.T) string {
	t.Helper()
	reg := ggcrregistry.New(ggcrregistry.WithReferrersSupport(true))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "ci" || p != "secret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// buildApp builds a small scratch image in dir with the CLI and returns the
// build result's path.
func buildApp(t *testing.T, dir string) string {
	t.Helper()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello"), 0o644)
	t.Setenv("GIT_COMMIT", "89abcdef0123456789abcdef0123456789abcdef")
	t.Setenv("BUILD_NUMBER", "12")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	result := filepath.Join(dir, "build.json")
	if _, stderr, code := run(t, "build", "--context", dir, "--base", "scratch",
		"--out", filepath.Join(dir, "image"), "--result", result); code != 0 {
		t.Fatalf("build: exit %d: %s", code, stderr)
	}
	return result
}

func TestPushCommand(t *testing.T) {
	host := authRegistry(t)
	dir := t.TempDir()
	from := buildApp(t, dir)
	built, _ := pipeline.ReadBuildResult(from)
	t.Setenv("TSYS_CI_REGISTRY_USERNAME", "ci")
	t.Setenv("TSYS_CI_REGISTRY_INSECURE", "true") // the test registry is on loopback, plain HTTP
	t.Setenv("TSYS_CI_REGISTRY_PASSWORD", "secret")
	result := filepath.Join(dir, "push.json")
	stdout, stderr, code := run(t, "push", "--from", from, "--repository", host+"/demo/app", "--result", result)
	if code != 0 {
		t.Fatalf("push: exit %d: %s", code, stderr)
	}
	r, err := pipeline.ReadPushResult(result)
	if err != nil {
		t.Fatal(err)
	}
	wantImage := host + "/demo/app@" + built.Digest
	if r.Image != wantImage || r.Digest != built.Digest || strings.TrimSpace(stdout) != wantImage {
		t.Errorf("push result %+v, stdout %q; want image %s", r, stdout, wantImage)
	}
	if strings.Join(r.Tags, ",") != "89abcde,build-12" || r.Signed {
		t.Errorf("tags %v signed %v, want the short commit and build-12, unsigned", r.Tags, r.Signed)
	}
	ref, _ := name.ParseReference(host + "/demo/app:build-12")
	img, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: "ci", Password: "secret"}))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d.String() != built.Digest {
		t.Errorf("pulled back %s, built %s", d, built.Digest)
	}
}

func TestPushCommandFailures(t *testing.T) {
	host := authRegistry(t)
	dir := t.TempDir()
	from := buildApp(t, dir)
	t.Setenv("TSYS_CI_REGISTRY_USERNAME", "ci")
	t.Setenv("TSYS_CI_REGISTRY_INSECURE", "true") // the test registry is on loopback, plain HTTP
	t.Setenv("TSYS_CI_REGISTRY_PASSWORD", "wrong")
	_, stderr, code := run(t, "push", "--from", from, "--repository", host+"/demo/app", "--result", filepath.Join(dir, "p.json"))
	if code != 1 || !strings.Contains(stderr, "refused the credentials") {
		t.Errorf("wrong password: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "p.json")); err == nil {
		t.Error("a failed push wrote its result")
	}
	t.Setenv("TSYS_CI_REGISTRY_PASSWORD", "secret")
	_, stderr, code = run(t, "push", "--from", from, "--repository", host+"/demo/app", "--tag", "bad tag", "--result", filepath.Join(dir, "p.json"))
	if code != 2 || !strings.Contains(stderr, `tag "bad tag" is not valid`) {
		t.Errorf("bad tag: exit %d, %q", code, stderr)
	}
	_, stderr, code = run(t, "push", "--from", filepath.Join(dir, "missing.json"), "--repository", host+"/demo/app")
	if code != 2 || !strings.Contains(stderr, "run 'tsys-ci build' first") {
		t.Errorf("missing build result: exit %d, %q", code, stderr)
	}
}
