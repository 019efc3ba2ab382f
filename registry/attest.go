package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/signature"
)

// What cosign stores for `cosign attest` (and `cosign verify-attestation`
// reads): a manifest tagged sha256-<hex>.att next to the image, one layer
// per attestation whose blob is a DSSE envelope around an in-toto
// statement, annotated with the statement's predicate type and an empty
// cosign signature annotation (the signature is inside the envelope).
const (
	DSSEMediaType           = types.MediaType("application/vnd.dsse.envelope.v1+json")
	InTotoPayloadType       = "application/vnd.in-toto+json"
	InTotoStatementV1       = "https://in-toto.io/Statement/v1"
	PredicateTypeAnnotation = "predicateType"
)

// Predicate types tsys-ci attaches; `cosign verify-attestation --type
// cyclonedx` and `--type slsaprovenance1` look for exactly these.
const (
	PredicateCycloneDX = "https://cyclonedx.org/bom"
	PredicateSLSAv1    = "https://slsa.dev/provenance/v1"
)

// maxAttestation bounds one attestation read from a registry: an SBOM
// lists every file of the app layer, so it may be large, but not without
// limit.
const maxAttestation = 64 << 20

// AttestationTag is the tag cosign keeps an image's attestations under.
func AttestationTag(repo name.Repository, d v1.Hash) name.Tag {
	return repo.Tag(d.Algorithm + "-" + d.Hex + ".att")
}

// Statement is an in-toto statement (v1): what an attestation says, and
// about which artifact.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject is one artifact a statement is about.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// About reports whether the statement names digest d among its subjects.
func (s Statement) About(d v1.Hash) bool {
	for _, sub := range s.Subject {
		if sub.Digest[d.Algorithm] == d.Hex {
			return true
		}
	}
	return false
}

// Predicate is one attestation to attach: its type and its content (JSON).
type Predicate struct {
	Type    string
	Content json.RawMessage
}

// Attest attaches the predicates to the image at ref as cosign
// attestations signed with sv. An attestation of the same type signed with
// the same key is replaced (a push of the same build again changes
// nothing else); others, such as one cosign or another key added, stay.
func (c Client) Attest(ctx context.Context, ref name.Digest, sv signature.SignerVerifier, preds ...Predicate) error {
	d, err := v1.NewHash(ref.DigestStr())
	if err != nil {
		return fmt.Errorf("attesting %s: %w", ref, err)
	}
	reg := ref.Context().RegistryStr()
	if _, err := remote.Head(ref, c.options(ctx)...); err != nil {
		return fmt.Errorf("attesting %s: the image is not in the registry: %w", ref, explain(err, reg))
	}
	tag := AttestationTag(ref.Context(), d)
	old, err := c.signatures(ctx, tag)
	if err != nil {
		return err
	}
	replace := map[string]bool{}
	for _, p := range preds {
		replace[p.Type] = true
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if old != nil {
		m, err := old.Manifest()
		if err != nil {
			return fmt.Errorf("reading the attestations %s: %w", tag, err)
		}
		layers, err := old.Layers()
		if err != nil {
			return fmt.Errorf("reading the attestations %s: %w", tag, err)
		}
		for i, l := range m.Layers {
			if l.MediaType == DSSEMediaType && replace[l.Annotations[PredicateTypeAnnotation]] {
				if _, err := readAttestation(layers[i], sv); err == nil {
					continue // ours, of a type attached anew
				}
			}
			if base, err = mutate.Append(base, mutate.Addendum{Layer: layers[i], Annotations: l.Annotations, MediaType: l.MediaType}); err != nil {
				return fmt.Errorf("attesting %s: %w", ref, err)
			}
		}
	}
	for _, p := range preds {
		st, err := json.Marshal(Statement{
			Type: InTotoStatementV1, PredicateType: p.Type, Predicate: p.Content,
			Subject: []Subject{{Name: ref.Context().Name(), Digest: map[string]string{d.Algorithm: d.Hex}}},
		})
		if err != nil {
			return fmt.Errorf("attesting %s (%s): %w", ref, p.Type, err)
		}
		sig, err := sv.SignMessage(bytes.NewReader(dsse.PAE(InTotoPayloadType, st)))
		if err != nil {
			return fmt.Errorf("attesting %s (%s): %w", ref, p.Type, err)
		}
		env, err := json.Marshal(dsse.Envelope{PayloadType: InTotoPayloadType, Payload: base64.StdEncoding.EncodeToString(st),
			Signatures: []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}})
		if err != nil {
			return fmt.Errorf("attesting %s (%s): %w", ref, p.Type, err)
		}
		if base, err = mutate.Append(base, mutate.Addendum{
			Layer:       static.NewLayer(env, DSSEMediaType),
			Annotations: map[string]string{SignatureAnnotation: "", PredicateTypeAnnotation: p.Type},
		}); err != nil {
			return fmt.Errorf("attesting %s: %w", ref, err)
		}
	}
	if err := remote.Write(tag, base, c.options(ctx)...); err != nil {
		return fmt.Errorf("storing the attestations of %s as %s: %w", ref, tag.TagStr(), explain(err, reg))
	}
	return nil
}

