package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEdgeRenderNeedsAKubeconfig(t *testing.T) {
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	err := runCLI(context.Background(), app, []string{"tsys-ci", "edge", "render", "--kubeconfig", filepath.Join(t.TempDir(), "missing")})
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "loading the kubeconfig") {
		t.Fatalf("edge render with a missing kubeconfig = %v (exit %d); want exit 2 saying the kubeconfig could not be loaded", err, exitCode(err))
	}
}

func TestEdgeRenderSaysWhichServerItCouldNotReach(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	// Port 1 on loopback: nothing listens there, the connection is refused.
	cfg := `apiVersion: v1
kind: Config
clusters: [{name: lab, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: lab, context: {cluster: lab, user: u}}]
current-context: lab
`
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	err := runCLI(context.Background(), app, []string{"tsys-ci", "edge", "render", "--kubeconfig", kubeconfig, "-o", t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "listing Services labelled app.kubernetes.io/managed-by=tsys-ci") {
		t.Fatalf("edge render against a dead API server = %v; want an error naming what it listed and where", err)
	}
}

// TestEdgeSyncNeedsAnOwnersFile (issue 17, finding 6): sync installs
// routes, so it refuses to run without the file that says which namespace
// may claim which host names and ports, and says what to add; a broken
// owners file is bad input too.
func TestEdgeSyncNeedsAnOwnersFile(t *testing.T) {
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run([]string{"tsys-ci", "edge", "sync", "--kubeconfig", filepath.Join(t.TempDir(), "missing")})
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "--owners FILE is required") || !strings.Contains(err.Error(), "namespaces:") {
		t.Fatalf("edge sync without --owners = %v (exit %d); want exit 2 saying what to add", err, exitCode(err))
	}
	owners := filepath.Join(t.TempDir(), "owners.yaml")
	os.WriteFile(owners, []byte("namespaces: {shop: {hosts: [\"*\"]}}\n"), 0o644)
	err = app.Run([]string{"tsys-ci", "edge", "sync", "--owners", owners, "--kubeconfig", filepath.Join(t.TempDir(), "missing")})
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), owners) || !strings.Contains(err.Error(), `host "*"`) {
		t.Fatalf("edge sync with a broken owners file = %v (exit %d); want exit 2 naming the file and the entry", err, exitCode(err))
	}
}
