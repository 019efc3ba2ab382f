package pipeline

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestFromEnvReadsJenkinsVariables(t *testing.T) {
	env := map[string]string{
		"GIT_COMMIT":        "0123456789abcdef0123456789abcdef01234567",
		"GIT_BRANCH":        "origin/main",
		"BUILD_NUMBER":      "42",
		"JOB_NAME":          "web/shop",
		"SOURCE_DATE_EPOCH": "1700000000",
	}
	c, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		LabelRevision:    env["GIT_COMMIT"],
		LabelCreated:     "2023-11-14T22:13:20Z",
		LabelBranch:      "main",
		LabelBuildNumber: "42",
		LabelJob:         "web/shop",
	}
	if got := c.Labels(); !reflect.DeepEqual(got, want) {
		t.Errorf("labels = %v, want %v", got, want)
	}
	if c.ShortCommit() != "0123456" {
		t.Errorf("short commit = %q", c.ShortCommit())
	}
	env["BRANCH_NAME"] = "feature-x"
	c, _ = FromEnv(func(k string) string { return env[k] })
	if c.Branch != "feature-x" {
		t.Errorf("BRANCH_NAME should win over GIT_BRANCH, got %q", c.Branch)
	}
}

func TestFromEnvRejectsBadEpoch(t *testing.T) {
	for _, v := range []string{"yesterday", "-5", "1.5"} {
		if _, err := FromEnv(func(k string) string {
			if k == "SOURCE_DATE_EPOCH" {
				return v
			}
			return ""
		}); err == nil {
			t.Errorf("SOURCE_DATE_EPOCH=%q accepted", v)
		}
	}
}

func TestResultsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	b := BuildResult{Digest: "sha256:ab", Layout: ".tsys-ci/image", Labels: map[string]string{"a": "b"}}
	p := filepath.Join(dir, "sub", "build.json")
	if err := WriteJSON(p, b); err != nil {
		t.Fatal(err)
	}
	got, err := ReadBuildResult(p)
	if err != nil || !reflect.DeepEqual(got, b) {
		t.Fatalf("read back %+v, %v; want %+v", got, err, b)
	}
	if _, err := ReadBuildResult(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("reading a missing build result succeeded")
	}
	pr := PushResult{Image: "h/p/n@sha256:ab", Digest: "sha256:ab", Tags: []string{"x"}, Signed: true}
	if err := WriteJSON(filepath.Join(dir, "push.json"), pr); err != nil {
		t.Fatal(err)
	}
	gotp, err := ReadPushResult(filepath.Join(dir, "push.json"))
	if err != nil || !reflect.DeepEqual(gotp, pr) {
		t.Fatalf("read back %+v, %v; want %+v", gotp, err, pr)
	}
}

func TestParseEpoch(t *testing.T) {
	got, err := ParseEpoch("0")
	if err != nil || !got.Equal(time.Unix(0, 0)) {
		t.Fatalf("ParseEpoch(0) = %v, %v", got, err)
	}
}

// A login in GIT_URL or the origin remote never reaches a label or the
// provenance; an ssh user name (not a secret) and plain URLs stay.
func TestCleanSourceURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://ci:s3cret@git.example.com/team/app.git": "https://git.example.com/team/app.git",
		"https://token@git.example.com/team/app.git":     "https://git.example.com/team/app.git",
		"ssh://git@git.example.com/team/app.git":         "ssh://git@git.example.com/team/app.git",
		"git@git.example.com:team/app.git":               "git@git.example.com:team/app.git",
		"https://git.example.com/team/app":               "https://git.example.com/team/app",
		"":                                               "",
	} {
		if got := CleanSourceURL(in); got != want {
			t.Errorf("CleanSourceURL(%q) = %q, want %q", in, got, want)
		}
	}
}