// ErrNoAttestation says the image has no attestation of the type asked
// for that verifies with the key.
var ErrNoAttestation = errors.New("no attestation of this type verifies with this key")

// Attestation returns the statement of type predicateType attached to
// the image at ref (by digest), signed with v's key and about ref's
// digest. Others (other keys, other images, broken envelopes) are
// skipped, and said in the error when none is left; the caller names the
// image.
func (c Client) Attestation(ctx context.Context, ref name.Digest, v signature.Verifier, predicateType string) (*Statement, error) {
	d, err := v1.NewHash(ref.DigestStr())
	if err != nil {
		return nil, fmt.Errorf("reading the attestations of %s: %w", ref, err)
	}
	tag := AttestationTag(ref.Context(), d)
	atts, err := c.signatures(ctx, tag)
	if err != nil {
		return nil, err
	}
	if atts == nil {
		return nil, fmt.Errorf("%w: the image has no attestations (no %s tag)", ErrNoAttestation, tag.TagStr())
	}
	m, err := atts.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading the attestations %s: %w", tag, err)
	}
	layers, err := atts.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the attestations %s: %w", tag, err)
	}
	var why []string
	for i, l := range m.Layers {
		if l.MediaType != DSSEMediaType || (l.Annotations[PredicateTypeAnnotation] != "" && l.Annotations[PredicateTypeAnnotation] != predicateType) {
			continue
		}
		st, err := readAttestation(layers[i], v)
		switch {
		case err != nil:
			why = append(why, fmt.Sprintf("attestation %d: %v", i+1, err))
		case st.PredicateType != predicateType:
			// the annotation lied or was missing; not the one asked for
		case !st.About(d):
			why = append(why, fmt.Sprintf("attestation %d: it is about %s, not %s", i+1, subjectDigests(st), d))
		default:
			return st, nil
		}
	}
	if len(why) == 0 {
		why = []string{"none of type " + predicateType}
	}
	return nil, fmt.Errorf("%w (%s)", ErrNoAttestation, strings.Join(why, "; "))
}

// readAttestation reads one DSSE layer and checks its signature with v.
func readAttestation(l v1.Layer, v signature.Verifier) (*Statement, error) {
	rc, err := l.Compressed() // checked against the layer digest while read
	if err != nil {
		return nil, fmt.Errorf("fetching it: %w", err)
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, maxAttestation+1))
	if err != nil {
		return nil, fmt.Errorf("fetching it: %w", err)
	}
	if len(body) > maxAttestation {
		return nil, fmt.Errorf("it is larger than %d MiB", maxAttestation>>20)
	}
	var env dsse.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("it is not a DSSE envelope: %w", err)
	}
	if env.PayloadType != InTotoPayloadType {
		return nil, fmt.Errorf("its payload type is %q, not %s", env.PayloadType, InTotoPayloadType)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("its payload is not base64: %w", err)
	}
	signed := dsse.PAE(env.PayloadType, payload)
	ok := false
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err == nil && v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(signed)) == nil {
			ok = true
			break
		}
	}
	if !ok {
		return nil, errors.New("made with another key")
	}
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("its payload is not an in-toto statement: %w", err)
	}
	return &st, nil
}

func subjectDigests(st *Statement) string {
	var ds []string
	for _, s := range st.Subject {
		for alg, hex := range s.Digest {
			ds = append(ds, alg+":"+hex)
		}
	}
	if len(ds) == 0 {
		return "no digest"
	}
	return strings.Join(ds, ", ")
}
