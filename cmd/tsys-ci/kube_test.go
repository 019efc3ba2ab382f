package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeAPIServer answers every request 404 (a Kubernetes Status), so
// `status` reports "never promoted", and records who asked for what.
func fakeAPIServer(t *testing.T) (url string, seen func() []string) {
	t.Helper()
	var mu sync.Mutex
	var reqs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reqs = append(reqs, r.UserAgent()+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), reqs...)
	}
}

func writeFile(t *testing.T, path, data string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKubeconfigListIsMerged: KUBECONFIG=a:b is a list merged as kubectl
// merges it (here the cluster and user in a, the context in b); it used to
// fail with `stat a:b` on promote, status, abort and serve. Flags may come
// after the app's name, and the request says it comes from tsys-ci/VERSION.
func TestKubeconfigListIsMerged(t *testing.T) {
	url, seen := fakeAPIServer(t)
	dir := t.TempDir()
	a := writeFile(t, filepath.Join(dir, "a"), `apiVersion: v1
kind: Config
clusters: [{name: lab, cluster: {server: "`+url+`"}}]
users: [{name: u, user: {token: t}}]
`)
	b := writeFile(t, filepath.Join(dir, "b"), `apiVersion: v1
kind: Config
contexts: [{name: lab, context: {cluster: lab, user: u}}]
current-context: lab
`)
	t.Setenv("KUBECONFIG", a+string(os.PathListSeparator)+b)
	out, errOut, err := runApp(t, "status", "demo", "--namespace", "demo")
	if err != nil || out != "demo: never promoted\n" {
		t.Fatalf("KUBECONFIG=a:b tsys-ci status demo --namespace demo: %v\nstdout %q\nstderr %q", err, out, errOut)
	}
	reqs := seen()
	if len(reqs) == 0 || reqs[0] != "tsys-ci/"+version+" /api/v1/namespaces/demo/configmaps/tsys-ci-demo" {
		t.Fatalf("requests %q; want one from tsys-ci/%s for the state ConfigMap in demo", reqs, version)
	}
}

// TestKubeconfigContextAndBadFile: --context picks a context of the
// kubeconfig; a kubeconfig that cannot be loaded is bad input (exit 2) on
// every command that reaches a cluster, and the message names what was tried.
func TestKubeconfigContextAndBadFile(t *testing.T) {
	url, seen := fakeAPIServer(t)
	kubeconfig := writeFile(t, filepath.Join(t.TempDir(), "kubeconfig"), `apiVersion: v1
kind: Config
clusters: [{name: lab, cluster: {server: "`+url+`"}}, {name: dead, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: lab, context: {cluster: lab, user: u}}, {name: dead, context: {cluster: dead, user: u}}]
current-context: dead
`)
	if out, _, err := runApp(t, "status", "demo", "--kubeconfig", kubeconfig, "--context", "lab"); err != nil || len(seen()) == 0 {
		t.Fatalf("status --context lab: %v (%q), %d requests to the lab server", err, out, len(seen()))
	}
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	spec := writeFile(t, filepath.Join(dir, "tsys-ci.yaml"), "name: demo\nports: [{name: http, containerPort: 8080}]\n")
	owners := writeFile(t, filepath.Join(dir, "owners.yaml"), "namespaces: {demo: {hosts: [\"*.demo.example\"]}}\n")
	envSpec := writeFile(t, filepath.Join(dir, "env.yaml"), "name: demo\nports: [{name: http, containerPort: 8080}]\nenv: [{name: TOKEN, fromEnv: DEMO_TOKEN}]\n")
	// platform plan reaches the cluster through Helm, once it has charts.
	for _, args := range [][]string{
		{"promote", "demo", "--rollback", "--spec", spec},
		{"status", "demo", "-n", "demo"},
		{"abort", "demo", "--spec", spec},
		{"secrets", "diff", "demo", "--spec", envSpec},
		{"serve", "--config", "../../pipeline/serve/testdata/serve/serve.yaml", "--allow-unsigned"},
		{"edge", "render"},
		{"edge", "sync", "--owners", owners},
		{"platform", "doctor"},
		{"platform", "apply", "-f", "../../templates/platform/platform.yaml"},
	} {
		args = append(args, "--kubeconfig", missing)
		_, _, err := runApp(t, args...)
		if err == nil || exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "loading the kubeconfig") || !strings.Contains(err.Error(), missing) {
			t.Errorf("%q: %v (exit %d); want exit 2 saying the kubeconfig %s could not be loaded", args, err, exitCode(err), missing)
		}
	}
}
