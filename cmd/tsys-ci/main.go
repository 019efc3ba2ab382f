// Command tsys-ci is the pipeline toolkit and runtime layer of the TSYS web
// application platform: one binary for Jenkins stages, Harbor webhooks and
// developers' own machines.
//
// This file only wires commands together; each command lives in its own file
// next to it and calls into the packages that do the work.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		// urfave/cli has already printed usage errors; everything else is
		// printed here once, prefixed so it stands out in a Jenkins console.
		fmt.Fprintf(os.Stderr, "tsys-ci: error: %v\n", err)
		os.Exit(exitCode(err))
	}
}

// newApp builds the command tree. Tests call it to run commands in-process.
func newApp() *cli.App {
	return &cli.App{
		Name:                 "tsys-ci",
		Usage:                "build, push and promote web applications on the TSYS platform",
		Version:              version,
		EnableBashCompletion: true,
		Commands: []*cli.Command{
			versionCommand(),
			buildCommand(),
			pushCommand(),
			platformCommand(),
			signCommand(),
			verifyCommand(),
			registryCommand(),
			jenkinsCommand(),
			promoteCommand(), statusCommand(), abortCommand(),
			edgeCommand(),
			serveCommand(),
		},
		// Errors are printed once by main, not again by the library.
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return cli.Exit(fmt.Sprintf("unknown command %q; run 'tsys-ci --help' for the list", c.Args().First()), 2)
			}
			return cli.ShowAppHelp(c)
		},
	}
}

// exitCode keeps the codes a command chose (cli.Exit) and maps every other
// error to 1, so a Jenkins stage fails on any error.
func exitCode(err error) int {
	if coder, ok := err.(cli.ExitCoder); ok && coder.ExitCode() != 0 {
		return coder.ExitCode()
	}
	return 1
}
