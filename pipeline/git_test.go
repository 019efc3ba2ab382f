package pipeline

import (
	"context"
	"github.com/tsys-group/tsys-ci/test/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitRepo makes a repository with one commit at a fixed time and returns
// its directory and the commit.
func gitRepo(t *testing.T) (string, string) {
	t.Helper()
	git := testenv.LookPath(t, "git")
	dir := t.TempDir()
	run := func(args ...string) string {
		cmd := exec.Command(git, append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE=@1700000000 +0000", "GIT_COMMITTER_DATE=@1700000000 +0000",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("init", "-q")
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	run("add", "f")
	run("commit", "-q", "-m", "one")
	return dir, run("rev-parse", "HEAD")
}

// TestGitCommitIsNeverAnOption (issue 17, finding 11): GIT_COMMIT is
// outside input; `--output=FILE` must not reach git as an option (it made
// `git show` overwrite FILE), neither from FillFromGit nor through build.
func TestGitCommitIsNeverAnOption(t *testing.T) {
	dir, head := gitRepo(t)
	victim := filepath.Join(t.TempDir(), "important")
	if err := os.WriteFile(victim, []byte("important"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := Context{Commit: "--output=" + victim}
	FillFromGit(context.Background(), dir, &c)
	if b, _ := os.ReadFile(victim); string(b) != "important" {
		t.Fatalf("GIT_COMMIT=--output=FILE overwrote FILE with %q", b)
	}
	if !c.Created.IsZero() {
		t.Errorf("a commit that is not a hash gave a build time %v", c.Created)
	}

	res, err := Build(context.Background(), BuildRequest{Context: dir, Base: "scratch", Platform: "linux/amd64", Workdir: "/app",
		Out: filepath.Join(t.TempDir(), "image"), Result: filepath.Join(t.TempDir(), "build.json")},
		func(k string) string {
			if k == "GIT_COMMIT" {
				return "--output=" + victim
			}
			return ""
		}, &strings.Builder{})
	if err != nil || res.Labels[LabelRevision] != "--output="+victim {
		t.Errorf("build with GIT_COMMIT=--output=FILE: %+v, %v; want a build labelled with it as text", res, err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "important" {
		t.Fatalf("build with GIT_COMMIT=--output=FILE overwrote FILE with %q", b)
	}

	// A real commit still gives its time.
	c = Context{Commit: head}
	FillFromGit(context.Background(), dir, &c)
	if c.Created.Unix() != 1700000000 {
		t.Errorf("the commit's time is %v, want 1700000000", c.Created)
	}
}

// Outside Jenkins the source is the origin remote, without its login, and
// a build records it with the contents push makes attestations of.
func TestFillFromGitReadsTheOriginRemote(t *testing.T) {
	dir, head := gitRepo(t)
	out, err := exec.Command(testenv.LookPath(t, "git"), "-C", dir, "remote", "add", "origin", "https://ci:s3cret@git.example.com/team/app.git").CombinedOutput()
	if err != nil {
		t.Fatalf("git remote add: %v\n%s", err, out)
	}
	var c Context
	FillFromGit(context.Background(), dir, &c)
	if c.Source != "https://git.example.com/team/app.git" || c.Commit != head {
		t.Errorf("FillFromGit: source %q, commit %q", c.Source, c.Commit)
	}
	res, err := Build(context.Background(), BuildRequest{Context: dir, Base: "scratch", Platform: "linux/amd64", Workdir: "/app",
		Out: filepath.Join(t.TempDir(), "image"), Result: filepath.Join(t.TempDir(), "build.json")},
		func(string) string { return "" }, &strings.Builder{})
	if err != nil || res.Build == nil || res.Build.Source != "https://git.example.com/team/app.git" || res.Build.Commit != head ||
		res.Contents == nil || len(res.Contents.Files) != 1 || res.Contents.Files[0].Path != "/app/f" {
		t.Errorf("build outside Jenkins: %+v %+v, %v", res.Build, res.Contents, err)
	}
}
