package main

import "strings"

// repeatable is a flag value that may be given many times and, unlike
// cli.StringSliceFlag, never splits a value on commas: `--cmd "a,b"` is one
// argument.
type repeatable struct{ values []string }

func (r *repeatable) Set(v string) error {
	r.values = append(r.values, v)
	return nil
}

func (r *repeatable) String() string { return strings.Join(r.values, " ") }

// get returns the values given, or nil when the flag was never used (which
// is different from an empty list for --entrypoint and --cmd).
func (r *repeatable) get() []string { return r.values }
