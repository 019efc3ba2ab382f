package pipeline

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// commitPattern is a git object name: what Jenkins' GIT_COMMIT holds (40
// hex digits, 64 in a SHA-256 repository), or an abbreviation of one. Only
// such a name is given to git: GIT_COMMIT and --commit are outside input,
// and `--output=FILE` made `git show` overwrite FILE (issue 17, finding
// 11). Other values (the lab tests' "e2e-serve") still label the image.
var commitPattern = regexp.MustCompile(`^[0-9a-fA-F]{7,64}$`)

// FillFromGit fills what Jenkins' environment did not give from the git
// repository at dir, when git and a repository are there: the commit (HEAD),
// the source (the origin remote's URL), the branch, and the build time (the commit's time, so a rebuild of the same
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
	if c.Source == "" {
		c.Source = CleanSourceURL(git("config", "--get", "remote.origin.url"))
	}
	if c.Branch == "" && c.Commit != "" {
		if b := git("rev-parse", "--abbrev-ref", "HEAD"); b != "HEAD" {
			c.Branch = b
		}
	}
	// Only a hex object name reaches git, and after --end-of-options, so
	// it can never be read as an option.
	if c.Created.IsZero() && commitPattern.MatchString(c.Commit) {
		if t, err := ParseEpoch(git("show", "-s", "--format=%ct", "--end-of-options", c.Commit)); err == nil {
			c.Created = t
		}
	}
}

// Epoch is the build time used when nothing better is known: fixed, so even
// then two builds of the same files give the same image.
var Epoch = time.Unix(0, 0).UTC()
