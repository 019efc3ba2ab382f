package main

import (
	"fmt"
	"io"
	"io/fs"

	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/platform"
	"github.com/tsys-group/tsys-ci/platform/ldapcheck"
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
			platformLDAPCommand(),
			platformDoctorCommand(),
			platformPlanCommand(),
			platformApplyCommand(),
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
		return nil, asUsage(err)
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
		Before: noArgs(""),
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

func platformLDAPCommand() *cli.Command {
	return &cli.Command{
		Name:  "ldap",
		Usage: "check the directory has what each component needs; print what is missing as LDIF and as a UCS checklist",
		Description: "Binds as every bind account (passwords from the environment variables or files platform.yaml\n" +
			"names), checks the user and group bases, each component's admin group and the test user's\n" +
			"membership. Exit 0 when nothing is missing, 4 when something is, 1 when the directory cannot be reached.",
		Flags: []cli.Flag{
			specFlag,
			&cli.StringFlag{Name: "user", Usage: "test user's login name (default: ldap.testUser)"},
			outputFlag("table", "json"),
		},
		Before: noArgs(""),
		Action: func(c *cli.Context) error {
			spec, err := loadSpec(c)
			if err != nil {
				return err
			}
			report, err := ldapcheck.Check(spec, ldapcheck.Options{TestUser: c.String("user")})
			if err != nil {
				return fmt.Errorf("checking the directory: %w", err)
			}
			err = writeOutput(c, report, func(w io.Writer) error { return ldapcheck.WriteReport(w, report) })
			if err != nil {
				return err
			}
			if !report.OK() {
				return &findingsError{"the directory lacks what the components need (see above)"}
			}
			return nil
		},
	}
}
