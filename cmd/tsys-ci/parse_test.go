package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// parsed is what the parser made of one command line: the command, the
// flags that were set (with their values) and the positional arguments.
type parsed struct {
	command string
	flags   []string
	args    []string
}

func (p parsed) String() string {
	return fmt.Sprintf("%s flags=%q args=%q", p.command, p.flags, p.args)
}

// parseOnly returns newApp() with every command's Action replaced by one
// that records what was parsed, so a command line goes through the real
// parser, the real argument checks (Before) and nothing else.
func parseOnly(got *parsed) *cli.App {
	app := newApp()
	app.Writer, app.ErrWriter = &strings.Builder{}, &strings.Builder{}
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, cmd := range cmds {
			if len(cmd.Subcommands) > 0 {
				walk(cmd.Subcommands)
				continue
			}
			cmd.Action = func(c *cli.Context) error {
				*got = parsed{command: c.Command.HelpName, args: c.Args().Slice()}
				for _, f := range c.Command.Flags {
					name := f.Names()[0]
					if !c.IsSet(name) {
						continue
					}
					var v any
					switch f.(type) {
					case *cli.GenericFlag:
						v = c.Generic(name)
					case *cli.StringSliceFlag:
						v = c.StringSlice(name)
					case *cli.IntSliceFlag:
						v = c.IntSlice(name)
					default:
						v = c.Value(name)
					}
					got.flags = append(got.flags, fmt.Sprintf("%s=%v", name, v))
				}
				slices.Sort(got.flags)
				return nil
			}
		}
	}
	walk(app.Commands)
	return app
}

// parse runs one command line (without the leading "tsys-ci") through
// parseOnly.
func parse(args ...string) (parsed, error) {
	var got parsed
	err := runCLI(context.Background(), parseOnly(&got), append([]string{"tsys-ci"}, args...))
	return got, err
}

// TestFlagsAfterArguments: flags may come before or after the positional
// arguments, as kubectl and helm users type them, on every command. The
// shared library's tsysPromote puts the app first; so do the docs.
func TestFlagsAfterArguments(t *testing.T) {
	for _, tc := range []struct{ after, before []string }{
		// tsysPromote.groovy's order, with every flag it may add.
		{
			[]string{"promote", "whiteboard", "--from", ".tsys-ci/push.json", "--verify-key", "k.pub", "--report", "r.xml"},
			[]string{"promote", "--from", ".tsys-ci/push.json", "--verify-key", "k.pub", "--report", "r.xml", "whiteboard"},
		},
		{
			[]string{"promote", "whiteboard", "--image", "reg/w@sha256:1", "--spec", "s.yaml", "--strategy", "canary", "--allow-unsigned", "--report", "r.xml"},
			[]string{"promote", "--image", "reg/w@sha256:1", "--spec", "s.yaml", "--strategy", "canary", "--allow-unsigned", "--report", "r.xml", "whiteboard"},
		},
		// --flag=value, short aliases, bool flags between arguments.
		{[]string{"promote", "shop", "--from=p.json", "--allow-unsigned", "-o", "json"}, []string{"promote", "--from", "p.json", "--allow-unsigned", "--output=json", "shop"}},
		{[]string{"promote", "--rollback", "shop"}, []string{"promote", "shop", "--rollback"}},
		{[]string{"status", "shop", "--namespace", "demo"}, []string{"status", "-n", "demo", "shop"}},
		{[]string{"status", "shop", "-n=demo", "-o", "json"}, []string{"status", "--namespace", "demo", "--output", "json", "shop"}},
		{[]string{"abort", "shop", "--spec", "s.yaml"}, []string{"abort", "--spec", "s.yaml", "shop"}},
		{[]string{"sign", "reg/shop:v1", "--key", "k"}, []string{"sign", "--key", "k", "reg/shop:v1"}},
		{[]string{"verify", "reg/shop:v1", "--key", "k.pub"}, []string{"verify", "--key", "k.pub", "reg/shop:v1"}},
		{[]string{"jenkins", "run", "platform/promote", "-p", "APP=w", "--timeout", "5m"}, []string{"jenkins", "run", "--timeout", "5m", "-p", "APP=w", "platform/promote"}},
		// A value that looks like a flag still belongs to the flag before it.
		{[]string{"promote", "shop", "--revision", "-x", "--allow-unsigned"}, []string{"promote", "--revision=-x", "--allow-unsigned", "shop"}},
	} {
		after, errA := parse(tc.after...)
		before, errB := parse(tc.before...)
		if errA != nil || errB != nil {
			t.Errorf("%q: %v\n%q: %v", tc.after, errA, tc.before, errB)
			continue
		}
		if after.String() != before.String() {
			t.Errorf("flags after the arguments parse differently:\n%q\n  -> %s\n%q\n  -> %s", tc.after, after, tc.before, before)
		}
	}
}

// TestDoubleDashEndsFlags: after "--" nothing is a flag, as with kubectl.
func TestDoubleDashEndsFlags(t *testing.T) {
	got, err := parse("promote", "--allow-unsigned", "--", "--rollback")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.args, []string{"--rollback"}) || slices.Contains(got.flags, "rollback=true") {
		t.Fatalf("promote --allow-unsigned -- --rollback: %s; want --rollback as the app's name", got)
	}
}

// TestUnknownFlagAfterArgumentsIsRefused: moving flags must not hide a
// typo behind a positional argument.
func TestUnknownFlagAfterArgumentsIsRefused(t *testing.T) {
	_, err := parse("promote", "shop", "--no-such-flag", "x")
	if err == nil || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("promote shop --no-such-flag x: %v, want an error naming the flag", err)
	}
}

// FuzzFlagsFirst: reordering never loses, adds or changes an argument
// (other than "--"), and never panics, whatever a user or a script types.
func FuzzFlagsFirst(f *testing.F) {
	f.Add("promote whiteboard --from x --verify-key k --report r")
	f.Add("status shop -n=demo -o json -- --x")
	f.Add("edge sync --watch --haproxy-config a --haproxy-config b -")
	f.Add("platform doctor --snapshot")
	f.Add("-- promote")
	app := newApp()
	f.Fuzz(func(t *testing.T, line string) {
		argv := append([]string{"tsys-ci"}, strings.Fields(line)...)
		got := flagsFirst(app, argv)
		count := map[string]int{}
		for _, a := range argv {
			if a != "--" {
				count[a]++
			}
		}
		for _, a := range got {
			if a != "--" {
				count[a]--
			}
		}
		for a, n := range count {
			if n != 0 {
				t.Fatalf("flagsFirst(%q) = %q: %q appears %d times more in the input", argv, got, a, n)
			}
		}
		if got[0] != "tsys-ci" {
			t.Fatalf("flagsFirst(%q) = %q: the program name moved", argv, got)
		}
	})
}
