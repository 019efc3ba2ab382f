package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/pipeline"
	"github.com/tsys-group/tsys-ci/registry"
)

func buildCommand() *cli.Command {
	var entrypoint, cmd, env, port, label repeatable
	return &cli.Command{
		Name:      "build",
		Usage:     "build an OCI image from a base image and the app's files, without a Docker daemon",
		UsageText: "tsys-ci build --base REF|scratch [--context DIR] [--workdir /app] [--entrypoint X]... [--port N]... [--out DIR]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "context", Value: ".", Usage: "folder whose files become one layer under --workdir"},
			&cli.StringFlag{Name: "base", Usage: "base image reference, or 'scratch' (required)"},
			&cli.StringFlag{Name: "platform", Value: "linux/" + runtime.GOARCH, Usage: "OS/ARCH[/VARIANT] of the image"},
			&cli.StringFlag{Name: "workdir", Value: "/app", Usage: "where the files go, and the working directory"},
			&cli.GenericFlag{Name: "entrypoint", Value: &entrypoint, Usage: "entrypoint argument (repeat for each argv element)"},
			&cli.GenericFlag{Name: "cmd", Value: &cmd, Usage: "command argument (repeat for each argv element)"},
			&cli.GenericFlag{Name: "env", Value: &env, Usage: "environment variable K=V (repeatable)"},
			&cli.StringFlag{Name: "user", Usage: "UID[:GID] the container runs as"},
			&cli.GenericFlag{Name: "port", Value: &port, Usage: "exposed port N[/tcp|/udp] (repeatable)"},
			&cli.GenericFlag{Name: "label", Value: &label, Usage: "extra image label K=V (repeatable)"},
			&cli.StringFlag{Name: "commit", Usage: "source commit (default $GIT_COMMIT, else git HEAD)"},
			&cli.StringFlag{Name: "branch", Usage: "branch (default $BRANCH_NAME or $GIT_BRANCH)"},
			&cli.StringFlag{Name: "build-number", Usage: "build number (default $BUILD_NUMBER)"},
			&cli.StringFlag{Name: "job", Usage: "job name (default $JOB_NAME)"},
			&cli.StringFlag{Name: "build-time", Usage: "RFC 3339 build time (default $SOURCE_DATE_EPOCH, else the commit's time)"},
			&cli.StringFlag{Name: "out", Value: pipeline.DefaultLayout, Usage: "OCI image layout written here"},
			&cli.StringFlag{Name: "result", Value: pipeline.DefaultBuildResult, Usage: "JSON result written here"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return cli.Exit(fmt.Sprintf("tsys-ci build takes no arguments, got %q; use --context DIR", c.Args().Slice()), 2)
			}
			pc, err := pipeline.FromEnv(os.Getenv)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			for flag, dst := range map[string]*string{"commit": &pc.Commit, "branch": &pc.Branch, "build-number": &pc.BuildNumber, "job": &pc.Job} {
				if c.IsSet(flag) {
					*dst = c.String(flag)
				}
			}
			if s := c.String("build-time"); s != "" {
				t, err := time.Parse(time.RFC3339, s)
				if err != nil {
					return cli.Exit(fmt.Sprintf("--build-time %q is not an RFC 3339 time like 2026-01-02T15:04:05Z", s), 2)
				}
				pc.Created = t.UTC()
			}
			pipeline.FillFromGit(c.Context, c.String("context"), &pc)
			if pc.Created.IsZero() {
				fmt.Fprintln(c.App.ErrWriter, "tsys-ci build: no SOURCE_DATE_EPOCH, --build-time or commit time; using 1970-01-01 so the build still reproduces")
			}
			labels := pc.Labels()
			for _, l := range label.get() {
				k, v, ok := strings.Cut(l, "=")
				if !ok || k == "" {
					return cli.Exit(fmt.Sprintf("--label %q must look like KEY=value", l), 2)
				}
				labels[k] = v
			}
			created := pc.Created
			if created.IsZero() {
				created = pipeline.Epoch
			}
			plat, err := v1.ParsePlatform(c.String("platform"))
			if err != nil || plat.OS == "" || plat.Architecture == "" {
				return cli.Exit(fmt.Sprintf("--platform %q must look like linux/amd64", c.String("platform")), 2)
			}
			res, err := registry.BuildToLayout(c.Context, registry.BuildOptions{
				Context: c.String("context"), Base: c.String("base"), Platform: *plat,
				Workdir: c.String("workdir"), Entrypoint: entrypoint.get(), Cmd: cmd.get(),
				Env: env.get(), User: c.String("user"), Ports: port.get(), Labels: labels,
				Created: created,
				Remote:  []remote.Option{remote.WithAuthFromKeychain(registry.Credentials(os.Getenv))},
			}, c.String("out"))
			if err != nil {
				return exitFor(err)
			}
			if err := pipeline.WriteJSON(c.String("result"), res); err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "tsys-ci build: wrote %s to %s and %s\n", res.Digest, res.Layout, c.String("result"))
			fmt.Fprintln(c.App.Writer, res.Digest)
			return nil
		},
	}
}

// exitFor gives bad input exit code 2 and every other error 1.
func exitFor(err error) error {
	if registry.IsUsage(err) {
		return cli.Exit(err.Error(), 2)
	}
	return err
}
