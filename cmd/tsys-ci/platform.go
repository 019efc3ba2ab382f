package main

import (
	"fmt"
	"io/fs"

	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/platform"
	"github.com/tsys-group/tsys-ci/templates"
)

// platformCommand groups the commands that bootstrap and check the
// production platform from platform.yaml.
func platformCommand() *cli.Command {
	return &cli.Command{
		Name:  "platform",
		Usage: "bootstrap and check the k3s platform described by platform.yaml",
		Subcommands: []*cli.Command{
			platformRenderCommand(),
		},
	}
}

var specFlag = &cli.StringFlag{
	Name: "file", Aliases: []string{"f"}, Value: "platform.yaml",
	Usage: "the platform file (start from templates/platform/platform.yaml)",
}

// loadSpec reads the platform file; a bad file is bad input (exit 2).
func loadSpec(c *cli.Context) (*platform.Spec, error) {
	spec, err := platform.LoadSpec(c.String("file"))
	if err != nil {
		return nil, cli.Exit(err.Error(), 2)
	}
	return spec, nil
}

func platformRenderCommand() *cli.Command {
	return &cli.Command{
		Name:  "render",
		Usage: "write each host's k3s config.yaml, every component's Helm values and the platform's manifests",
		Flags: []cli.Flag{
			specFlag,
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Value: "platform-rendered", Usage: "directory to write into"},
		},
		Action: func(c *cli.Context) error {
			spec, err := loadSpec(c)
			if err != nil {
				return err
			}
			tmpl, err := fs.Sub(templates.Platform, "platform")
			if err != nil {
				return fmt.Errorf("opening embedded templates: %w", err)
			}
			files, err := platform.Render(spec, tmpl)
			if err != nil {
				return err
			}
			if err := files.Write(c.String("out")); err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "wrote %d files under %s\n", len(files), c.String("out"))
			return nil
		},
	}
}
