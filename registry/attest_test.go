package registry

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

var (
	testSBOM       = Predicate{Type: PredicateCycloneDX, Content: json.RawMessage(`{"bomFormat":"CycloneDX","specVersion":"1.5","version":1}`)}
	testProvenance = Predicate{Type: PredicateSLSAv1, Content: json.RawMessage(`{"buildDefinition":{"buildType":"https://example.com/t","externalParameters":{}},"runDetails":{"builder":{"id":"urn:tsys-ci:test"}}}`)}
)

func TestAttestThenRead(t *testing.T) {
	reg := newTestRegistry(t)
	ref := pushRandom(t, reg, "demo/app")
	sv, v, _, _ := keyPair(t, "pw")
	c := basicClient("ci", "secret")
	ctx := context.Background()
	if _, err := c.Attestation(ctx, ref, v, PredicateCycloneDX); !errors.Is(err, ErrNoAttestation) || !strings.Contains(err.Error(), ".att") {
		t.Fatalf("no attestations yet: %v, want ErrNoAttestation naming the .att tag", err)
	}
	if err := c.Attest(ctx, ref, sv, testSBOM, testProvenance); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Predicate{testSBOM, testProvenance} {
		st, err := c.Attestation(ctx, ref, v, p.Type)
		if err != nil {
			t.Fatalf("reading %s: %v", p.Type, err)
		}
		if st.Type != InTotoStatementV1 || st.Subject[0].Name != ref.Context().Name() || string(st.Predicate) != string(p.Content) {
			t.Errorf("%s read back as %+v", p.Type, st)
		}
	}
	_, other, _, _ := keyPair(t, "other")
	if _, err := c.Attestation(ctx, ref, other, PredicateSLSAv1); !errors.Is(err, ErrNoAttestation) || !strings.Contains(err.Error(), "another key") {
		t.Errorf("another key: %v, want ErrNoAttestation saying another key", err)
	}
	// Attesting again replaces ours instead of piling them up.
	if err := c.Attest(ctx, ref, sv, testSBOM, testProvenance); err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(AttestationTag(ref.Context(), mustHash(t, ref)), c.options(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := img.Manifest(); len(m.Layers) != 2 {
		t.Errorf("%d attestation layers after attesting twice, want 2", len(m.Layers))
	}
}

// The attestations of one image, copied next to another image, are about
// the first: they do not vouch for the second.
func TestAttestationOfAnotherImageRefused(t *testing.T) {
	reg := newTestRegistry(t)
	a, b := pushRandom(t, reg, "demo/app"), pushRandom(t, reg, "demo/app")
	sv, v, _, _ := keyPair(t, "pw")
	c := basicClient("ci", "secret")
	ctx := context.Background()
	if err := c.Attest(ctx, a, sv, testProvenance); err != nil {
		t.Fatal(err)
	}
	atts, err := remote.Image(AttestationTag(a.Context(), mustHash(t, a)), c.options(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(AttestationTag(b.Context(), mustHash(t, b)), atts, c.options(ctx)...); err != nil {
		t.Fatal(err)
	}
	_, err = c.Attestation(ctx, b, v, PredicateSLSAv1)
	if !errors.Is(err, ErrNoAttestation) || !strings.Contains(err.Error(), a.DigestStr()) {
		t.Errorf("copied attestation: %v, want ErrNoAttestation naming %s", err, a.DigestStr())
	}
}
