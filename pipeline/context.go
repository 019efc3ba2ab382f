// Package pipeline holds what the pipeline steps hand each other: the context
// a step reads from Jenkins' environment (job, build number, commit, branch,
// build time) and the small JSON results one step writes and the next reads.
package pipeline

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Context is what a pipeline step knows about the build it runs in. Jenkins
// sets it through environment variables; flags override them on a developer's
// machine.
type Context struct {
	Commit      string    // full commit SHA (GIT_COMMIT)
	Branch      string    // branch name (BRANCH_NAME, else GIT_BRANCH without "origin/")
	BuildNumber string    // Jenkins build number (BUILD_NUMBER)
	Job         string    // Jenkins job name (JOB_NAME)
	Source      string    // repository URL (GIT_URL), if known, without credentials
	Created     time.Time // build time; fixed so that builds reproduce
	JenkinsURL  string    // the Jenkins server (JENKINS_URL), when in Jenkins
	BuildURL    string    // this build's page (BUILD_URL), when in Jenkins
}

// Image label keys written by tsys-ci build (see the pipeline contract).
const (
	LabelRevision    = "org.opencontainers.image.revision"
	LabelCreated     = "org.opencontainers.image.created"
	LabelSource      = "org.opencontainers.image.source"
	LabelBranch      = "io.tsys-ci.branch"
	LabelBuildNumber = "io.tsys-ci.build-number"
	LabelJob         = "io.tsys-ci.job"
)

// FromEnv reads the context from Jenkins' environment; getenv is os.Getenv
// in the CLI and a map in tests. The build time comes from SOURCE_DATE_EPOCH
// when set; otherwise it is left zero for the caller to fill (from the commit
// time), so the same commit builds the same image.
func FromEnv(getenv func(string) string) (Context, error) {
	c := Context{
		Commit:      strings.TrimSpace(getenv("GIT_COMMIT")),
		Branch:      strings.TrimSpace(getenv("BRANCH_NAME")),
		BuildNumber: strings.TrimSpace(getenv("BUILD_NUMBER")),
		Job:         strings.TrimSpace(getenv("JOB_NAME")),
		Source:      CleanSourceURL(strings.TrimSpace(getenv("GIT_URL"))),
		JenkinsURL:  strings.TrimSpace(getenv("JENKINS_URL")),
		BuildURL:    strings.TrimSpace(getenv("BUILD_URL")),
	}
	if c.Branch == "" {
		c.Branch = strings.TrimPrefix(strings.TrimSpace(getenv("GIT_BRANCH")), "origin/")
	}
	if s := strings.TrimSpace(getenv("SOURCE_DATE_EPOCH")); s != "" {
		t, err := ParseEpoch(s)
		if err != nil {
			return c, fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		c.Created = t
	}
	return c, nil
}

// ParseEpoch parses a SOURCE_DATE_EPOCH value: whole seconds since 1970, UTC.
func ParseEpoch(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("%q is not a number of seconds since 1970", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

// ShortCommit is the commit as tags and humans use it: its first 7 characters.
func (c Context) ShortCommit() string {
	if len(c.Commit) > 7 {
		return c.Commit[:7]
	}
	return c.Commit
}

// Labels are the image labels the contract asks for; empty values are left
// out so an image never claims a commit or build it does not know.
func (c Context) Labels() map[string]string {
	l := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			l[k] = v
		}
	}
	set(LabelRevision, c.Commit)
	if !c.Created.IsZero() {
		l[LabelCreated] = c.Created.UTC().Format(time.RFC3339)
	}
	set(LabelSource, c.Source)
	set(LabelBranch, c.Branch)
	set(LabelBuildNumber, c.BuildNumber)
	set(LabelJob, c.Job)
	return l
}

// CleanSourceURL drops a login from a repository URL: Jenkins' GIT_URL and
// a clone's remote can carry one (https://user:token@host/x.git), and the
// URL goes into an image label and a provenance anyone can read.
func CleanSourceURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil || u.Host == "" {
		return s
	}
	if _, hasPassword := u.User.Password(); !hasPassword && u.Scheme == "ssh" {
		return s // ssh://git@host/x.git: a user name, not a secret
	}
	u.User = nil
	return u.String()
}
