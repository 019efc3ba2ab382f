package pipeline

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/tsys-group/tsys-ci/registry"
)

// PushRequest is the push step's input, as `tsys-ci push` takes it.
type PushRequest struct {
	From       string   // build result to push
	Repository string   // HOST/PROJECT/NAME; empty: the embedded registry
	Tags       []string // nil: the short commit and build-N
	Harbor     string   // Harbor URL: check the project first, and the signature after
	Sign       bool
	Key        string // cosign private key for Sign
	Result     string // push result file

	Keychain       authn.Keychain // registry login
	HarborUser     string         // Harbor API login (the same robot, usually)
	HarborPassword string
	CosignPassword []byte
	EmbeddedAddr   string // the embedded registry, for the default repository
	Workdir        string // names the default repository when no job is known
}

// Push runs the push step: upload by digest, sign, then tag (so nothing
// half-done looks complete), and write the result. Progress goes to log.
func Push(ctx context.Context, req PushRequest, log io.Writer) (PushResult, error) {
	built, err := ReadBuildResult(req.From)
	if err != nil {
		return PushResult{}, &registry.UsageError{Msg: err.Error()}
	}
	repoName, embedded := req.Repository, false
	if repoName == "" {
		repoName, embedded = DefaultRepository(req.EmbeddedAddr, built.Labels, req.Workdir), true
		fmt.Fprintf(log, "tsys-ci push: no --repository or TSYS_CI_REPOSITORY; using the embedded registry: %s\n", repoName)
	}
	repo, err := registry.ParseRepository(repoName)
	if err != nil {
		return PushResult{}, err
	}
	tagList := req.Tags
	if tagList == nil {
		tagList = DefaultTags(built.Labels)
	}
	tags, err := registry.ParseTags(repo, tagList)
	if err != nil {
		return PushResult{}, err
	}
	var signer signature.SignerVerifier
	if req.Sign {
		// Before anything is uploaded: a wrong key or password must not
		// leave an image behind that looks like this step's result.
		if signer, err = registry.LoadPrivateKeyFile(req.Key, req.CosignPassword); err != nil {
			return PushResult{}, err
		}
	} else if req.Key != "" {
		return PushResult{}, &registry.UsageError{Msg: "--key is given without --sign; add --sign to sign the image"}
	}
	d, err := v1.NewHash(built.Digest)
	if err != nil {
		return PushResult{}, &registry.UsageError{Msg: fmt.Sprintf("%s: digest %q is not valid; run 'tsys-ci build' again", req.From, built.Digest)}
	}
	img, err := registry.ReadLayout(built.Layout, d)
	if err != nil {
		return PushResult{}, err
	}
	var harbor *registry.Harbor
	if req.Harbor != "" {
		if harbor, err = ensureHarborProject(ctx, req, repo, log); err != nil {
			return PushResult{}, err
		}
	}
	var preds []registry.Predicate
	if signer != nil {
		if preds, err = Attestations(built, repo.Digest(d.String())); err != nil {
			return PushResult{}, err
		}
		if preds == nil {
			fmt.Fprintf(log, "tsys-ci push: warning: %s is from a tsys-ci that recorded no contents; no SBOM or provenance is attached (run 'tsys-ci build' again)\n", req.From)
		}
	}
	// The login goes to the registry the user named, not to any other.
	client := registry.Client{Keychain: registry.WithHost(req.Keychain, repo.RegistryStr())}
	pushed, err := client.PushAttested(ctx, img, repo, tags, signer, preds, log)
	if err != nil {
		if embedded {
			err = fmt.Errorf("%w (this is the embedded default registry: start it with 'tsys-ci registry serve', or pass --repository)", err)
		}
		return PushResult{}, err
	}
	res := PushResult{Image: pushed.Ref.String(), Digest: pushed.Digest.String(), Tags: pushed.Tags, Signed: pushed.Signed, Attested: pushed.Attested}
	if res.Tags == nil {
		res.Tags = []string{}
	}
	if harbor != nil && pushed.Signed {
		reportHarborSignature(ctx, harbor, repo, pushed, log)
	}
	if err := WriteJSON(req.Result, res); err != nil {
		return PushResult{}, err
	}
	return res, nil
}

// ensureHarborProject makes sure the repository's Harbor project exists. A
// robot account may check but not create projects; then the message points
// at 'tsys-ci registry setup'.
func ensureHarborProject(ctx context.Context, req PushRequest, repo name.Repository, log io.Writer) (*registry.Harbor, error) {
	projectName, _, ok := strings.Cut(repo.RepositoryStr(), "/")
	if !ok {
		return nil, &registry.UsageError{Msg: fmt.Sprintf("repository %s has no Harbor project: use HOST/PROJECT/NAME", repo)}
	}
	h, err := registry.NewHarbor(req.Harbor, req.HarborUser, req.HarborPassword, nil)
	if err != nil {
		return nil, err
	}
	made, err := h.EnsureProject(ctx, projectName, false)
	if err != nil {
		return nil, fmt.Errorf("%w (run 'tsys-ci registry setup --project %s' with an admin login once)", err, projectName)
	}
	if made {
		fmt.Fprintf(log, "created Harbor project %s\n", projectName)
	}
	return h, nil
}

// reportHarborSignature says whether Harbor shows the pushed image as signed.
// It only informs: the signature is in the registry either way.
func reportHarborSignature(ctx context.Context, h *registry.Harbor, repo name.Repository, pushed *registry.Pushed, log io.Writer) {
	shown, err := h.SignatureShown(ctx, repo.RepositoryStr(), pushed.Digest.String())
	switch {
	case err != nil:
		fmt.Fprintf(log, "tsys-ci push: could not check the signature in Harbor: %v\n", err)
	case shown:
		fmt.Fprintf(log, "Harbor %s shows %s as signed (cosign)\n", h.URL, pushed.Ref)
	default:
		fmt.Fprintf(log, "tsys-ci push: warning: Harbor %s does not list the signature of %s\n", h.URL, pushed.Ref)
	}
}

// DefaultTags are the short commit and build-N, from the image's labels.
func DefaultTags(labels map[string]string) []string {
	var tags []string
	if s := (Context{Commit: labels[LabelRevision]}).ShortCommit(); s != "" {
		tags = append(tags, s)
	}
	if n := labels[LabelBuildNumber]; n != "" {
		tags = append(tags, "build-"+n)
	}
	return tags
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// DefaultRepository is the repository used when none is configured: the
// embedded registry at addr, project "library", named after the Jenkins job
// (or the folder the pipeline runs in).
func DefaultRepository(addr string, labels map[string]string, wd string) string {
	n := labels[LabelJob]
	if n == "" && wd != "" {
		n = filepath.Base(wd)
	}
	n = strings.Trim(nonName.ReplaceAllString(strings.ToLower(n), "-"), "-")
	if n == "" {
		n = "app"
	}
	return addr + "/library/" + n
}
