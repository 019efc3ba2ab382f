package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/jenkins"
	"github.com/tsys-group/tsys-ci/platform"
)

// jenkinsFlags are how every jenkins subcommand reaches Jenkins.
type jenkinsFlags struct {
	url, user, token string
	// note says the URL came from platform.yaml (stderr); "" otherwise.
	note string
}

// withPlatform takes Jenkins' URL from platform.yaml (spec, read from file;
// nil without --platform) when --url and JENKINS_URL do not give it.
func (f *jenkinsFlags) withPlatform(spec *platform.Spec, file string) {
	var from bool
	if f.url, from = jenkinsURLSetting.resolve(f.url, spec); from {
		f.note = fmt.Sprintf("Jenkins %s: from %s's %s", f.url, file, jenkinsURLSetting.field)
	}
}

// validate checks without I/O that Jenkins can be reached and logged in to.
func (f jenkinsFlags) validate() error {
	var missing []string
	for _, m := range []struct{ v, name string }{{f.url, jenkinsURLSetting.missing()}, {f.user, "--user (JENKINS_USER)"}, {f.token, "--token (JENKINS_API_TOKEN)"}} {
		if m.v == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return usageErrorf("jenkins: set %s", strings.Join(missing, ", "))
	}
	return nil
}

func jenkinsConnectionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "url", EnvVars: []string{"JENKINS_URL"}, Usage: "Jenkins' URL"},
		&cli.StringFlag{Name: "user", EnvVars: []string{"JENKINS_USER"}, Usage: "Jenkins user"},
		&cli.StringFlag{Name: "token", EnvVars: []string{"JENKINS_API_TOKEN"}, Usage: "the user's API token (better from JENKINS_API_TOKEN than on the command line)"},
		platformFileFlag(),
	}
}

func connectJenkins(ctx context.Context, c *cli.Context) (*jenkins.Client, error) {
	f := jenkinsFlags{url: c.String("url"), user: c.String("user"), token: c.String("token")}
	spec, err := loadPlatformFile(c)
	if err != nil {
		return nil, err
	}
	f.withPlatform(spec, c.String("platform"))
	if err := f.validate(); err != nil {
		return nil, err
	}
	if f.note != "" {
		fmt.Fprintln(c.App.ErrWriter, f.note)
	}
	// gojenkins ignores contexts; the client timeout bounds each request.
	hc := &http.Client{Timeout: 30 * time.Second}
	return jenkins.Connect(ctx, hc, f.url, f.user, f.token)
}

func jenkinsCommand() *cli.Command {
	return &cli.Command{
		Name:  "jenkins",
		Usage: "seed Jenkins jobs from templates and run them",
		Subcommands: []*cli.Command{
			jenkinsSeedCommand(),
			jenkinsRunCommand(),
		},
	}
}

func jenkinsSeedCommand() *cli.Command {
	return &cli.Command{
		Name:  "seed",
		Usage: "create or update Jenkins folders and jobs from jobs.yaml; a second run changes nothing",
		UsageText: "tsys-ci jenkins seed -f jobs.yaml [--url URL] [--platform platform.yaml] [--dry-run] [--prune]\n" +
			"   (login from JENKINS_USER / JENKINS_API_TOKEN; with --platform, Jenkins' URL is https://<domains.jenkins>\n" +
			"   unless --url or JENKINS_URL gives it)",
		ArgsUsage: " ",
		Flags: append(jenkinsConnectionFlags(),
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "the jobs file (required; see templates/jenkins/jobs.yaml)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would change, with diffs, and change nothing"},
			&cli.BoolFlag{Name: "prune", Usage: "delete folders and jobs that are in Jenkins but not in the jobs file"},
		),
		Before: noArgs(""),
		Action: func(c *cli.Context) error {
			// Checked here, not with urfave's Required, whose error exits 1.
			if c.String("file") == "" {
				return usageErrorf("jenkins seed needs --file (-f), the jobs file, e.g. -f templates/jenkins/jobs.yaml")
			}
			data, err := os.ReadFile(c.String("file"))
			if err != nil {
				return usageErrorf("jenkins seed: %w", err)
			}
			f, err := jenkins.ParseJobsFile(data)
			if err != nil {
				return usageErrorf("jenkins seed: %s: %w", c.String("file"), err)
			}
			client, err := connectJenkins(c.Context, c)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "seeding Jenkins %s at %s from %s\n", client.Version, client.URL, c.String("file"))
			_, err = jenkins.Seed(c.Context, client, f, jenkins.SeedOptions{
				DryRun: c.Bool("dry-run"), Prune: c.Bool("prune"), Out: c.App.Writer,
			})
			return err
		},
	}
}

func jenkinsRunCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "trigger a Jenkins job and follow it to its result, printing its console",
		ArgsUsage: "FOLDER/JOB",
		Flags: append(jenkinsConnectionFlags(),
			&cli.StringSliceFlag{Name: "param", Aliases: []string{"p"}, Usage: "build parameter NAME=VALUE (repeatable)"},
			&cli.DurationFlag{Name: "timeout", Value: time.Hour, Usage: "give up waiting after this long (the build goes on in Jenkins)"},
			&cli.DurationFlag{Name: "poll", Value: time.Second, Usage: "how often to ask Jenkins"},
		),
		Before: oneArg("the job, e.g. platform/promote"),
		Action: func(c *cli.Context) error {
			params := map[string]string{}
			for _, p := range c.StringSlice("param") {
				k, v, ok := strings.Cut(p, "=")
				if !ok || k == "" {
					return usageErrorf("jenkins run: --param %q is not NAME=VALUE", p)
				}
				params[k] = v
			}
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
			defer cancel()
			client, err := connectJenkins(ctx, c)
			if err != nil {
				return err
			}
			_, err = jenkins.Run(ctx, client, c.Args().First(), jenkins.RunOptions{
				Params: params, Poll: c.Duration("poll"), Console: c.App.Writer, Progress: c.App.ErrWriter,
			})
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("%w: gave up after --timeout %s; the build goes on in Jenkins", err, c.Duration("timeout"))
			}
			return err
		},
	}
}
