package main

import (
	"context"
	"strings"

	"github.com/urfave/cli/v2"
)

// runCLI runs the app on argv as a user typed it. main and the tests go
// through it, so every command parses the same way.
func runCLI(ctx context.Context, app *cli.App, argv []string) error {
	return app.RunContext(ctx, flagsFirst(app, argv))
}

// flagsFirst lets flags follow positional arguments, as kubectl and helm
// users (and the shared library's tsysPromote) type them: urfave/cli v2 stops
// reading flags at the first positional argument, so the leaf command's
// arguments are reordered to its flags (each with its value) first, then
// "--", then the positional arguments. Which flags take a value comes from
// the command's own flag declarations; a flag it does not declare stays a
// flag, so the parser still refuses it by name. "--" ends the flags as
// before: everything after it stays positional.
func flagsFirst(app *cli.App, argv []string) []string {
	if len(argv) < 2 {
		return argv
	}
	out := []string{argv[0]}
	rest := argv[1:]
	// Shell completion asks with a trailing flag urfave looks for at the end.
	var completion []string
	if app.EnableBashCompletion && rest[len(rest)-1] == "--"+cli.BashCompletionFlag.Names()[0] {
		completion, rest = rest[len(rest)-1:], rest[:len(rest)-1]
	}
	cmds := app.Commands
	for {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			// Flags of a command group (--help) or nothing: as typed.
			return append(append(out, rest...), completion...)
		}
		cmd := findCommand(cmds, rest[0])
		if cmd == nil {
			return append(append(out, rest...), completion...)
		}
		out, rest = append(out, rest[0]), rest[1:]
		if isLeaf(cmd) {
			return append(append(out, reorder(cmd.Flags, rest)...), completion...)
		}
		cmds = cmd.Subcommands
	}
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// isLeaf: a command without subcommands of its own (urfave adds "help" to
// every command when it runs).
func isLeaf(cmd *cli.Command) bool {
	for _, s := range cmd.Subcommands {
		if s.Name != "help" {
			return false
		}
	}
	return true
}

// reorder moves flags (and the values of those that take one) before the
// positional arguments.
func reorder(flags []cli.Flag, args []string) []string {
	takesValue := map[string]bool{}
	for _, f := range append(flags, cli.HelpFlag) {
		v := false
		if d, ok := f.(cli.DocGenerationFlag); ok {
			v = d.TakesValue()
		}
		for _, n := range f.Names() {
			takesValue[n] = v
		}
	}
	var flagArgs, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case len(a) > 1 && a[0] == '-':
			flagArgs = append(flagArgs, a)
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if !hasValue && takesValue[name] && i+1 < len(args) {
				i++
				flagArgs = append(flagArgs, args[i])
			}
		default:
			positional = append(positional, a)
		}
	}
	if len(positional) == 0 {
		return flagArgs
	}
	return append(append(flagArgs, "--"), positional...)
}

// noArgs is the Before of a command that takes no positional arguments; hint
// says what to use instead.
func noArgs(hint string) cli.BeforeFunc {
	return func(c *cli.Context) error {
		if c.Args().Present() {
			return usageErrorf("%s takes no arguments; got %q%s", c.Command.HelpName, c.Args().Slice(), hint)
		}
		return nil
	}
}

// oneArg is the Before of a command that takes exactly one positional
// argument, described by what.
func oneArg(what string) cli.BeforeFunc {
	return func(c *cli.Context) error {
		if c.NArg() != 1 {
			return usageErrorf("%s takes one argument, %s; got %q", c.Command.HelpName, what, c.Args().Slice())
		}
		return nil
	}
}
