package pipeline

import (
	"context"
	"os/exec"
	"strings"
	"time"
)

// FillFromGit fills what Jenkins' environment did not give from the git
// repository at dir, when git and a repository are there: the commit (HEAD),
// the branch, and the build time (the commit's time, so a rebuild of the same
// commit gives the same image). Without git it leaves c as it is: a build
// outside a repository is still possible, only less labelled.
func FillFromGit(ctx context.Context, dir string, c *Context) {
	git := func(args ...string) string {
		out, err := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...).Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	if c.Commit == "" {
		c.Commit = git("rev-parse", "--verify", "-q", "HEAD")
	}
	if c.Branch == "" && c.Commit != "" {
		if b := git("rev-parse", "--abbrev-ref", "HEAD"); b != "HEAD" {
			c.Branch = b
		}
	}
	if c.Created.IsZero() && c.Commit != "" {
		if t, err := ParseEpoch(git("show", "-s", "--format=%ct", c.Commit)); err == nil {
			c.Created = t
		}
	}
}

// Epoch is the build time used when nothing better is known: fixed, so even
// then two builds of the same files give the same image.
var Epoch = time.Unix(0, 0).UTC()
