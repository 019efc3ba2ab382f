// Command tsys-ci is the pipeline toolkit and runtime layer of the TSYS web
// application platform: one binary for Jenkins stages, Harbor webhooks and
// developers' own machines.
//
// This file only wires commands together; each command lives in its own file
// next to it and calls into the packages that do the work.
package main

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/urfave/cli/v2"
)

func main() {
	if err := runCLI(context.Background(), newApp(), os.Args); err != nil {
		// Every error, usage errors included, is printed here once,
		// prefixed so it stands out in a Jenkins console.
		fmt.Fprintf(os.Stderr, "tsys-ci: error: %v\n", err)
		os.Exit(exitCode(err))
	}
}

// The groups `tsys-ci --help` lists the commands in.
const (
	categoryPipeline = "pipeline steps"
	categoryRuntime  = "runtime"
	categoryPlatform = "platform"
	categoryJenkins  = "Jenkins"
	categoryRegistry = "registry"
)

// newApp builds the command tree. Tests call it (through runCLI) to run
// commands in-process.
func newApp() *cli.App {
	app := &cli.App{
		Name:                 "tsys-ci",
		Usage:                "build, push and promote web applications on the TSYS platform",
		Version:              version,
		EnableBashCompletion: true,
		Commands: slices.Concat(
			inCategory(categoryPipeline, buildCommand(), pushCommand(), signCommand(), verifyCommand(),
				promoteCommand(), statusCommand(), approveCommand(), abortCommand(), deleteCommand(), secretsCommand()),
			inCategory(categoryRuntime, serveCommand(), edgeCommand()),
			inCategory(categoryPlatform, platformCommand()),
			inCategory(categoryJenkins, jenkinsCommand()),
			inCategory(categoryRegistry, registryCommand()),
			[]*cli.Command{versionCommand()},
		),
		// Errors are printed once by main, not again by the library.
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageErrorf("unknown command %q; run 'tsys-ci --help' for the list", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
	}
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
		return usageErrorf("%v; see 'tsys-ci --help'", err)
	}
	onUsageError(app.Commands)
	return app
}

// inCategory puts commands under one heading of `tsys-ci --help`.
func inCategory(category string, cmds ...*cli.Command) []*cli.Command {
	for _, c := range cmds {
		c.Category = category
	}
	return cmds
}

// onUsageError makes a command line the parser refuses (an unknown flag, a
// flag without its value) bad input, exit 2, said once by main.
func onUsageError(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = func(c *cli.Context, err error, _ bool) error {
			return usageErrorf("%v; see '%s --help'", err, c.Command.HelpName)
		}
		onUsageError(c.Subcommands)
	}
}
