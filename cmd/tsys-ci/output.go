package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// outputFlag is -o/--output with the formats a command offers; the first is
// the default. A format it does not offer is refused while parsing (exit 2).
func outputFlag(formats ...string) cli.Flag {
	return &cli.StringFlag{
		Name: "output", Aliases: []string{"o"}, Value: formats[0], Usage: strings.Join(formats, " or "),
		Action: func(_ *cli.Context, o string) error {
			if !slices.Contains(formats, o) {
				return usageErrorf("-o %q: use %s", o, strings.Join(formats, " or "))
			}
			return nil
		},
	}
}

// writeOutput writes v as indented JSON with -o json, else as text does.
func writeOutput(c *cli.Context, v any, text func(io.Writer) error) error {
	if c.String("output") == "json" {
		return writeJSON(c.App.Writer, v)
	}
	return text(c.App.Writer)
}

// writeJSON is the one JSON encoding of results: indented, for people and jq.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing the JSON result: %w", err)
	}
	return nil
}
