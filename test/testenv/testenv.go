// Package testenv decides what a test does when an outside program it needs
// (slapd, haproxy, groovy, cosign, docker) is missing, and holds the small
// helpers every test package would otherwise write again: a locked buffer
// (SyncBuffer), a poll with a deadline (Eventually), a free loopback port
// (FreePort) and the repository's top folder (RepoRoot). It imports only the
// standard library, so any test or fixture package can use it.
//
// On a developer's machine such a test skips with the reason. Under `make
// test` (TSYS_CI_REQUIRE_TOOLS=1) it fails instead: the dependency script
// installs every tool the tests use, so a missing one there is a broken
// setup, and a test that quietly skips in CI proves nothing. Under -short
// (`make test-unit`) every such test skips, installed or not.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireEnv is the variable `make test` sets to turn skips into failures.
const RequireEnv = "TSYS_CI_REQUIRE_TOOLS"

// Required reports whether missing tools fail tests instead of skipping them.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// LookPath returns the path of program, or stops the test: a skip on a
// developer's machine, a failure under `make test`. Under -short (`make
// test-unit`, the quick run) it skips even when the program is installed:
// a test that needs an outside program is an integration test.
func LookPath(t testing.TB, program string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs " + program + ": skipped under -short")
	}
	path, err := exec.LookPath(program)
	if err != nil {
		Missing(t, program+" is not installed (scripts/deps.sh installs it)")
	}
	return path
}

// Missing stops the test because something outside it is absent: a skip,
// or a failure under `make test` unless -short asked for the quick run.
func Missing(t testing.TB, why string) {
	t.Helper()
	if Required() && !testing.Short() {
		t.Fatalf("%s; %s=1 so this fails instead of skipping", why, RequireEnv)
	}
	t.Skip(why)
}
