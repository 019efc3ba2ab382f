package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tsys-group/tsys-ci/test/testenv"
)

// cosignVersion is the release of the real cosign CLI the interop tests
// run; scripts/cosign.sh builds it into the cache.
const cosignVersion = "v2.6.5"

// cosignBinary returns the real cosign CLI. Missing, it is built by
// scripts/cosign.sh under `make test` (about 3 minutes cold) and the test
// skips on a developer's machine.
func cosignBinary(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("TSYS_CI_CACHE") // where scripts/cosign.sh builds it
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache", "tsys-ci")
	}
	bin := filepath.Join(cache, "cosign", cosignVersion, "cosign")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if !testenv.Required() {
		testenv.Missing(t, "cosign "+cosignVersion+" is not built; run scripts/cosign.sh")
	}
	_, self, _, _ := runtime.Caller(0)
	out, err := exec.Command(filepath.Join(filepath.Dir(self), "..", "scripts", "cosign.sh")).Output()
	if err != nil {
		t.Fatalf("scripts/cosign.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// cosignEnv runs cosign offline against the test registry: credentials from
// a Docker config of its own, a private HOME, the key's password.
func cosignEnv(t *testing.T, reg *testRegistry, password string) []string {
	t.Helper()
	dir := t.TempDir()
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{
		reg.host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("ci:secret"))},
	}})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{
		"HOME=" + dir, "DOCKER_CONFIG=" + dir, "TUF_ROOT=" + filepath.Join(dir, "tuf"),
		"COSIGN_PASSWORD=" + password, "PATH=" + os.Getenv("PATH"),
	}
}

