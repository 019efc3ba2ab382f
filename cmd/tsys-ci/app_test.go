package main

import (
	"bytes"
	"context"
	"testing"
)

// runApp runs tsys-ci in-process, as main would, and returns what it wrote to
// stdout and stderr and the error main would turn into an exit code.
func runApp(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err = runCLI(context.Background(), app, append([]string{"tsys-ci"}, args...))
	return out.String(), errOut.String(), err
}
