package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/signature"
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
			&cli.StringFlag{Name: "harbor", EnvVars: []string{"TSYS_CI_HARBOR_URL"}, Usage: "Harbor URL: make sure the project exists first, and check Harbor shows the signature"},
			&cli.BoolFlag{Name: "sign", Usage: "sign the pushed image in cosign's format with --key"},
			&cli.StringFlag{Name: "key", Usage: "cosign private key for --sign; password from COSIGN_PASSWORD"},
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
				repoName = registry.DefaultRepository(embeddedAddr, built.Labels, mustGetwd())
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
			var signer signature.SignerVerifier
			if c.Bool("sign") {
				// Before pushing: a wrong key or password must not leave an
				// unsigned image behind that looks like the result of this step.
				if signer, err = loadSigner(c.String("key")); err != nil {
					return exitFor(err)
				}
			} else if c.IsSet("key") {
				return cli.Exit("--key is given without --sign; add --sign to sign the image", 2)
			}
			d, err := v1.NewHash(built.Digest)
			if err != nil {
				return cli.Exit(fmt.Sprintf("%s: digest %q is not valid; run 'tsys-ci build' again", c.String("from"), built.Digest), 2)
			}
			img, err := registry.ReadLayout(built.Layout, d)
			if err != nil {
				return err
			}
			var harbor *registry.Harbor
			if c.String("harbor") != "" {
				if harbor, err = ensureHarborProject(c, repo); err != nil {
					return err
				}
			}
			client := registry.Client{Keychain: registry.Credentials(os.Getenv)}
			pushed, err := client.Push(c.Context, img, repo, parsedTags, signer, c.App.ErrWriter)
			if err != nil {
				if repoName != c.String("repository") {
					err = fmt.Errorf("%w (this is the embedded default registry: start it with 'tsys-ci registry serve', or pass --repository)", err)
				}
				return err
			}
			res := pipeline.PushResult{Image: pushed.Ref.String(), Digest: pushed.Digest.String(), Tags: pushed.Tags}
			res.Signed = pushed.Signed
			if harbor != nil && pushed.Signed {
				shown, err := harbor.SignatureShown(c.Context, repo.RepositoryStr(), pushed.Digest.String())
				switch {
				case err != nil:
					fmt.Fprintf(c.App.ErrWriter, "tsys-ci push: could not check the signature in Harbor: %v\n", err)
				case shown:
					fmt.Fprintf(c.App.ErrWriter, "Harbor %s shows %s as signed (cosign)\n", c.String("harbor"), pushed.Ref)
				default:
					fmt.Fprintf(c.App.ErrWriter, "tsys-ci push: warning: Harbor %s does not list the signature of %s; is cosign signing enabled there?\n", c.String("harbor"), pushed.Ref)
				}
			}
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

// embeddedAddr is the embedded registry's address push defaults to; tests
// point it at their own.
var embeddedAddr = registry.EmbeddedAddr

// ensureHarborProject makes sure the repository's Harbor project exists,
// with the push credentials. A robot account may check but not create
// projects; then the message points at 'tsys-ci registry setup'.
func ensureHarborProject(c *cli.Context, repo name.Repository) (*registry.Harbor, error) {
	projectName, _, ok := strings.Cut(repo.RepositoryStr(), "/")
	if !ok {
		return nil, cli.Exit(fmt.Sprintf("repository %s has no Harbor project: use HOST/PROJECT/NAME", repo), 2)
	}
	h, err := registry.NewHarbor(c.String("harbor"), os.Getenv("TSYS_CI_REGISTRY_USERNAME"), os.Getenv("TSYS_CI_REGISTRY_PASSWORD"), nil)
	if err != nil {
		return nil, exitFor(err)
	}
	made, err := h.EnsureProject(c.Context, projectName, false)
	if err != nil {
		return nil, fmt.Errorf("%w (run 'tsys-ci registry setup --project %s' with an admin login once)", err, projectName)
	}
	if made {
		fmt.Fprintf(c.App.ErrWriter, "created Harbor project %s\n", projectName)
	}
	return h, nil
}

func mustGetwd() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	return wd
}
