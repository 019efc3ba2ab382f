package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/platform"
	"github.com/tsys-group/tsys-ci/platform/edge"
	"github.com/tsys-group/tsys-ci/registry"
	"github.com/tsys-group/tsys-ci/rollout"
)

// checkValidate runs one validate() case: want "" means valid, else an
// error of exit code 2 containing want.
func checkValidate(t *testing.T, name string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: %v, want it valid", name, err)
	case want != "" && (err == nil || exitCode(err) != exitBadInput || !strings.Contains(err.Error(), want)):
		t.Errorf("%s: %v (exit %d), want exit 2 saying %q", name, err, exitCode(err), want)
	}
}

func TestPromoteFlagsValidate(t *testing.T) {
	key := imagePolicy{verifyKey: "k.pub"}
	for _, tc := range []struct {
		name string
		f    promoteFlags
		want string
	}{
		{"from, signed", promoteFlags{from: "push.json", policy: key}, ""},
		{"image, unsigned", promoteFlags{image: "r/a@sha256:1", policy: imagePolicy{allowUnsigned: true}}, ""},
		{"rollback alone", promoteFlags{rollback: true}, ""},
		{"nothing to promote", promoteFlags{policy: key}, "say what to promote"},
		{"image and from", promoteFlags{image: "a", from: "b", policy: key}, "--image or --from, not both"},
		{"both policies", promoteFlags{from: "b", policy: imagePolicy{verifyKey: "k", allowUnsigned: true}}, "--verify-key or --allow-unsigned, not both"},
	} {
		checkValidate(t, tc.name, tc.f.validate(), tc.want)
	}
}

func TestServeFlagsValidate(t *testing.T) {
	ok := serveFlags{config: "serve.yaml", policy: imagePolicy{verifyKey: "k.pub"}}
	with := func(change func(*serveFlags)) serveFlags { f := ok; change(&f); return f }
	for _, tc := range []struct {
		name string
		f    serveFlags
		want string
	}{
		{"config file, signed", ok, ""},
		{"configmap", with(func(f *serveFlags) { f.config, f.configMap = "", "tsys-ci/serve" }), ""},
		{"no cluster needs no policy", with(func(f *serveFlags) { f.policy, f.noCluster = imagePolicy{}, true }), ""},
		{"the old shared secret", with(func(f *serveFlags) { f.secretFile = "s" }), "set webhookSecretsDir in serve.yaml"},
		{"no policy", with(func(f *serveFlags) { f.policy = imagePolicy{} }), "pass --verify-key cosign.pub, or --allow-unsigned"},
		{"both policies", with(func(f *serveFlags) { f.policy.allowUnsigned = true }), "not both"},
		{"no config", with(func(f *serveFlags) { f.config = "" }), "one of --config"},
		{"both configs", with(func(f *serveFlags) { f.configMap = "a/b" }), "one of --config"},
		{"configmap without name", with(func(f *serveFlags) { f.config, f.configMap = "", "serve" }), "give NAMESPACE/NAME"},
		{"configmap without cluster", with(func(f *serveFlags) { f.config, f.configMap, f.noCluster = "", "a/b", true }), "with a cluster"},
	} {
		checkValidate(t, tc.name, tc.f.validate(), tc.want)
	}
}

func TestRegistrySetupFlagsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    registrySetupFlags
		want string
	}{
		{"harbor and project", registrySetupFlags{harbor: "https://h", opts: registry.SetupOptions{Project: "demo"}}, ""},
		{"no harbor", registrySetupFlags{opts: registry.SetupOptions{Project: "demo"}}, "needs --harbor (TSYS_CI_HARBOR_URL)"},
		{"neither", registrySetupFlags{}, "needs --harbor (TSYS_CI_HARBOR_URL) or --platform FILE (its domains.harbor), and --project"},
	} {
		checkValidate(t, tc.name, tc.f.validate(), tc.want)
	}
}

// TestExitCodes: the codes README documents, decided in one place.
func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("plain"), 1},
		{usageErrorf("bad flag"), 2},
		{fmt.Errorf("wrapped: %w", &registry.UsageError{Msg: "x"}), 2},
		{&rollout.SpecError{}, 2},
		{&platform.ValidationError{}, 2},
		{&serve.ConfigError{}, 2},
		{fmt.Errorf("rendering: %w", &edge.InputError{}), 2},
		{fmt.Errorf("promote: %w", &rollout.ProbeFailedError{}), 3},
		{&findingsError{"found"}, 4},
		{cli.Exit("kept", 3), 3},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%T %v) = %d, want %d", tc.err, tc.err, got, tc.want)
		}
	}
}

// TestNoFlagIsRequiredByUrfave: urfave/cli's Required flags fail with an
// error of its own that exits 1; a missing flag is bad usage (exit 2), so
// commands check their required flags themselves.
func TestNoFlagIsRequiredByUrfave(t *testing.T) {
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			for _, f := range c.Flags {
				if r, ok := f.(cli.RequiredFlag); ok && r.IsRequired() {
					t.Errorf("%s %s: flag %v is Required in urfave/cli (exit 1 when missing); check it in the command (usageErrorf, exit 2)", path, c.Name, f.Names())
				}
			}
			walk(path+" "+c.Name, c.Subcommands)
		}
	}
	walk("tsys-ci", newApp().Commands)
	_, _, err := runApp(t, "jenkins", "seed", "--dry-run")
	if exitCode(err) != exitBadInput || !strings.Contains(fmt.Sprint(err), "--file") {
		t.Errorf("jenkins seed without -f: %v (exit %d), want exit 2 naming --file", err, exitCode(err))
	}
}
