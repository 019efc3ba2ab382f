package jenkins

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// notYetAvailable lists the tsys-ci commands the shared library calls that
// other areas have not landed in this repository yet (none today: build,
// push and promote have all landed), and notYetAvailableFlags the contract's flags of landed commands
// that are still missing (none today; push's --harbor, --sign and --key
// were, until they landed).
// Their use is checked against the contract by recording the command lines
// (TestContractFlagsOfRecordedCommands). The test below fails as soon as a
// listed command or flag exists, so the lists cannot go stale: take it off
// and it is checked against the command's --help like the rest.
var (
	notYetAvailable      = []string{}
	notYetAvailableFlags = map[string][]string{}
)

var (
	commandOf = regexp.MustCompile(`List cli = \['([a-z][a-z-]*)'`)
	flagLit   = regexp.MustCompile(`'(--[a-z][a-z-]*)'`)
)

// TestTemplatesCallOnlyExistingTsysCiFlags reads every step of the shared
// library, finds the tsys-ci command it runs and every --flag it passes,
// and checks each against `tsys-ci COMMAND --help` of the binary built
// from this repository.
func TestTemplatesCallOnlyExistingTsysCiFlags(t *testing.T) {
	steps, err := filepath.Glob("shared-library/vars/*.groovy")
	if err != nil || len(steps) == 0 {
		t.Fatalf("no steps in shared-library/vars: %v", err)
	}
	used := map[string][]string{} // command -> flags
	for _, path := range steps {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m := commandOf.FindStringSubmatch(string(src))
		if m == nil {
			t.Errorf("%s: no `List cli = ['COMMAND', ...]`: every step runs one tsys-ci command", path)
			continue
		}
		for _, f := range flagLit.FindAllStringSubmatch(string(src), -1) {
			if !slices.Contains(used[m[1]], f[1]) {
				used[m[1]] = append(used[m[1]], f[1])
			}
		}
		if _, err := os.Stat(strings.TrimSuffix(path, ".groovy") + ".txt"); err != nil {
			t.Errorf("%s has no help file (%s.txt) for Jenkins' snippet generator", path, strings.TrimSuffix(filepath.Base(path), ".groovy"))
		}
	}
	for _, command := range notYetAvailable {
		if _, ok := used[command]; !ok {
			t.Errorf("notYetAvailable lists %s, which no step calls: take it off", command)
		}
	}
	for command, flags := range used {
		exists, help := hasCommand(t, command)
		if slices.Contains(notYetAvailable, command) {
			if exists {
				t.Errorf("tsys-ci %s exists now: take it off notYetAvailable in contract_test.go so its flags %v are checked against its --help", command, flags)
			}
			continue
		}
		if !exists {
			t.Errorf("the shared library calls tsys-ci %s, which this repository's binary does not have:\n%s", command, help)
			continue
		}
		for _, f := range flags {
			listed := regexp.MustCompile(`\n\s+` + regexp.QuoteMeta(f) + `[\s,]`).MatchString(help)
			pending := slices.Contains(notYetAvailableFlags[command], f)
			switch {
			case pending && listed:
				t.Errorf("tsys-ci %s %s exists now: take it off notYetAvailableFlags in contract_test.go", command, f)
			case !pending && !listed:
				t.Errorf("the shared library passes %s to tsys-ci %s, which its --help does not list:\n%s", f, command, help)
			}
		}
	}
}

// TestContractFlagsOfRecordedCommands checks the recorded command lines
// of commands not yet available against the flags the contract between
// areas (shared helpers-contract) names for them, so the library and the
// contract cannot drift apart while the commands are being written.
func TestContractFlagsOfRecordedCommands(t *testing.T) {
	contract := map[string][]string{
		"build":   {"--context", "--base", "--workdir", "--entrypoint", "--cmd", "--env", "--user", "--port", "--label", "--commit", "--branch", "--build-number", "--job", "--build-time", "--out", "--result"},
		"push":    {"--from", "--repository", "--tag", "--harbor", "--sign", "--key", "--result"},
		"promote": {"--image", "--from", "--spec", "--strategy", "--verify-key", "--allow-unsigned", "--report"},
	}
	for _, name := range []string{"jenkinsfile-main", "quoting", "promote-rollback", "promote-error", "unsigned-push"} {
		for _, sh := range outcomeOf(t, name).steps("sh") {
			args := argv(t, sh)
			for _, a := range args[1:] {
				if strings.HasPrefix(a, "--") && !slices.Contains(contract[args[0]], a) {
					t.Errorf("%s: tsys-ci %s %s is not in the contract", name, args[0], a)
				}
			}
		}
	}
}
