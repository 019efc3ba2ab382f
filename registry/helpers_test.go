package registry

import (
	"archive/tar"
	"io"
	"log"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// layerFiles lists the top layer's entries and their permission bits.
func layerFiles(t *testing.T, img v1.Image) map[string]int64 {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]int64{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h.Mode
	}
}
