package registry

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestEmbeddedRegistryKeepsImagesAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	e, err := OpenEmbedded(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, _ := random.Image(500, 2)
	repo, _ := ParseRepository(host + "/library/app")
	tags, _ := ParseTags(repo, []string{"v1"})
	sv, v, _, _ := keyPair(t, "pw")
	c := Client{}
	ctx := context.Background()
	p, err := c.Push(ctx, img, repo, tags, sv, nopWriter{})
	if err != nil {
		t.Fatal(err)
	}
	// Move the tag to a second image: the journal must replay in order.
	img2, _ := random.Image(500, 1)
	p2, err := c.Push(ctx, img2, repo, tags, nil, nopWriter{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	e.Close()

	// A new process on the same data, on another port.
	e2, err := OpenEmbedded(dir, nil)
	if err != nil {
		t.Fatalf("reopening the registry data: %v", err)
	}
	defer e2.Close()
	srv2 := httptest.NewServer(e2)
	defer srv2.Close()
	host2 := strings.TrimPrefix(srv2.URL, "http://")
	for ref, want := range map[string]string{
		host2 + "/library/app@" + p.Digest.String(): p.Digest.String(),
		host2 + "/library/app:v1":                   p2.Digest.String(),
	} {
		r, _ := name.ParseReference(ref)
		back, err := remote.Image(r)
		if err != nil {
			t.Fatalf("after a restart, pulling %s: %v", ref, err)
		}
		if d, _ := back.Digest(); d.String() != want {
			t.Errorf("after a restart, %s is %s, want %s", ref, d, want)
		}
		layers, _ := back.Layers()
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatalf("after a restart, a layer of %s: %v", ref, err)
			}
			rc.Close()
		}
	}
	// The signature survived intact: it verifies with the key for the
	// digest, and names the repository it was signed for, whose address
	// was the old port (a signature is bound to HOST/PROJECT/NAME; the real
	// embedded registry keeps its address, 127.0.0.1:5055).
	d, _ := name.NewDigest(host2 + "/library/app@" + p.Digest.String())
	if _, err := c.Verify(ctx, d, v); !errors.Is(err, ErrOtherRepository) || !strings.Contains(err.Error(), host+"/library/app") {
		t.Errorf("after a restart on another port, the signature: %v, want it read back and bound to %s/library/app", err, host)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "blobs")); len(entries) == 0 {
		t.Error("no blobs on disk")
	}
}

func TestEmbeddedJournalTornLastLine(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "manifests.jsonl"), []byte(`{"op":"put","repo":"a","ref":"v1","bo`), 0o644)
	e, err := OpenEmbedded(dir, nil)
	if err != nil {
		t.Fatalf("a torn last journal line (a crash mid-write) must not stop the registry: %v", err)
	}
	e.Close()
	os.WriteFile(filepath.Join(dir, "manifests.jsonl"), []byte("garbage\n{}\n"), 0o644)
	if _, err := OpenEmbedded(dir, nil); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damage in the middle of the journal: %v", err)
	}
}

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:5055": true, "localhost:1": true, "[::1]:5055": true,
		"0.0.0.0:5055": false, ":5055": false, "10.0.0.1:5055": false, "nonsense": false} {
		if err := CheckLoopback(addr); (err == nil) != ok {
			t.Errorf("CheckLoopback(%q) = %v", addr, err)
		}
	}
}
