package main

import (
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/pipeline"
	"github.com/tsys-group/tsys-ci/registry"
)

func pushCommand() *cli.Command {
	var tags repeatable
	return &cli.Command{
		Name:      "push",
		Usage:     "push the built image by digest, then tag it (and sign it with --sign)",
		UsageText: "tsys-ci push [--from .tsys-ci/build.json] [--repository HOST/PROJECT/NAME] [--tag T]... [--sign --key FILE]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Value: pipeline.DefaultBuildResult, Usage: "build result to push"},
			&cli.StringFlag{Name: "repository", EnvVars: []string{"TSYS_CI_REPOSITORY"}, Usage: "HOST/PROJECT/NAME (default: the embedded registry, see 'tsys-ci registry serve')"},
			&cli.GenericFlag{Name: "tag", Value: &tags, Usage: "tag (repeatable; default: the short commit and build-N)"},
			&cli.StringFlag{Name: "result", Value: pipeline.DefaultPushResult, Usage: "JSON result written here"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return cli.Exit(fmt.Sprintf("tsys-ci push takes no arguments, got %q", c.Args().Slice()), 2)
			}
			built, err := pipeline.ReadBuildResult(c.String("from"))
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			repoName := c.String("repository")
			if repoName == "" {
				repoName = registry.DefaultRepository(built.Labels, mustGetwd())
				fmt.Fprintf(c.App.ErrWriter, "tsys-ci push: no --repository or TSYS_CI_REPOSITORY; using the embedded registry: %s\n", repoName)
			}
			repo, err := registry.ParseRepository(repoName)
			if err != nil {
				return exitFor(err)
			}
			tagList := tags.get()
			if tagList == nil {
				tagList = defaultTags(built.Labels)
			}
			parsedTags, err := registry.ParseTags(repo, tagList)
			if err != nil {
				return exitFor(err)
			}
			d, err := v1.NewHash(built.Digest)
			if err != nil {
				return cli.Exit(fmt.Sprintf("%s: digest %q is not valid; run 'tsys-ci build' again", c.String("from"), built.Digest), 2)
			}
			img, err := registry.ReadLayout(built.Layout, d)
			if err != nil {
				return err
			}
			client := registry.Client{Keychain: registry.Credentials(os.Getenv)}
			pushed, err := client.Push(c.Context, img, repo, parsedTags, c.App.ErrWriter)
			if err != nil {
				if repoName != c.String("repository") {
					err = fmt.Errorf("%w (this is the embedded default registry: start it with 'tsys-ci registry serve', or pass --repository)", err)
				}
				return err
			}
			res := pipeline.PushResult{Image: pushed.Ref.String(), Digest: pushed.Digest.String(), Tags: pushed.Tags}
			if res.Tags == nil {
				res.Tags = []string{}
			}
			if err := pipeline.WriteJSON(c.String("result"), res); err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, res.Image)
			return nil
		},
	}
}

// defaultTags are the short commit and build-N, from the image's labels.
func defaultTags(labels map[string]string) []string {
	var tags []string
	pc := pipeline.Context{Commit: labels[pipeline.LabelRevision]}
	if s := pc.ShortCommit(); s != "" {
		tags = append(tags, s)
	}
	if n := labels[pipeline.LabelBuildNumber]; n != "" {
		tags = append(tags, "build-"+n)
	}
	return tags
}

func mustGetwd() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	return wd
}
