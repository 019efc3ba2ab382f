package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestVersionPrintsVersion(t *testing.T) {
	app := newApp()
	var out bytes.Buffer
	app.Writer = &out
	if err := runCLI(context.Background(), app, []string{"tsys-ci", "version"}); err != nil {
		t.Fatalf("tsys-ci version: %v", err)
	}
	if !strings.HasPrefix(out.String(), "tsys-ci "+version+" (go") {
		t.Fatalf("tsys-ci version printed %q, want it to start with %q", out.String(), "tsys-ci "+version+" (go")
	}
}

func TestUnknownCommandFails(t *testing.T) {
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	if err := runCLI(context.Background(), app, []string{"tsys-ci", "no-such-command"}); err == nil {
		t.Fatalf("tsys-ci no-such-command succeeded; output %q", out.String())
	}
}

func TestExitCode(t *testing.T) {
	if got := exitCode(errors.New("plain")); got != 1 {
		t.Errorf("exitCode(plain error) = %d, want 1", got)
	}
	if got := exitCode(cli.Exit("probe failed", 3)); got != 3 {
		t.Errorf("exitCode(cli.Exit(3)) = %d, want 3", got)
	}
}
