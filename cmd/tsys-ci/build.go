package main

import (
	"fmt"
	"os"
	"runtime"

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
			&cli.StringFlag{Name: "source", Usage: "source repository URL, for the label and the provenance (default $GIT_URL, else git's origin remote)"},
			&cli.StringFlag{Name: "build-time", Usage: "RFC 3339 build time (default $SOURCE_DATE_EPOCH, else the commit's time)"},
			&cli.StringFlag{Name: "out", Value: pipeline.DefaultLayout, Usage: "OCI image layout written here"},
			&cli.StringFlag{Name: "result", Value: pipeline.DefaultBuildResult, Usage: "JSON result written here"},
		},
		Before: noArgs("; use --context DIR"),
		Action: func(c *cli.Context) error {
			res, err := pipeline.Build(c.Context, pipeline.BuildRequest{
				Context: c.String("context"), Base: c.String("base"), Platform: c.String("platform"),
				Workdir: c.String("workdir"), Entrypoint: entrypoint.get(), Cmd: cmd.get(), Env: env.get(),
				User: c.String("user"), Ports: port.get(), Labels: label.get(),
				Commit: c.String("commit"), Branch: c.String("branch"), BuildNumber: c.String("build-number"),
				Job: c.String("job"), Source: c.String("source"), BuildTime: c.String("build-time"),
				Tool: "tsys-ci " + version,
				Out:  c.String("out"), Result: c.String("result"),
				Keychain: registry.Credentials(os.Getenv),
			}, os.Getenv, c.App.ErrWriter)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, res.Digest)
			return nil
		},
	}
}
