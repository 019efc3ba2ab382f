package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// What cosign stores, and Harbor looks for (see notes/harbor-api.md §6): a
// manifest tagged sha256-<hex>.sig next to the image, one layer per
// signature whose blob is the simple-signing payload and whose annotation
// holds the base64 signature of that payload.
const (
	SimpleSigningMediaType = types.MediaType("application/vnd.dev.cosign.simplesigning.v1+json")
	SignatureAnnotation    = "dev.cosignproject.cosign/signature"
)

// SignatureTag is the tag cosign keeps an image's signatures under.
func SignatureTag(repo name.Repository, d v1.Hash) name.Tag {
	return repo.Tag(d.Algorithm + "-" + d.Hex + ".sig")
}

// Sign signs the image at ref in cosign's format with sv and stores the
// signature next to it. Signing again with the same key adds nothing.
func (c Client) Sign(ctx context.Context, ref name.Digest, sv signature.SignerVerifier) error {
	d, err := v1.NewHash(ref.DigestStr())
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	body, err := payload.Cosign{Image: ref, ClaimedIdentity: ref.Context().Name()}.MarshalJSON()
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	sig, err := sv.SignMessage(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	b64 := base64.StdEncoding.EncodeToString(sig)
	tag := SignatureTag(ref.Context(), d)
	reg := ref.Context().RegistryStr()
	// The image must be there: a signature of nothing would be misleading.
	if _, err := remote.Head(ref, c.options(ctx)...); err != nil {
		return fmt.Errorf("signing %s: the image is not in the registry: %w", ref, explain(err, reg))
	}
	base, err := c.signatures(ctx, tag)
	if err != nil {
		return err
	}
	if base != nil {
		m, err := base.Manifest()
		if err != nil {
			return fmt.Errorf("reading the signatures %s: %w", tag, err)
		}
		for _, l := range m.Layers {
			if l.MediaType != SimpleSigningMediaType {
				continue
			}
			if _, err := c.verifyLayer(base, l, sv, d, ref.Context()); err == nil {
				return nil // already signed with this key
			}
		}
	} else {
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	sigImg, err := mutate.Append(base, mutate.Addendum{
		Layer:       static.NewLayer(body, SimpleSigningMediaType),
		Annotations: map[string]string{SignatureAnnotation: b64},
	})
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	if err := remote.Write(tag, sigImg, c.options(ctx)...); err != nil {
		return fmt.Errorf("storing the signature of %s as %s: %w", ref, tag.TagStr(), explain(err, reg))
	}
	return nil
}

// signatures fetches the signature manifest at tag; nil when there is none.
func (c Client) signatures(ctx context.Context, tag name.Tag) (v1.Image, error) {
	img, err := remote.Image(tag, c.options(ctx)...)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the signatures %s: %w", tag, explain(err, tag.RegistryStr()))
	}
	return img, nil
}

// ErrUnsigned, ErrWrongKey and ErrOtherRepository say why Verify refused an
// image.
var (
	ErrUnsigned = errors.New("the image has no cosign signature")
	ErrWrongKey = errors.New("the image is signed, but no signature verifies with this key")
	// ErrOtherRepository: a signature made with the key, for this digest,
	// but for another repository (its critical.identity.docker-reference).
	// The image and its signature were copied from where they were signed,
	// e.g. a signed tool image pushed under an app's name on another
	// registry: the key vouches for the content there, not here.
	ErrOtherRepository = errors.New("the image is signed with this key, but for another repository")
)

// errOtherRepository is verifyLayer's refusal of a good signature made for
// another repository.
type errOtherRepository struct{ signed, want string }

func (e errOtherRepository) Error() string {
	return fmt.Sprintf("it was signed for %s, not %s", e.signed, e.want)
}

// Verify checks that the image at ref (a tag or a digest) carries a cosign
// signature made with the key of v, for exactly the digest ref resolves to
// now, and for the repository of ref: the payload's
// critical.identity.docker-reference (which `tsys-ci sign` and `cosign sign`
// both fill with the image's repository, HOST/PROJECT/NAME) must name
// ref's repository, so a signed image copied with its signature to another
// registry or repository does not verify there (issue 17, finding 1; cosign
// itself checks this only when told with --sign-container-identity). It
// returns that digest. Like `cosign verify --key --insecure-ignore-tlog`,
// any one good signature is enough.
func (c Client) Verify(ctx context.Context, ref name.Reference, v signature.Verifier) (name.Digest, error) {
	d, _, err := c.VerifyWithProof(ctx, ref, v)
	return d, err
}

// SignatureProof is the one signature Verify accepted, as the registry held
// it: the simple-signing payload and the signature over it. With the key,
// CheckProof checks it again without the registry, so a process that
// verified an image can hand the proof to another (serve's admission)
// without that one having to trust the process that wrote it.
type SignatureProof struct {
	Payload   []byte `json:"payload"`
	Signature []byte `json:"signature"`
}

// VerifyWithProof is Verify that also returns the signature that verified.
func (c Client) VerifyWithProof(ctx context.Context, ref name.Reference, v signature.Verifier) (name.Digest, SignatureProof, error) {
	reg := ref.Context().RegistryStr()
	desc, err := remote.Head(ref, c.options(ctx)...)
	if err != nil {
		return name.Digest{}, SignatureProof{}, fmt.Errorf("verifying %s: %w", ref, explain(err, reg))
	}
	dref := ref.Context().Digest(desc.Digest.String())
	sigs, err := c.signatures(ctx, SignatureTag(ref.Context(), desc.Digest))
	if err != nil {
		return dref, SignatureProof{}, err
	}
	if sigs == nil {
		return dref, SignatureProof{}, fmt.Errorf("verifying %s: %w (no %s tag); sign it with 'tsys-ci sign' or 'tsys-ci push --sign'", dref, ErrUnsigned, SignatureTag(ref.Context(), desc.Digest).TagStr())
	}
	m, err := sigs.Manifest()
	if err != nil {
		return dref, SignatureProof{}, fmt.Errorf("verifying %s: reading its signatures: %w", dref, err)
	}
	var why []string
	otherRepo := false
	for i, l := range m.Layers {
		if l.MediaType != SimpleSigningMediaType {
			continue
		}
		proof, err := c.verifyLayer(sigs, l, v, desc.Digest, ref.Context())
		if err != nil {
			var o errOtherRepository
			otherRepo = otherRepo || errors.As(err, &o)
			why = append(why, fmt.Sprintf("signature %d: %v", i+1, err))
			continue
		}
		return dref, proof, nil
	}
	if len(why) == 0 {
		return dref, SignatureProof{}, fmt.Errorf("verifying %s: %w (the signature manifest holds no simple-signing layer)", dref, ErrUnsigned)
	}
	if otherRepo {
		return dref, SignatureProof{}, fmt.Errorf("verifying %s: %w (%s); deploy it from the repository it was signed for, or sign it for this one", dref, ErrOtherRepository, strings.Join(why, "; "))
	}
	return dref, SignatureProof{}, fmt.Errorf("verifying %s: %w (%s)", dref, ErrWrongKey, strings.Join(why, "; "))
}

// verifyLayer checks one signature layer: made with v, a cosign signature,
// of digest want, for repository repo. It returns the layer as a proof.
func (c Client) verifyLayer(sigs v1.Image, l v1.Descriptor, v signature.Verifier, want v1.Hash, repo name.Repository) (SignatureProof, error) {
	b64, ok := l.Annotations[SignatureAnnotation]
	if !ok {
		return SignatureProof{}, errors.New("no " + SignatureAnnotation + " annotation")
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return SignatureProof{}, fmt.Errorf("the signature is not base64: %w", err)
	}
	layer, err := sigs.LayerByDigest(l.Digest)
	if err != nil {
		return SignatureProof{}, fmt.Errorf("fetching the payload: %w", err)
	}
	rc, err := layer.Compressed() // checked against l.Digest while read
	if err != nil {
		return SignatureProof{}, fmt.Errorf("fetching the payload: %w", err)
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return SignatureProof{}, fmt.Errorf("fetching the payload: %w", err)
	}
	proof := SignatureProof{Payload: body, Signature: sig}
	return proof, checkSignature(proof, v, want, repo)
}

// CheckProof checks, without the registry, that proof is a cosign
// signature made with v's key of exactly d's digest, for d's repository:
// what Verify checked when it returned the proof.
func CheckProof(proof SignatureProof, v signature.Verifier, d name.Digest) error {
	want, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	return checkSignature(proof, v, want, d.Context())
}

// checkSignature is the check of one signature over its payload.
func checkSignature(proof SignatureProof, v signature.Verifier, want v1.Hash, repo name.Repository) error {
	if err := v.VerifySignature(bytes.NewReader(proof.Signature), bytes.NewReader(proof.Payload)); err != nil {
		return errors.New("made with another key")
	}
	var p payload.SimpleContainerImage
	if err := json.Unmarshal(proof.Payload, &p); err != nil {
		return fmt.Errorf("the payload is not simple-signing JSON: %w", err)
	}
	if p.Critical.Type != payload.CosignSignatureType {
		return fmt.Errorf("payload type %q is not a cosign signature", p.Critical.Type)
	}
	if p.Critical.Image.DockerManifestDigest != want.String() {
		return fmt.Errorf("it signs %s, not %s", p.Critical.Image.DockerManifestDigest, want)
	}
	return checkIdentity(p.Critical.Identity.DockerReference, repo)
}

// checkIdentity compares a payload's docker-reference with the repository
// being verified. Both are normalised by go-containerregistry, so
// "docker.io/x" and "index.docker.io/library/x" spellings compare equal; a
// tag or digest in the reference (older signers) is ignored.
func checkIdentity(dockerRef string, repo name.Repository) error {
	if dockerRef == "" {
		return errOtherRepository{signed: "no repository (critical.identity.docker-reference is empty)", want: repo.Name()}
	}
	signed, err := name.NewRepository(dockerRef)
	if err != nil {
		r, rerr := name.ParseReference(dockerRef)
		if rerr != nil {
			return fmt.Errorf("its critical.identity.docker-reference %q is not an image reference: %v", dockerRef, err)
		}
		signed = r.Context()
	}
	if signed.Name() != repo.Name() {
		return errOtherRepository{signed: signed.Name(), want: repo.Name()}
	}
	return nil
}

// Resolve turns a tag into the digest it points at now (a digest stays).
func (c Client) Resolve(ctx context.Context, ref name.Reference) (name.Digest, error) {
	if d, ok := ref.(name.Digest); ok {
		return d, nil
	}
	desc, err := remote.Head(ref, c.options(ctx)...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("resolving %s: %w", ref, explain(err, ref.Context().RegistryStr()))
	}
	return ref.Context().Digest(desc.Digest.String()), nil
}

// SignRef resolves ref (a tag or a digest) and signs the digest it points
// at; it returns that digest.
func (c Client) SignRef(ctx context.Context, ref name.Reference, sv signature.SignerVerifier) (name.Digest, error) {
	d, err := c.Resolve(ctx, ref)
	if err != nil {
		return d, err
	}
	return d, c.Sign(ctx, d, sv)
}
