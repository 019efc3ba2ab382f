package localregistry

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// A small image pushed to the real registry comes back with the same
// digest and the same layer bytes, and the registry lists its tag.
func TestPushPull(t *testing.T) {
	r := ForTest(t)
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.Addr+"/tsys/small:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	want, _ := img.Digest()

	pulled, err := remote.Image(ref, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	got, err := pulled.Digest()
	if err != nil || got != want {
		t.Fatalf("pulled digest %v (%v), pushed %v", got, err, want)
	}
	wantLayers, _ := img.Layers()
	gotLayers, err := pulled.Layers()
	if err != nil || len(gotLayers) != len(wantLayers) {
		t.Fatalf("pulled %d layers (%v), pushed %d", len(gotLayers), err, len(wantLayers))
	}
	for i := range wantLayers {
		if !bytes.Equal(readLayer(t, wantLayers[i].Compressed), readLayer(t, gotLayers[i].Compressed)) {
			t.Errorf("layer %d differs after the round trip", i)
		}
	}
	tags, err := remote.List(ref.Context(), remote.WithContext(t.Context()))
	if err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Errorf("tags %v (%v), want [v1]", tags, err)
	}
	// The probe the lab's registry Deployment uses for liveness.
	resp, err := http.Get("http://" + r.DebugAddr + "/debug/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/debug/health answered %s", resp.Status)
	}
}

// An unknown image is a 404-style error, not an empty success.
func TestPullMissing(t *testing.T) {
	r := ForTest(t)
	ref, _ := name.ParseReference(r.Addr+"/tsys/absent:v1", name.Insecure)
	if _, err := remote.Image(ref, remote.WithContext(t.Context())); err == nil {
		t.Fatal("pulling an image never pushed succeeded")
	}
}

func readLayer(t *testing.T, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
