package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// cosignPassword protects the demo's throw-away signing key (.lab/demo).
const cosignPassword = "tsys-ci-demo"

// run runs a program from the repository root with the lab's kubeconfig and
// the demo key's password; its output is kept and shown only on failure.
func (d *Demo) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = d.o.RepoRoot
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD="+cosignPassword, "CGO_ENABLED=0")
	if d.lab != nil {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+d.lab.Kubeconfig())
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), &runError{cmd: name + " " + strings.Join(args, " "), out: out.String(), err: err}
	}
	return out.String(), nil
}

type runError struct {
	cmd, out string
	err      error
}

func (e *runError) Error() string {
	return fmt.Sprintf("%s: %v\n--- its output:\n%s", e.cmd, e.err, indent(e.out))
}

func (e *runError) Unwrap() error { return e.err }

// exitCode is the exit status of a failed run, or -1.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
