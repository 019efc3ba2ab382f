package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/rollout"
)

// The exit codes README.md documents; exitCode is the only place that
// chooses one. Commands just return errors.
const (
	exitError       = 1 // anything else went wrong
	exitBadInput    = 2 // bad usage or input: the user has something to fix
	exitProbeFailed = 3 // a promote failed its probes and was rolled back
	exitFindings    = 4 // a check (platform ldap, platform doctor) ran and found something
)

// badInput is implemented by every error that means "the user gave
// something wrong": registry.UsageError, rollout.SpecError,
// platform.ValidationError, serve.ConfigError, edge.InputError and cmd's
// own usageError.
type badInput interface{ BadInput() bool }

// exitCode maps an error returned by a command to its exit code.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var bad badInput
	if errors.As(err, &bad) && bad.BadInput() {
		return exitBadInput
	}
	var probe *rollout.ProbeFailedError
	if errors.As(err, &probe) {
		return exitProbeFailed
	}
	var found *findingsError
	if errors.As(err, &found) {
		return exitFindings
	}
	// urfave/cli's own (cli.Exit), kept for anything that still uses it.
	var coder cli.ExitCoder
	if errors.As(err, &coder) && coder.ExitCode() != 0 {
		return coder.ExitCode()
	}
	return exitError
}

// usageError is bad usage or input found in cmd itself.
type usageError struct{ err error }

func (e *usageError) Error() string  { return e.err.Error() }
func (e *usageError) Unwrap() error  { return e.err }
func (e *usageError) BadInput() bool { return true }

// usageErrorf is bad usage or input, said the way fmt.Errorf says it.
func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// asUsage marks err as the user's to fix (a file they named cannot be read,
// a flag value is wrong): exit 2. nil stays nil.
func asUsage(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err}
}

// findingsError: a check ran and found something (exit 4).
type findingsError struct{ msg string }

func (e *findingsError) Error() string { return e.msg }
