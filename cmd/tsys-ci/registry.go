package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tsys-group/tsys-ci/registry"
	"github.com/urfave/cli/v2"
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
			"   (admin login from TSYS_CI_HARBOR_USERNAME / TSYS_CI_HARBOR_PASSWORD)",
		Flags: append(harborFlags(),
			&cli.StringFlag{Name: "project", Usage: "Harbor project (required)"},
			&cli.BoolFlag{Name: "public", Usage: "make a new project public (anyone may pull)"},
			&cli.StringFlag{Name: "robot", Value: "ci", Usage: "robot account name (Harbor shows robot$PROJECT+NAME)"},
			&cli.StringFlag{Name: "robot-secret-file", Value: ".tsys-ci/harbor-robot.json", Usage: "where a new robot's name and secret are written (mode 0600)"},
			&cli.StringFlag{Name: "webhook-url", Usage: "tsys-ci serve's webhook URL; Harbor posts PUSH_ARTIFACT there"},
			&cli.StringFlag{Name: "webhook-auth-header", EnvVars: []string{"TSYS_CI_WEBHOOK_AUTH_HEADER"}, Usage: "Authorization header Harbor sends with webhooks, e.g. 'Bearer TOKEN'"},
			&cli.IntFlag{Name: "keep", Value: 10, Usage: "tag retention: keep this many most recently pushed artifacts per repository (0: no rule)"},
			&cli.StringFlag{Name: "retention-cron", Value: "0 0 3 * * *", Usage: "when Harbor runs tag retention (six-field cron)"},
		),
		Action: func(c *cli.Context) error {
			if c.String("harbor") == "" || c.String("project") == "" {
				return cli.Exit("--harbor and --project are required", 2)
			}
			h, err := registry.NewHarbor(c.String("harbor"), c.String("harbor-username"), c.String("harbor-password"), nil)
			if err != nil {
				return exitFor(err)
			}
			res, err := h.Setup(c.Context, registry.SetupOptions{
				Project: c.String("project"), Public: c.Bool("public"), Robot: c.String("robot"),
				WebhookURL: c.String("webhook-url"), WebhookAuthHeader: c.String("webhook-auth-header"),
				KeepLatest: c.Int("keep"), RetentionCron: c.String("retention-cron"),
			})
			if err != nil {
				return exitFor(err)
			}
			if res.RobotSecret != "" {
				file := c.String("robot-secret-file")
				if err := writeSecret(file, res.RobotName, res.RobotSecret); err != nil {
					return fmt.Errorf("robot %s was created, but its secret could not be saved: %w; refresh it in Harbor", res.RobotName, err)
				}
				res.Changes = append(res.Changes, "wrote the robot's name and secret to "+file+" (Harbor shows the secret only once)")
			}
			if len(res.Changes) == 0 {
				fmt.Fprintf(c.App.Writer, "Harbor %s: project %s is set up; nothing changed\n", c.String("harbor"), c.String("project"))
				return nil
			}
			for _, ch := range res.Changes {
				fmt.Fprintln(c.App.Writer, ch)
			}
			return nil
		},
	}
}

// writeSecret stores a robot's login for Jenkins' credentials store,
// readable by its owner only from the first byte on.
func writeSecret(file, name, secret string) error {
	b, err := json.MarshalIndent(map[string]string{"username": name, "password": secret}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
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
		Action: func(c *cli.Context) error {
			if err := registry.CheckLoopback(c.String("addr")); err != nil {
				return exitFor(err)
			}
			e, err := registry.OpenEmbedded(c.String("data"), nil)
			if err != nil {
				return err
			}
			defer e.Close()
			l, err := net.Listen("tcp", c.String("addr"))
			if err != nil {
				return fmt.Errorf("listening on %s: %w; is another registry running there? pass --addr", c.String("addr"), err)
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv := &http.Server{Handler: e, ReadHeaderTimeout: 30 * time.Second}
			go func() {
				<-ctx.Done()
				shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				srv.Shutdown(shutdown)
			}()
			fmt.Fprintf(c.App.ErrWriter, "tsys-ci registry serve: embedded registry on http://%s, data in %s (Ctrl-C stops it)\n", l.Addr(), c.String("data"))
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serving the embedded registry: %w", err)
			}
			return nil
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
