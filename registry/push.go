package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Client is how tsys-ci reaches registries: credentials and transport, passed
// in so tests and `tsys-ci serve` choose their own.
type Client struct {
	Keychain authn.Keychain
	// Transport carries the requests; nil is go-containerregistry's
	// transport with ResponseHeaderTimeout.
	Transport http.RoundTripper
}

func (c Client) options(ctx context.Context) []remote.Option {
	t := c.Transport
	if t == nil {
		t = defaultTransport
	}
	return append([]remote.Option{remote.WithContext(ctx)}, RemoteOptions(c.Keychain, t)...)
}

// ParseRepository checks a repository name (HOST/PROJECT/NAME).
func ParseRepository(repo string) (name.Repository, error) {
	r, err := name.NewRepository(repo)
	if err != nil {
		return r, &UsageError{fmt.Sprintf("repository %q is not valid: %v; it looks like registry.example.com/project/app", repo, err)}
	}
	return r, nil
}

// ParseTags checks every tag before anything is pushed, so a bad tag never
// leaves a pushed but untagged image behind.
func ParseTags(repo name.Repository, tags []string) ([]name.Tag, error) {
	var out []name.Tag
	for _, t := range tags {
		tag, err := name.NewTag(repo.String()+":"+t, name.StrictValidation)
		if err != nil || tag.TagStr() != t || !tagPattern.MatchString(t) {
			return nil, &UsageError{fmt.Sprintf("tag %q is not valid: tags are up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'", t)}
		}
		out = append(out, tag)
	}
	return out, nil
}

// tagPattern is the OCI distribution spec's tag grammar.
var tagPattern = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// Pushed is what Push did.
type Pushed struct {
	Ref    name.Digest // HOST/PROJECT/NAME@sha256:...
	Digest v1.Hash
	Tags   []string
	Signed bool
	// Attested lists the predicate types attached (cosign attestations).
	Attested []string
}

// Push uploads img to repo by digest (every blob, then the manifest), signs
// it when sv is not nil, and only then points the tags at it: a push that
// fails midway leaves nothing tagged, so nothing half-pushed or unsigned
// looks complete. Progress goes to log.
func (c Client) Push(ctx context.Context, img v1.Image, repo name.Repository, tags []name.Tag, sv signature.SignerVerifier, log io.Writer) (*Pushed, error) {
	return c.PushAttested(ctx, img, repo, tags, sv, nil, log)
}

// PushAttested is Push that also attaches preds as cosign attestations
// signed with sv, after the signature and before the tags.
func (c Client) PushAttested(ctx context.Context, img v1.Image, repo name.Repository, tags []name.Tag, sv signature.SignerVerifier, preds []Predicate, log io.Writer) (*Pushed, error) {
	if len(preds) > 0 && sv == nil {
		return nil, errors.New("attestations need a signing key")
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("computing the image digest: %w", err)
	}
	ref := repo.Digest(d.String())
	reg := repo.RegistryStr()
	fmt.Fprintf(log, "pushing %s\n", ref)
	if err := remote.Write(ref, img, c.options(ctx)...); err != nil {
		return nil, fmt.Errorf("pushing %s: %w", ref, explain(err, reg))
	}
	p := &Pushed{Ref: ref, Digest: d}
	if sv != nil {
		if err := c.Sign(ctx, ref, sv); err != nil {
			return p, err
		}
		fmt.Fprintf(log, "signed %s\n", ref)
		p.Signed = true
	}
	if len(preds) > 0 {
		if err := c.Attest(ctx, ref, sv, preds...); err != nil {
			return p, err
		}
		for _, pr := range preds {
			p.Attested = append(p.Attested, pr.Type)
		}
		fmt.Fprintf(log, "attached %s to %s\n", strings.Join(p.Attested, " and "), ref)
	}
	for _, t := range tags {
		if err := remote.Tag(t, img, c.options(ctx)...); err != nil {
			return p, fmt.Errorf("tagging %s as %s (the image itself is pushed): %w", ref, t.TagStr(), explain(err, reg))
		}
		fmt.Fprintf(log, "tagged %s\n", t)
		p.Tags = append(p.Tags, t.TagStr())
	}
	return p, nil
}
