package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/pipeline"
	"github.com/tsys-group/tsys-ci/platform"
	"github.com/tsys-group/tsys-ci/registry"
)

// harborFlags are the Harbor URL and the admin login registry setup uses.
func harborFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "harbor", EnvVars: []string{"TSYS_CI_HARBOR_URL"}, Usage: "Harbor URL, e.g. https://harbor.example.com (required)"},
		&cli.StringFlag{Name: "harbor-username", EnvVars: []string{"TSYS_CI_HARBOR_USERNAME"}, Value: "admin", Usage: "Harbor admin user"},
		&cli.StringFlag{Name: "harbor-password", EnvVars: []string{"TSYS_CI_HARBOR_PASSWORD"}, Usage: "Harbor admin password (better from the environment)"},
	}
}

func registryCommand() *cli.Command {
	return &cli.Command{
		Name:  "registry",
		Usage: "set up Harbor for the pipeline, or serve the embedded registry",
		Subcommands: []*cli.Command{
			registrySetupCommand(),
			registryServeCommand(),
		},
	}
}

func registrySetupCommand() *cli.Command {
	return &cli.Command{
		Name:  "setup",
		Usage: "create or update the Harbor project, its robot account, webhook policy and tag retention; idempotent",
		UsageText: "tsys-ci registry setup --harbor URL --project P [--robot ci] [--webhook-url URL] [--keep 10]\n" +
			"   tsys-ci registry setup --platform platform.yaml --project P [--robot ci] [--keep 10]\n" +
			"   (admin login from TSYS_CI_HARBOR_USERNAME / TSYS_CI_HARBOR_PASSWORD; with --platform, Harbor's URL\n" +
			"   is https://<domains.harbor> and the webhook URL paas.serve's, unless --harbor / --webhook-url give them)",
		Flags: append(harborFlags(),
			platformFileFlag(),
			&cli.StringFlag{Name: "project", Usage: "Harbor project (required)"},
			&cli.BoolFlag{Name: "public", Usage: "make a new project public (anyone may pull)"},
			&cli.StringFlag{Name: "robot", Value: "ci", Usage: "robot account name (Harbor shows robot$PROJECT+NAME)"},
			&cli.StringFlag{Name: "robot-secret-file", Value: ".tsys-ci/harbor-robot.json", Usage: "where a new robot's name and secret are written (mode 0600)"},
			&cli.StringFlag{Name: "webhook-url", Usage: "tsys-ci serve's webhook URL; Harbor posts PUSH_ARTIFACT there (default with --platform: paas.serve's; none: no webhook policy)"},
			&cli.StringFlag{Name: "webhook-secrets-dir", Value: ".tsys-ci/webhook-secrets", Usage: "where the project's webhook secret is kept, in a file named after the project (mode 0600); made when missing; give this directory to tsys-ci serve (webhookSecretsDir)"},
			&cli.StringFlag{Name: "webhook-auth-header", EnvVars: []string{"TSYS_CI_WEBHOOK_AUTH_HEADER"}, Hidden: true, Usage: "no longer taken: setup makes one secret per project"},
			&cli.IntFlag{Name: "keep", Value: 10, Usage: "tag retention: keep this many most recently pushed artifacts per repository (0: no rule)"},
			&cli.StringFlag{Name: "retention-cron", Value: "0 0 3 * * *", Usage: "when Harbor runs tag retention (six-field cron)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would change, change nothing"},
		),
		Before: noArgs(""),
		Action: runRegistrySetup,
	}
}

// registrySetupFlags is what registry setup was asked to do.
type registrySetupFlags struct {
	harbor, user, password string
	secretFile             string
	// hooksDir keeps one webhook secret per project; authHeader is the
	// old shared header, refused.
	hooksDir, authHeader string
	opts                 registry.SetupOptions
	// notes say which values came from platform.yaml (stderr).
	notes []string
}

func registrySetupFlagsFrom(c *cli.Context) registrySetupFlags {
	return registrySetupFlags{
		harbor: c.String("harbor"), user: c.String("harbor-username"), password: c.String("harbor-password"),
		secretFile: c.String("robot-secret-file"),
		hooksDir:   c.String("webhook-secrets-dir"), authHeader: c.String("webhook-auth-header"),
		opts: registry.SetupOptions{
			Project: c.String("project"), Public: c.Bool("public"), Robot: c.String("robot"),
			WebhookURL: c.String("webhook-url"),
			KeepLatest: c.Int("keep"), RetentionCron: c.String("retention-cron"), DryRun: c.Bool("dry-run"),
		},
	}
}

