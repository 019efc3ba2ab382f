package registry

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// Flags come from Jenkinsfiles and people: the parsers must never panic and
// must only accept what they promise.

func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"80", "8080/tcp", "53/udp", "0", "65536", "http", "80/sctp", "/", "-1/tcp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePort(s)
		if err != nil {
			return
		}
		num, proto, ok := strings.Cut(k, "/")
		n, perr := strconv.Atoi(num)
		if !ok || perr != nil || n < 1 || n > 65535 || (proto != "tcp" && proto != "udp") {
			t.Fatalf("ParsePort(%q) = %q, which is not N/tcp or N/udp", s, k)
		}
	})
}

func FuzzParseTags(f *testing.F) {
	for _, s := range []string{"v1", "build-12", "0123456", "-x", ".x", "a:b", "", strings.Repeat("a", 129)} {
		f.Add(s)
	}
	repo, _ := ParseRepository("registry.example.com/demo/app")
	f.Fuzz(func(t *testing.T, s string) {
		tags, err := ParseTags(repo, []string{s})
		if err != nil {
			return
		}
		if len(tags) != 1 || tags[0].TagStr() != s || !tagPattern.MatchString(s) {
			t.Fatalf("ParseTags accepted %q as %v", s, tags)
		}
	})
}

// FuzzEmbeddedJournal: whatever is in the journal file, opening the
// registry answers with a registry or an error, never a panic.
func FuzzEmbeddedJournal(f *testing.F) {
	f.Add([]byte(`{"op":"put","repo":"a/b","ref":"v1","mediaType":"application/vnd.oci.image.manifest.v1+json","body":"e30="}` + "\n"))
	f.Add([]byte(`{"op":"delete","repo":"a","ref":"v1"}` + "\n"))
	f.Add([]byte("garbage\n"))
	f.Fuzz(func(t *testing.T, journal []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "manifests.jsonl"), journal, 0o644); err != nil {
			t.Fatal(err)
		}
		if e, err := OpenEmbedded(dir, nil); err == nil {
			e.Close()
		}
	})
}

// Attestations, SBOMs and provenances come from a registry anyone with
// push rights writes to: reading them must never panic, and an envelope
// is only accepted with a signature that verifies.
func FuzzReadAttestation(f *testing.F) {
	priv, pub, err := GenerateKeyPair([]byte("fuzz"))
	if err != nil {
		f.Fatal(err)
	}
	sv, err := LoadPrivateKey("fuzz.key", priv, []byte("fuzz"))
	if err != nil {
		f.Fatal(err)
	}
	v, err := LoadPublicKey("fuzz.pub", pub)
	if err != nil {
		f.Fatal(err)
	}
	st := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"00"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`)
	sig, _ := sv.SignMessage(bytes.NewReader(dsse.PAE(InTotoPayloadType, st)))
	good, _ := json.Marshal(dsse.Envelope{PayloadType: InTotoPayloadType, Payload: base64.StdEncoding.EncodeToString(st),
		Signatures: []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}})
	for _, s := range [][]byte{good, []byte(`{}`), []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"!!","signatures":[]}`), nil} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := readAttestation(static.NewLayer(b, DSSEMediaType), v)
		if err != nil {
			return
		}
		var env dsse.Envelope
		if json.Unmarshal(b, &env) != nil || got == nil {
			t.Fatalf("accepted %q, which is no envelope", b)
		}
		payload, _ := base64.StdEncoding.DecodeString(env.Payload)
		ok := false
		for _, s := range env.Signatures {
			raw, _ := base64.StdEncoding.DecodeString(s.Sig)
			ok = ok || v.VerifySignature(bytes.NewReader(raw), bytes.NewReader(dsse.PAE(env.PayloadType, payload))) == nil
		}
		if !ok {
			t.Fatalf("accepted %q without a signature that verifies", b)
		}
	})
}

func FuzzSummarizeSBOM(f *testing.F) {
	ref, _ := name.NewDigest("registry.example.com/demo/app@sha256:5555555555555555555555555555555555555555555555555555555555555555")
	sbom, _ := SBOM(ref, sampleContents, "tsys-ci test")
	for _, s := range [][]byte{sbom, []byte(`{"bomFormat":"CycloneDX"}`), []byte(`{"bomFormat":"CycloneDX","components":[{"type":"library","components":[{}]}]}`), []byte(`[]`)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := SummarizeSBOM(b)
		if err == nil && (s.Files+s.Libraries > s.Components || s.GoModules > s.Libraries || s.GoPrograms > s.Files) {
			t.Fatalf("inconsistent summary %+v of %q", s, b)
		}
	})
}

func FuzzSameRepository(f *testing.F) {
	for _, s := range []string{"https://git.example.com/team/app.git", "git@git.example.com:team/app", "ssh://git@git.example.com:2222/team/app", ":", "@:", "", "http://[::1]/x"} {
		f.Add(s, "https://git.example.com/team/app")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if SameRepository(a, b) != SameRepository(b, a) {
			t.Fatalf("SameRepository(%q, %q) is not symmetric", a, b)
		}
		if SameRepository(a, b) && normalRepository(a) == "" {
			t.Fatalf("%q and %q are the same, but name nothing", a, b)
		}
	})
}
