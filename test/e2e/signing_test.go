//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tsys-group/tsys-ci/registry"
)

// TestSignVerifyAgainstLabRegistry: against the lab's real registry (the
// distribution registry the nodes pull from), an image pushed by tsys-ci
// push pulls back with the digest push reported; tsys-ci verify refuses it
// while unsigned, accepts it once tsys-ci sign has signed it, and refuses it
// with another key.
func TestSignVerifyAgainstLabRegistry(t *testing.T) {
	// A digest of its own: the lab outlives a test run, and a signature
	// left by an earlier run must not make "unsigned" pass as signed.
	ref := helloImage(t, "signed", "HELLO_NONCE="+strconv.FormatInt(time.Now().UnixNano(), 10))
	bin, err := tsysCI()
	if err != nil {
		t.Fatal(err)
	}

	// Pull back: the manifest the registry serves has the pushed digest.
	d, err := name.NewDigest(ref, name.Insecure)
	if err != nil {
		t.Fatalf("push reported %q, not a reference by digest: %v", ref, err)
	}
	desc, err := remote.Get(d)
	if err != nil {
		t.Fatalf("pulling %s back from the lab registry: %v", ref, err)
	}
	if desc.Digest.String() != d.DigestStr() {
		t.Fatalf("lab registry served %s for %s", desc.Digest, ref)
	}

	dir := t.TempDir()
	keys := func(prefix, password string) (priv, pub string) {
		privPEM, pubPEM, err := registry.GenerateKeyPair([]byte(password))
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = filepath.Join(dir, prefix+".key"), filepath.Join(dir, prefix+".pub")
		if err := os.WriteFile(priv, privPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pub, pubPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		return priv, pub
	}
	priv, pub := keys("ci", "lab-secret")
	_, otherPub := keys("other", "other-secret")

	verify := func(pubKey string) (string, error) {
		out, err := exec.Command(bin, "verify", "--key", pubKey, ref).CombinedOutput()
		return string(out), err
	}
	if out, err := verify(pub); err == nil {
		t.Fatalf("tsys-ci verify accepted the unsigned image %s:\n%s", ref, out)
	}
	run(t, dir, []string{"COSIGN_PASSWORD=lab-secret"}, bin, "sign", "--key", priv, ref)
	if out, err := verify(pub); err != nil {
		t.Fatalf("tsys-ci verify refused the image it signed: %v\n%s", err, out)
	}
	out, err := verify(otherPub)
	if err == nil {
		t.Fatalf("tsys-ci verify accepted a signature made with another key:\n%s", out)
	}
	t.Logf("verify with another key refused as it should: %s", strings.TrimSpace(out))
}
