package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
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
