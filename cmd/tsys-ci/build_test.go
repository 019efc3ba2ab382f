package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/pipeline"
)

// run runs tsys-ci in-process and returns stdout, stderr and the exit code
// main would use.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	out, errOut, err := runApp(t, args...)
	code := 0
	if err != nil {
		code = exitCode(err)
		errOut += err.Error()
	}
	return out, errOut, code
}

func TestBuildCommandWritesResult(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("hi"), 0o644)
	t.Setenv("GIT_COMMIT", "0123456789abcdef0123456789abcdef01234567")
	t.Setenv("BUILD_NUMBER", "7")
	t.Setenv("JOB_NAME", "shop")
	t.Setenv("BRANCH_NAME", "main")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	out := filepath.Join(dir, ".tsys-ci", "image")
	result := filepath.Join(dir, ".tsys-ci", "build.json")
	args := []string{"build", "--context", dir, "--base", "scratch", "--port", "8080", "--env", "A=1,2",
		"--cmd", "a,b", "--label", "team=web", "--out", out, "--result", result}
	stdout, stderr, code := run(t, args...)
	if code != 0 {
		t.Fatalf("build exited %d: %s", code, stderr)
	}
	r, err := pipeline.ReadBuildResult(result)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(stdout) != r.Digest || r.Layout != out {
		t.Errorf("stdout %q, result %+v", stdout, r)
	}
	want := map[string]string{
		"org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
		"org.opencontainers.image.created":  "2023-11-14T22:13:20Z",
		"io.tsys-ci.branch":                 "main",
		"io.tsys-ci.build-number":           "7",
		"io.tsys-ci.job":                    "shop",
		"team":                              "web",
	}
	for k, v := range want {
		if r.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, r.Labels[k], v)
		}
	}
	// Same inputs, second run: same digest.
	stdout2, stderr, code := run(t, args...)
	if code != 0 || stdout2 != stdout {
		t.Fatalf("second build: exit %d, digest %q vs %q: %s", code, stdout2, stdout, stderr)
	}
}

func TestBuildCommandBadInputExits2(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--port", "99999"},
		{"--env", "NOEQUALS"},
		{"--label", "=v"},
		{"--build-time", "yesterday"},
		{"--platform", "amd64"},
		{"--user", "root"},
	} {
		_, stderr, code := run(t, append([]string{"build", "--context", dir, "--base", "scratch",
			"--out", filepath.Join(dir, "o"), "--result", filepath.Join(dir, "r.json")}, args...)...)
		if code != 2 {
			t.Errorf("build %v: exit %d, want 2 (%s)", args, code, stderr)
		}
		if !strings.Contains(stderr, strings.TrimPrefix(args[0], "--")) {
			t.Errorf("build %v: message %q does not name the flag", args, stderr)
		}
	}
	_, stderr, code := run(t, "build", "--context", dir, "--out", filepath.Join(dir, "o"))
	if code != 2 || !strings.Contains(stderr, "--base") {
		t.Errorf("build without --base: exit %d, %q", code, stderr)
	}
}
