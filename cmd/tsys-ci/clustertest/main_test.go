// Package clustertest runs the tsys-ci binary itself against a real API
// server (test/apiserver), with the pod stand-in (test/podstandin) in
// place of the kubelet: the CLI's own path, flags, environment and exit,
// not a recorded command.
package clustertest

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tsys-group/tsys-ci/test/apiserver"
)

var (
	kubeconfig string
	tsysCI     string // the binary built from ../ for this test run
	kubectl    string // the API server's kubectl (apiserver.Server.Kubectl)
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(apiserver.RunTests(m, nil)) // says why nothing runs
	}
	dir, err := os.MkdirTemp("", "tsys-ci-cli-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "a directory for the tsys-ci binary: %v\n", err)
		os.Exit(1)
	}
	tsysCI = filepath.Join(dir, "tsys-ci")
	if out, err := exec.Command("go", "build", "-o", tsysCI, "..").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building tsys-ci: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := apiserver.RunTests(m, func(s *apiserver.Server) { kubeconfig, kubectl = s.Kubeconfig, s.Kubectl })
	_ = os.RemoveAll(dir) // a temporary directory; nothing to tell
	os.Exit(code)
}