func runCosign(t *testing.T, bin string, env []string, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Dir = env, dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestCosignVerifiesTsysCISignature: an image signed by tsys-ci, with a key
// tsys-ci generated, passes the real `cosign verify`; and cosign refuses it
// with another key, so the check is real.
func TestCosignVerifiesTsysCISignature(t *testing.T) {
	bin := cosignBinary(t)
	reg := newTestRegistry(t)
	ref := pushRandom(t, reg, "demo/app")
	sv, _, priv, pub := keyPair(t, "pw")
	if err := basicClient("ci", "secret").Sign(context.Background(), ref, sv); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tsys.pub"), pub, 0o644)
	os.WriteFile(filepath.Join(dir, "tsys.key"), priv, 0o600)
	env := cosignEnv(t, reg, "pw")
	out, err := runCosign(t, bin, env, dir, "verify", "--key", "tsys.pub", "--insecure-ignore-tlog=true", ref.String())
	if err != nil {
		t.Fatalf("cosign verify of tsys-ci's signature failed: %v\n%s", err, out)
	}
	if !strings.Contains(out, ref.DigestStr()) {
		t.Errorf("cosign verify output does not name the digest:\n%s", out)
	}
	_, _, _, otherPub := keyPair(t, "other")
	os.WriteFile(filepath.Join(dir, "other.pub"), otherPub, 0o644)
	if out, err := runCosign(t, bin, env, dir, "verify", "--key", "other.pub", "--insecure-ignore-tlog=true", ref.String()); err == nil {
		t.Fatalf("cosign verify with another key succeeded:\n%s", out)
	}
	// cosign reads tsys-ci's encrypted private key: it signs a second image
	// with it, and tsys-ci verifies that with the matching public key.
	ref2 := pushRandom(t, reg, "demo/app2")
	if out, err := runCosign(t, bin, env, dir, "sign", "--key", "tsys.key", "--tlog-upload=false", "-y", ref2.String()); err != nil {
		t.Fatalf("cosign sign with tsys-ci's key: %v\n%s", err, out)
	}
	v, err := LoadPublicKey("tsys.pub", pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := basicClient("ci", "secret").Verify(context.Background(), ref2, v); err != nil {
		t.Fatalf("tsys-ci verify of cosign's signature with tsys-ci's key: %v", err)
	}
}

// TestTsysCIVerifiesCosignSignature: keys from `cosign generate-key-pair`,
// an image signed by `cosign sign`; tsys-ci verifies it, refuses it with
// another key, and signs with cosign's private key in a way cosign accepts.
func TestTsysCIVerifiesCosignSignature(t *testing.T) {
	bin := cosignBinary(t)
	reg := newTestRegistry(t)
	ref := pushRandom(t, reg, "demo/app")
	dir := t.TempDir()
	env := cosignEnv(t, reg, "pw")
	if out, err := runCosign(t, bin, env, dir, "generate-key-pair"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	if out, err := runCosign(t, bin, env, dir, "sign", "--key", "cosign.key", "--tlog-upload=false", "-y", ref.String()); err != nil {
		t.Fatalf("cosign sign: %v\n%s", err, out)
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "cosign.pub"))
	v, err := LoadPublicKey("cosign.pub", pub)
	if err != nil {
		t.Fatal(err)
	}
	c := basicClient("ci", "secret")
	if _, err := c.Verify(context.Background(), ref, v); err != nil {
		t.Fatalf("tsys-ci verify of cosign's signature: %v", err)
	}
	_, other, _, _ := keyPair(t, "other")
	if _, err := c.Verify(context.Background(), ref, other); err == nil {
		t.Fatal("tsys-ci verify with another key accepted cosign's signature")
	}
	// cosign's signature names its repository too (issue 17, finding 1):
	// copied with the image under another name, it does not verify there.
	copied := copyWithSignature(t, c, ref, reg.host+"/demo/other")
	if _, err := c.Verify(context.Background(), copied, v); !errors.Is(err, ErrOtherRepository) {
		t.Fatalf("tsys-ci verify of cosign's signature copied to %s: %v, want ErrOtherRepository", copied, err)
	}
	priv, _ := os.ReadFile(filepath.Join(dir, "cosign.key"))
	sv, err := LoadPrivateKey("cosign.key", priv, []byte("pw"))
	if err != nil {
		t.Fatalf("loading cosign's private key: %v", err)
	}
	ref2 := pushRandom(t, reg, "demo/app2")
	if err := c.Sign(context.Background(), ref2, sv); err != nil {
		t.Fatal(err)
	}
	if out, err := runCosign(t, bin, env, dir, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true", ref2.String()); err != nil {
		t.Fatalf("cosign verify of tsys-ci's signature made with cosign's key: %v\n%s", err, out)
	}
}

// copyWithSignature copies the image at ref and its signature manifest to
// repository to, as someone moving a signed image under another name would.
func copyWithSignature(t *testing.T, c Client, ref name.Digest, to string) name.Digest {
	t.Helper()
	ctx := context.Background()
	img, err := remote.Image(ref, c.options(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := remote.Image(SignatureTag(ref.Context(), mustHash(t, ref)), c.options(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := name.NewRepository(to)
	dst := repo.Digest(ref.DigestStr())
	if err := remote.Write(dst, img, c.options(ctx)...); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(SignatureTag(repo, mustHash(t, dst)), sigs, c.options(ctx)...); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestCosignVerifiesTsysCIAttestations: the SBOM and provenance tsys-ci
// attaches pass the real `cosign verify-attestation --type cyclonedx` and
// `--type slsaprovenance1`, and cosign refuses them with another key.
func TestCosignVerifiesTsysCIAttestations(t *testing.T) {
	bin := cosignBinary(t)
	reg := newTestRegistry(t)
	ref := pushRandom(t, reg, "demo/app")
	sv, _, _, pub := keyPair(t, "pw")
	if err := basicClient("ci", "secret").Attest(context.Background(), ref, sv, testSBOM, testProvenance); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tsys.pub"), pub, 0o644)
	_, _, _, otherPub := keyPair(t, "other")
	os.WriteFile(filepath.Join(dir, "other.pub"), otherPub, 0o644)
	env := cosignEnv(t, reg, "pw")
	for _, typ := range []string{"cyclonedx", "slsaprovenance1"} {
		out, err := runCosign(t, bin, env, dir, "verify-attestation", "--type", typ, "--key", "tsys.pub", "--insecure-ignore-tlog=true", ref.String())
		if err != nil {
			t.Fatalf("cosign verify-attestation --type %s of tsys-ci's attestation failed: %v\n%s", typ, err, out)
		}
		t.Logf("cosign verify-attestation --type %s:\n%s", typ, out)
		if !strings.Contains(out, `"payloadType":"application/vnd.in-toto+json"`) {
			t.Errorf("cosign printed no envelope for --type %s:\n%s", typ, out)
		}
		if out, err := runCosign(t, bin, env, dir, "verify-attestation", "--type", typ, "--key", "other.pub", "--insecure-ignore-tlog=true", ref.String()); err == nil {
			t.Fatalf("cosign verify-attestation --type %s with another key succeeded:\n%s", typ, out)
		}
	}
}

// TestTsysCIReadsCosignAttestations: attestations made by the real `cosign
// attest` with a cosign key pair are read and checked by tsys-ci, and
// refused with another key.
func TestTsysCIReadsCosignAttestations(t *testing.T) {
	bin := cosignBinary(t)
	reg := newTestRegistry(t)
	ref := pushRandom(t, reg, "demo/app")
	dir := t.TempDir()
	env := cosignEnv(t, reg, "pw")
	if out, err := runCosign(t, bin, env, dir, "generate-key-pair"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	for typ, p := range map[string]Predicate{"cyclonedx": testSBOM, "slsaprovenance1": testProvenance} {
		os.WriteFile(filepath.Join(dir, typ+".json"), p.Content, 0o644)
		if out, err := runCosign(t, bin, env, dir, "attest", "--key", "cosign.key", "--type", typ, "--predicate", typ+".json", "--tlog-upload=false", "-y", ref.String()); err != nil {
			t.Fatalf("cosign attest --type %s: %v\n%s", typ, err, out)
		}
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "cosign.pub"))
	v, err := LoadPublicKey("cosign.pub", pub)
	if err != nil {
		t.Fatal(err)
	}
	c := basicClient("ci", "secret")
	for _, p := range []Predicate{testSBOM, testProvenance} {
		st, err := c.Attestation(context.Background(), ref, v, p.Type)
		if err != nil {
			t.Fatalf("tsys-ci reading cosign's %s attestation: %v", p.Type, err)
		}
		// cosign decodes and re-encodes a provenance (adding an empty
		// runDetails.metadata), so the content is compared by a value.
		for _, want := range []string{`"bomFormat":"CycloneDX"`, `"id":"urn:tsys-ci:test"`} {
			if strings.Contains(string(p.Content), want) && !strings.Contains(string(st.Predicate), want) {
				t.Errorf("cosign's %s predicate read as %s, want it to hold %s", p.Type, st.Predicate, want)
			}
		}
	}
	_, other, _, _ := keyPair(t, "other")
	if _, err := c.Attestation(context.Background(), ref, other, PredicateSLSAv1); !errors.Is(err, ErrNoAttestation) {
		t.Errorf("cosign's attestation with another key: %v, want ErrNoAttestation", err)
	}
}

// TestCosignVerifiesBuiltImageSBOMAndProvenance: a real build (a Go
// program in its layer) pushed and attested with the SBOM made from its
// contents and a provenance naming its source; the real cosign accepts
// both, and tsys-ci checks the provenance's source repository.
func TestCosignVerifiesBuiltImageSBOMAndProvenance(t *testing.T) {
	bin := cosignBinary(t)
	reg := newTestRegistry(t)
	dir := appDir(t)
	self, _ := os.Executable()
	exe, _ := os.ReadFile(self)
	os.WriteFile(filepath.Join(dir, "server"), exe, 0o755)
	b, err := Build(context.Background(), scratchOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	repo, _ := ParseRepository(reg.host + "/demo/app")
	ref := repo.Digest(b.Digest.String())
	sbom, err := SBOM(ref, b.Contents, "tsys-ci test")
	if err != nil {
		t.Fatal(err)
	}
	prov, _ := json.Marshal(Provenance{
		BuildDefinition: BuildDefinition{BuildType: BuildTypeV1,
			ExternalParameters: ExternalParameters{Source: SourceParameters{Repository: "https://git.example.com/team/app.git", Ref: "main", Commit: "89abcdef0123456789abcdef0123456789abcdef"},
				Build: json.RawMessage(`{"context":".","base":"scratch"}`)},
			InternalParameters:   &InternalParameters{JenkinsURL: "https://jenkins.example.com/", Job: "team/app", BuildNumber: "12"},
			ResolvedDependencies: []ResourceDescriptor{{URI: "git+https://git.example.com/team/app.git", Name: "source", Digest: map[string]string{"gitCommit": "89abcdef0123456789abcdef0123456789abcdef"}}},
		},
		RunDetails: RunDetails{Builder: Builder{ID: "https://jenkins.example.com/"}, Metadata: &BuildMetadata{InvocationID: "https://jenkins.example.com/job/team/job/app/12/"}},
	})
	sv, v, _, pub := keyPair(t, "pw")
	c := basicClient("ci", "secret")
	if _, err := c.PushAttested(context.Background(), b.Image, repo, nil, sv,
		[]Predicate{{Type: PredicateCycloneDX, Content: sbom}, {Type: PredicateSLSAv1, Content: prov}}, nopWriter{}); err != nil {
		t.Fatal(err)
	}
	wd := t.TempDir()
	os.WriteFile(filepath.Join(wd, "tsys.pub"), pub, 0o644)
	env := cosignEnv(t, reg, "pw")
	for _, typ := range []string{"cyclonedx", "slsaprovenance1"} {
		if out, err := runCosign(t, bin, env, wd, "verify-attestation", "--type", typ, "--key", "tsys.pub", "--insecure-ignore-tlog=true", ref.String()); err != nil {
			t.Fatalf("cosign verify-attestation --type %s of a built image: %v\n%s", typ, err, out)
		}
	}
	if _, err := c.VerifyProvenance(context.Background(), ref, v, "git@git.example.com:team/app.git"); err != nil {
		t.Errorf("provenance from the spec's repository refused: %v", err)
	}
	_, err = c.VerifyProvenance(context.Background(), ref, v, "https://git.example.com/team/other")
	if !errors.Is(err, ErrOtherSource) || !strings.Contains(err.Error(), "https://git.example.com/team/app.git") || !strings.Contains(err.Error(), "https://git.example.com/team/other") {
		t.Errorf("provenance from another repository: %v, want ErrOtherSource naming both", err)
	}
}
