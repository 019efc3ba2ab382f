package addons_test

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/tsys-group/tsys-ci/test/addons"
	"github.com/tsys-group/tsys-ci/test/addons/manifests"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// Every image scripts/addon-images.sh saves is the one the manifests name,
// FROM scratch, holding only static binaries, its entrypoint among them; and
// MetalLB's CRDs sit next to the controller's image for Install.
func TestBuiltImages(t *testing.T) {
	testenv.LookPath(t, "go")
	testenv.LookPath(t, "docker")
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	images, err := addons.BuildImages(t.Context(), root, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	var names []string
	for _, img := range images {
		names = append(names, img.Image)
	}
	if want := manifests.DefaultImages().All(); !slices.Equal(names, want) {
		t.Fatalf("built %v, the manifests run %v", names, want)
	}
	for _, img := range images {
		t.Run(filepath.Base(img.Dir()), func(t *testing.T) {
			tag, err := name.NewTag(img.Image)
			if err != nil {
				t.Fatal(err)
			}
			image, err := tarball.ImageFromPath(img.Path, &tag)
			if err != nil {
				t.Fatalf("%s has no image tagged %s: %v", img.Path, img.Image, err)
			}
			cfg, err := image.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			layers, err := image.Layers()
			if err != nil {
				t.Fatal(err)
			}
			// FROM scratch: every layer is one COPY of a binary.
			files := map[string][]byte{}
			for _, layer := range layers {
				readFiles(t, layer.Uncompressed, files)
			}
			if len(files) != len(layers) {
				t.Errorf("%d layers hold %d files %v; want one binary per layer and nothing else", len(layers), len(files), keys(files))
			}
			if len(cfg.Config.Entrypoint) != 1 || files[cfg.Config.Entrypoint[0]] == nil {
				t.Errorf("entrypoint %v is not a file in the image (files: %v)", cfg.Config.Entrypoint, keys(files))
			}
			for path, b := range files {
				f, err := elf.NewFile(bytes.NewReader(b))
				if err != nil {
					t.Errorf("%s is not an ELF binary: %v", path, err)
					continue
				}
				for _, p := range f.Progs {
					if p.Type == elf.PT_INTERP {
						t.Errorf("%s is dynamically linked; FROM scratch has no loader", path)
					}
				}
				f.Close()
			}
		})
	}
	controller := images[1]
	crds, _ := filepath.Glob(filepath.Join(controller.Dir(), "crds", "metallb.io_*.yaml"))
	if len(crds) != 7 {
		t.Errorf("%d MetalLB CRDs next to %s, want 7", len(crds), controller.Path)
	}
	for _, want := range []string{"bin/local-path-provisioner", "bin/local-path-helper"} {
		if _, err := os.Stat(filepath.Join(images[3].Dir(), want)); err != nil {
			t.Errorf("local-path-provisioner's cache lacks %s: %v", want, err)
		}
	}
}

func readFiles(t *testing.T, open func() (io.ReadCloser, error), files map[string][]byte) {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files["/"+strings.TrimPrefix(h.Name, "/")] = b
		}
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
