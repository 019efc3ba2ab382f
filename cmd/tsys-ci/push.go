package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/pipeline"
	"github.com/tsys-group/tsys-ci/registry"
)

// embeddedAddr is the embedded registry's address push defaults to; tests
// point it at their own.
var embeddedAddr = registry.EmbeddedAddr

func pushCommand() *cli.Command {
	var tags repeatable
	return &cli.Command{
		Name:      "push",
		Usage:     "push the built image by digest, sign it (--sign), then tag it",
		UsageText: "tsys-ci push [--from .tsys-ci/build.json] [--repository HOST/PROJECT/NAME] [--tag T]... [--harbor URL] [--sign --key FILE]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Value: pipeline.DefaultBuildResult, Usage: "build result to push"},
			&cli.StringFlag{Name: "repository", EnvVars: []string{"TSYS_CI_REPOSITORY"}, Usage: "HOST/PROJECT/NAME (default: the embedded registry, see 'tsys-ci registry serve')"},
			&cli.GenericFlag{Name: "tag", Value: &tags, Usage: "tag (repeatable; default: the short commit and build-N)"},
			&cli.StringFlag{Name: "harbor", EnvVars: []string{"TSYS_CI_HARBOR_URL"}, Usage: "Harbor URL: make sure the project exists first, and check Harbor shows the signature"},
			&cli.BoolFlag{Name: "sign", Usage: "sign the pushed image in cosign's format with --key"},
			&cli.StringFlag{Name: "key", Usage: "cosign private key for --sign; password from COSIGN_PASSWORD"},
			&cli.StringFlag{Name: "result", Value: pipeline.DefaultPushResult, Usage: "JSON result written here"},
		},
		Before: noArgs(""),
		Action: func(c *cli.Context) error {
			wd, _ := os.Getwd()
			res, err := pipeline.Push(c.Context, pipeline.PushRequest{
				From: c.String("from"), Repository: c.String("repository"), Tags: tags.get(),
				Harbor: c.String("harbor"), Sign: c.Bool("sign"), Key: c.String("key"), Result: c.String("result"),
				Keychain:       registry.Credentials(os.Getenv),
				HarborUser:     os.Getenv("TSYS_CI_REGISTRY_USERNAME"),
				HarborPassword: os.Getenv("TSYS_CI_REGISTRY_PASSWORD"),
				CosignPassword: []byte(os.Getenv("COSIGN_PASSWORD")),
				EmbeddedAddr:   embeddedAddr, Workdir: wd,
			}, c.App.ErrWriter)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, res.Image)
			return nil
		},
	}
}
