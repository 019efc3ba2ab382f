package localregistry

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/tsys-group/tsys-ci/test/addons"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// ForTest starts a registry for t and stops it when t ends. The binary comes
// from scripts/addon-images.sh (cached; the first run in a fresh cache builds
// it, about a minute). Without docker or go it skips, or fails under make test.
func ForTest(t testing.TB) *Registry {
	t.Helper()
	bin := BinaryForTest(t)
	var logw bytes.Buffer
	r, err := Start(t.Context(), bin, t.TempDir(), &logw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("registry log:\n%s", r.Log())
		}
	})
	return r
}

// BinaryForTest returns the path of the built registry binary.
func BinaryForTest(t testing.TB) string {
	t.Helper()
	testenv.LookPath(t, "go")
	testenv.LookPath(t, "docker")
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	images, err := addons.BuildImages(t.Context(), root, &progress, "registry")
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	bin := filepath.Join(images[0].Dir(), "bin", "registry")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("registry binary missing from its cache directory (%v); remove %s and build again", err, images[0].Dir())
	}
	return bin
}
