package registry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature"
)

// keys caches one key pair per password: scrypt makes each new one cost
// about a second on a busy machine.
var keys sync.Map

func keyPair(t *testing.T, password string) (signature.SignerVerifier, signature.Verifier, []byte, []byte) {
	t.Helper()
	type pair struct {
		sv        signature.SignerVerifier
		v         signature.Verifier
		priv, pub []byte
	}
	cached, ok := keys.Load(password)
	if !ok {
		priv, pub, err := GenerateKeyPair([]byte(password))
		if err != nil {
			t.Fatal(err)
		}
		sv, err := LoadPrivateKey("test.key", priv, []byte(password))
		if err != nil {
			t.Fatal(err)
		}
		v, err := LoadPublicKey("test.pub", pub)
		if err != nil {
			t.Fatal(err)
		}
		cached, _ = keys.LoadOrStore(password, pair{sv, v, priv, pub})
	}
	p := cached.(pair)
	return p.sv, p.v, p.priv, p.pub
}

// pushRandom pushes a random image to reg and returns its digest reference.
func pushRandom(t *testing.T, reg *testRegistry, repo string) name.Digest {
	t.Helper()
	img, _ := random.Image(200, 1)
	r, _ := ParseRepository(reg.host + "/" + repo)
	tags, _ := ParseTags(r, []string{"latest"})
	p, err := basicClient("ci", "secret").Push(context.Background(), img, r, tags, nil, nopWriter{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Ref
}

type nopWriter struct{}

func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }

func TestSignThenVerify(t *testing.T) {
	reg := newTestRegistry(t)
	ref := pushRandom(t, reg, "demo/app")
	sv, v, _, _ := keyPair(t, "pw")
	c := basicClient("ci", "secret")
	ctx := context.Background()
	if err := c.Sign(ctx, ref, sv); err != nil {
		t.Fatal(err)
	}
	// By digest and by tag.
	tagRef, _ := name.ParseReference(reg.host + "/demo/app:latest")
	for _, r := range []name.Reference{ref, tagRef} {
		got, err := c.Verify(ctx, r, v)
		if err != nil {
			t.Fatalf("verify %s: %v", r, err)
		}
		if got.String() != ref.String() {
			t.Errorf("verify %s resolved to %s, want %s", r, got, ref)
		}
	}
	// The signature is stored the way cosign and Harbor expect.
	sigs, err := remote.Image(SignatureTag(ref.Context(), mustHash(t, ref)), c.options(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := sigs.Manifest()
	if len(m.Layers) != 1 || m.Layers[0].MediaType != SimpleSigningMediaType || m.Layers[0].Annotations[SignatureAnnotation] == "" {
		t.Fatalf("signature manifest %+v", m)
	}
	if !strings.HasSuffix(SignatureTag(ref.Context(), mustHash(t, ref)).TagStr(), ".sig") {
		t.Error("signature tag does not end in .sig")
	}
	// Signing again with the same key adds nothing.
	if err := c.Sign(ctx, ref, sv); err != nil {
		t.Fatal(err)
	}
	sigs, _ = remote.Image(SignatureTag(ref.Context(), mustHash(t, ref)), c.options(ctx)...)
	if m, _ := sigs.Manifest(); len(m.Layers) != 1 {
		t.Errorf("signing twice gave %d signature layers, want 1", len(m.Layers))
	}
	// A second key adds a second signature; both verify.
	sv2, v2, _, _ := keyPair(t, "other")
	if err := c.Sign(ctx, ref, sv2); err != nil {
		t.Fatal(err)
	}
	for _, key := range []signature.Verifier{v, v2} {
		if _, err := c.Verify(ctx, ref, key); err != nil {
			t.Errorf("verify after a second signature: %v", err)
		}
	}
}

func TestVerifyRefusesUnsignedAndWrongKey(t *testing.T) {
	reg := newTestRegistry(t)
	c := basicClient("ci", "secret")
	ctx := context.Background()
	unsigned := pushRandom(t, reg, "demo/unsigned")
	_, v, _, _ := keyPair(t, "pw")
	if _, err := c.Verify(ctx, unsigned, v); !errors.Is(err, ErrUnsigned) {
		t.Errorf("verify of an unsigned image: %v, want ErrUnsigned", err)
	}
	signed := pushRandom(t, reg, "demo/signed")
	other, _, _, _ := keyPair(t, "other")
	if err := c.Sign(ctx, signed, other); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(ctx, signed, v); !errors.Is(err, ErrWrongKey) {
		t.Errorf("verify of an image signed with another key: %v, want ErrWrongKey", err)
	}
}

func TestVerifyRefusesSignatureOfAnotherImage(t *testing.T) {
	reg := newTestRegistry(t)
	c := basicClient("ci", "secret")
	ctx := context.Background()
	a := pushRandom(t, reg, "demo/a")
	b := pushRandom(t, reg, "demo/a")
	sv, v, _, _ := keyPair(t, "pw")
	if err := c.Sign(ctx, a, sv); err != nil {
		t.Fatal(err)
	}
	// Copy a's signature manifest to b's signature tag: the payload names a's
	// digest, so b must not verify.
	sigs, _ := remote.Image(SignatureTag(a.Context(), mustHash(t, a)), c.options(ctx)...)
	if err := remote.Write(SignatureTag(b.Context(), mustHash(t, b)), sigs, c.options(ctx)...); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(ctx, b, v); err == nil || !strings.Contains(err.Error(), "not "+b.DigestStr()) {
		t.Errorf("verify with a moved signature: %v, want a digest mismatch", err)
	}
}

func TestKeyFiles(t *testing.T) {
	_, _, priv, pub := keyPair(t, "pw")
	if !strings.Contains(string(priv), "ENCRYPTED SIGSTORE PRIVATE KEY") || !strings.Contains(string(pub), "PUBLIC KEY") {
		t.Fatalf("key PEM types: %q / %q", firstLine(priv), firstLine(pub))
	}
	if _, err := LoadPrivateKey("k", priv, []byte("wrong")); err == nil || !strings.Contains(err.Error(), "COSIGN_PASSWORD") {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := LoadPrivateKey("k", pub, []byte("pw")); err == nil || !IsUsage(err) {
		t.Errorf("public key as private key: %v", err)
	}
	if _, err := LoadPublicKey("p", priv); err == nil {
		t.Error("private key accepted as public key")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "garbage"), []byte("nope"), 0o600)
	if _, err := LoadPrivateKey("garbage", []byte("nope"), nil); err == nil || !strings.Contains(err.Error(), "not a PEM") {
		t.Errorf("garbage key: %v", err)
	}
}

func firstLine(b []byte) string { s, _, _ := strings.Cut(string(b), "\n"); return s }

// TestVerifyRefusesSignatureCopiedToAnotherRepository (issue 17, finding 1):
// an image the company key signed for one repository, copied with its
// signature to another registry or another repository under the app's name,
// must not verify there: the payload's critical.identity.docker-reference
// names the repository it was signed for.
func TestVerifyRefusesSignatureCopiedToAnotherRepository(t *testing.T) {
	regA, regB := newTestRegistry(t), newTestRegistry(t)
	c := basicClient("ci", "secret")
	ctx := context.Background()
	signed := pushRandom(t, regA, "ops/debug-toolbox")
	sv, v, _, _ := keyPair(t, "pw")
	if err := c.Sign(ctx, signed, sv); err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(signed, c.options(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := remote.Image(SignatureTag(signed.Context(), mustHash(t, signed)), c.options(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{regB.host + "/demo/shop", regA.host + "/demo/shop", regB.host + "/ops/debug-toolbox"} {
		repo, _ := name.NewRepository(target)
		copied := repo.Digest(signed.DigestStr())
		if err := remote.Write(copied, img, c.options(ctx)...); err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(SignatureTag(repo, mustHash(t, copied)), sigs, c.options(ctx)...); err != nil {
			t.Fatal(err)
		}
		_, err := c.Verify(ctx, copied, v)
		if !errors.Is(err, ErrOtherRepository) || !strings.Contains(err.Error(), signed.Context().Name()) || !strings.Contains(err.Error(), target) {
			t.Errorf("verify of %s with the signature of %s: %v, want a refusal naming both repositories", copied, signed, err)
		}
	}
	// The original still verifies.
	if _, err := c.Verify(ctx, signed, v); err != nil {
		t.Errorf("verify of the original: %v", err)
	}
}

// TestCheckProofWithoutTheRegistry: the proof VerifyWithProof returns
// checks again offline for its own digest and key only, so whoever stores
// it (a ConfigMap anyone in a namespace may write) cannot make another
// image, another repository or another key's signature pass.
func TestCheckProofWithoutTheRegistry(t *testing.T) {
	reg := newTestRegistry(t)
	ref := pushRandom(t, reg, "demo/app")
	other := pushRandom(t, reg, "demo/app")
	sv, v, _, _ := keyPair(t, "pw")
	_, v2, _, _ := keyPair(t, "other")
	c := basicClient("ci", "secret")
	ctx := context.Background()
	if err := c.Sign(ctx, ref, sv); err != nil {
		t.Fatal(err)
	}
	d, proof, err := c.VerifyWithProof(ctx, ref, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckProof(proof, v, d); err != nil {
		t.Fatalf("the proof of %s does not check again: %v", d, err)
	}
	reg.Close() // nothing below may need the registry
	elsewhere, _ := name.NewDigest(reg.host + "/demo/copy@" + d.DigestStr())
	forged := proof
	forged.Payload = []byte(strings.Replace(string(proof.Payload), d.DigestStr(), other.DigestStr(), 1))
	for _, tc := range []struct {
		name  string
		proof SignatureProof
		v     signature.Verifier
		d     name.Digest
		want  string
	}{
		{"another image", proof, v, other, "it signs " + d.DigestStr()},
		{"another repository", proof, v, elsewhere, "it was signed for"},
		{"another key", proof, v2, d, "made with another key"},
		{"a payload changed after signing", forged, v, other, "made with another key"},
		{"no proof", SignatureProof{}, v, d, "made with another key"},
	} {
		err := CheckProof(tc.proof, tc.v, tc.d)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: CheckProof says %v, want %q", tc.name, err, tc.want)
		}
	}
}