// withPlatform fills in what no flag gave from platform.yaml (spec, read
// from file; nil without --platform): Harbor's URL and serve's webhook URL.
func (f *registrySetupFlags) withPlatform(spec *platform.Spec, file string) {
	if spec == nil {
		return
	}
	var from bool
	if f.harbor, from = harborURLSetting.resolve(f.harbor, spec); from {
		f.notes = append(f.notes, fmt.Sprintf("Harbor %s: from %s's %s", f.harbor, file, harborURLSetting.field))
	}
	switch f.opts.WebhookURL, from = serveWebhookSetting.resolve(f.opts.WebhookURL, spec); {
	case from:
		f.notes = append(f.notes, fmt.Sprintf("webhook URL %s: tsys-ci serve's, from %s's %s", f.opts.WebhookURL, file, serveWebhookSetting.field))
	case f.opts.WebhookURL == "":
		f.notes = append(f.notes, fmt.Sprintf("%s has no paas.serve and no --webhook-url is given: no webhook policy (Harbor's pushes promote nothing)", file))
	}
}

// validate checks the flags without I/O; the values' own rules (--keep,
// names, cron) are registry.SetupOptions' to check.
func (f registrySetupFlags) validate() error {
	var missing []string
	if f.harbor == "" {
		missing = append(missing, harborURLSetting.missing())
	}
	if f.opts.Project == "" {
		missing = append(missing, "--project")
	}
	if len(missing) > 0 {
		return usageErrorf("registry setup needs %s", strings.Join(missing, ", and "))
	}
	if f.authHeader != "" {
		return usageErrorf("--webhook-auth-header is no longer taken: one header for several projects lets any of their admins deploy the others' apps; registry setup now makes a secret per project and keeps it in --webhook-secrets-dir")
	}
	return nil
}

func runRegistrySetup(c *cli.Context) error {
	f := registrySetupFlagsFrom(c)
	spec, err := loadPlatformFile(c)
	if err != nil {
		return err
	}
	f.withPlatform(spec, c.String("platform"))
	if err := f.validate(); err != nil {
		return err
	}
	for _, n := range f.notes {
		fmt.Fprintln(c.App.ErrWriter, n)
	}
	h, err := registry.NewHarbor(f.harbor, f.user, f.password, nil)
	if err != nil {
		return err
	}
	hookFile := filepath.Join(f.hooksDir, f.opts.Project)
	if f.opts.WebhookAuthHeader, err = pipeline.ReadSecretText(hookFile); err != nil {
		return err
	}
	res, err := h.Setup(c.Context, f.opts)
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(c.App.ErrWriter, "warning: "+w)
	}
	if res.RobotSecret != "" {
		if err := pipeline.WriteSecret(f.secretFile, map[string]string{"username": res.RobotName, "password": res.RobotSecret}); err != nil {
			return fmt.Errorf("robot %s was created, but its secret could not be saved: %w; refresh it in Harbor", res.RobotName, err)
		}
		res.Changes = append(res.Changes, "wrote the robot's name and secret to "+f.secretFile+" (Harbor shows the secret only once)")
	}
	if res.WebhookAuthHeader != "" {
		if err := pipeline.WriteSecretText(hookFile, res.WebhookAuthHeader); err != nil {
			return fmt.Errorf("project %s's webhook got a new secret, but it could not be saved: %w; run registry setup again to make another", f.opts.Project, err)
		}
		res.Changes = append(res.Changes, fmt.Sprintf("wrote project %s's webhook secret to %s: give it to tsys-ci serve under key %s of its webhook Secret (kubectl -n tsys-ci create secret generic tsys-ci-serve-webhook --from-file=%s), one key per project", f.opts.Project, hookFile, f.opts.Project, f.hooksDir))
	}
	if len(res.Changes) == 0 {
		fmt.Fprintf(c.App.Writer, "Harbor %s: project %s is set up; nothing changed\n", f.harbor, f.opts.Project)
		if f.opts.DryRun {
			fmt.Fprintln(c.App.ErrWriter, "(dry run: nothing would change either)")
		}
		return nil
	}
	for _, ch := range res.Changes {
		fmt.Fprintln(c.App.Writer, ch)
	}
	return nil
}

func registryServeCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "serve the embedded registry on loopback (the default when no registry is configured)",
		UsageText: "tsys-ci registry serve [--addr " + registry.EmbeddedAddr + "] [--data DIR]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: registry.EmbeddedAddr, Usage: "loopback HOST:PORT to listen on"},
			&cli.StringFlag{Name: "data", Value: defaultRegistryData(), Usage: "folder for blobs and manifests; they survive restarts"},
		},
		Before: noArgs(""),
		Action: func(c *cli.Context) error {
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			err := registry.ServeEmbedded(ctx, c.String("addr"), c.String("data"), func(a net.Addr) {
				fmt.Fprintf(c.App.ErrWriter, "tsys-ci registry serve: embedded registry on http://%s, data in %s (Ctrl-C stops it)\n", a, c.String("data"))
			})
			return err
		},
	}
}

// defaultRegistryData is $XDG_DATA_HOME/tsys-ci/registry, else
// ~/.local/share/tsys-ci/registry.
func defaultRegistryData() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "tsys-ci", "registry")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".tsys-ci", "registry")
	}
	return filepath.Join(home, ".local", "share", "tsys-ci", "registry")
}
