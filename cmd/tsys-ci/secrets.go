package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/rollout"
)

// secretsCommand is `tsys-ci secrets`: the app's fromEnv secrets, by name.
func secretsCommand() *cli.Command {
	return &cli.Command{
		Name:  "secrets",
		Usage: "the secrets an app's spec reads from promote's environment (fromEnv), by name only",
		Subcommands: []*cli.Command{{
			Name:      "diff",
			Usage:     "which fromEnv keys differ between the live release's Secret and this environment (names only; exit 2 when one is unset)",
			UsageText: "tsys-ci secrets diff APP [--spec tsys-ci.yaml] [-o json]",
			Flags:     appFlags(),
			Before:    oneArg("the app's name"),
			Action:    runSecretsDiff,
		}},
	}
}

func runSecretsDiff(c *cli.Context) error {
	spec, err := loadAppSpec(c.Args().First(), c.String("spec"))
	if err != nil {
		return err
	}
	if !rollout.HasFromEnv(spec) {
		return usageErrorf("%s reads no variable from the environment (no env entry with fromEnv); nothing to compare", c.String("spec"))
	}
	_, cs, err := kubeConnect(c)
	if err != nil {
		return err
	}
	d, err := rollout.DiffSecrets(c.Context, cs, spec, os.LookupEnv)
	if err != nil {
		return err
	}
	if err := writeOutput(c, d, func(w io.Writer) error {
		printSecretsDiff(w, d)
		return nil
	}); err != nil {
		return err
	}
	// An unset variable would refuse the promote: say so the same way.
	_, err = rollout.EnvSecretData(spec, os.LookupEnv)
	return err
}

func printSecretsDiff(w io.Writer, d *rollout.SecretsDiff) {
	live := d.Live
	if live == "" {
		live = "none"
	}
	verdict := "a promote from this environment keeps the live values"
	switch {
	case d.Next == "":
		verdict = "a promote from this environment would be refused: a variable is unset"
	case d.Differs:
		verdict = "a promote from this environment makes a new Secret, " + d.Next
	}
	fmt.Fprintf(w, "%s: live Secret %s; %s\n", d.App, live, verdict)
	for _, k := range d.Keys {
		from := ""
		if k.FromEnv != "" {
			from = " (from $" + k.FromEnv + ")"
		}
		fmt.Fprintf(w, "  %-8s %s%s\n", k.State, k.Key, from)
	}
}
