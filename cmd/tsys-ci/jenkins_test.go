package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/test/jenkinsstandin"
)

func TestJenkinsSeedAndRunAgainstTheStandIn(t *testing.T) {
	s := jenkinsstandin.New(jenkinsstandin.Options{Users: []jenkinsstandin.User{
		{Name: "seeder", Tokens: []string{"tok"}, Permissions: jenkinsstandin.PermAll},
	}})
	hs := httptest.NewServer(s)
	t.Cleanup(func() { hs.Close(); s.Close() })
	t.Setenv("JENKINS_URL", hs.URL)
	t.Setenv("JENKINS_USER", "seeder")
	t.Setenv("JENKINS_API_TOKEN", "tok")
	jobs := filepath.Join("..", "..", "templates", "jenkins", "jobs.yaml")

	out, errOut, err := runApp(t, "jenkins", "seed", "-f", jobs, "--dry-run")
	if err != nil || !strings.Contains(out, "would create folder apps") || !strings.Contains(errOut, "seeding Jenkins "+jenkinsstandin.Version) {
		t.Fatalf("seed --dry-run: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if out, _, err = runApp(t, "jenkins", "seed", "-f", jobs); err != nil || !strings.Contains(out, "4 created") {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	if out, _, err = runApp(t, "jenkins", "seed", "-f", jobs); err != nil || !strings.Contains(out, "no changes") {
		t.Fatalf("second seed: %v\n%s", err, out)
	}
	out, errOut, err = runApp(t, "jenkins", "run", "--poll", "5ms", "-p", "APP=whiteboard", "-p", "IMAGE=x@sha256:1", "platform/promote")
	if err != nil || !strings.Contains(out, "Finished: SUCCESS") || !strings.Contains(errOut, "platform/promote #1 finished: SUCCESS") {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if _, _, err = runApp(t, "jenkins", "run", "-p", "novalue", "platform/promote"); exitCode(err) != 2 {
		t.Errorf("bad --param: %v (exit %d), want exit 2", err, exitCode(err))
	}

	t.Setenv("JENKINS_API_TOKEN", "wrong")
	if _, _, err = runApp(t, "jenkins", "seed", "-f", jobs); err == nil || !strings.Contains(err.Error(), "HTTP 401") || exitCode(err) != 1 {
		t.Errorf("wrong token: %v", err)
	}
	os.Unsetenv("JENKINS_API_TOKEN")
	if _, _, err = runApp(t, "jenkins", "seed", "-f", jobs); exitCode(err) != 2 || !strings.Contains(err.Error(), "--token (JENKINS_API_TOKEN)") {
		t.Errorf("no token: %v", err)
	}
}
