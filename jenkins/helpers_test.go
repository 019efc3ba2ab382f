package jenkins

import (
	"context"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/tsys-group/tsys-ci/test/jenkinsstandin"
)

// standIn starts a Jenkins stand-in with an admin and a read-only user,
// both logging in with API tokens, and connects to it as admin.
func standIn(t *testing.T, opts jenkinsstandin.Options) (*jenkinsstandin.Server, *httptest.Server, *Client) {
	t.Helper()
	opts.Users = append(opts.Users,
		jenkinsstandin.User{Name: "admin", Tokens: []string{"admin-token"}, Permissions: jenkinsstandin.PermAll},
		jenkinsstandin.User{Name: "reader", Tokens: []string{"reader-token"}, Permissions: jenkinsstandin.PermRead},
	)
	s := jenkinsstandin.New(opts)
	hs := httptest.NewServer(s)
	t.Cleanup(func() { hs.Close(); s.Close() })
	c, err := Connect(context.Background(), hs.Client(), hs.URL, "admin", "admin-token")
	if err != nil {
		t.Fatalf("connecting to the Jenkins stand-in: %v", err)
	}
	return s, hs, c
}

func exampleJobsFile(t *testing.T) *JobsFile {
	t.Helper()
	data, err := os.ReadFile("../templates/jenkins/jobs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseJobsFile(data)
	if err != nil {
		t.Fatalf("templates/jenkins/jobs.yaml: %v", err)
	}
	return f
}
