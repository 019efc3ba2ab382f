package registry

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fileLayer is a gzipped tar layer in a file whose digests were taken while
// it was written: one pass over the app's files, no copy in memory.
type fileLayer struct {
	path      string
	digest    v1.Hash // of the gzipped file
	diffID    v1.Hash // of the tar inside
	size      int64
	mediaType types.MediaType
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}

// countingHash hashes and counts what is written through it.
type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	return c.h.Write(b)
}

func (c *countingHash) sum() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(c.h.Sum(nil))}
}

// writeContextLayer writes the files under dir into a gzipped tar file,
// placed under workdir in the image. It is reproducible: names in byte
// order, every time set to mtime, owner root, no user or group names, only
// permission bits kept from the files, and a gzip header without name or
// time (gzip at BestSpeed, as go-containerregistry compresses). It lists
// every file it wrote, with its size and SHA-256 and, for a Go program, its
// build information.
func writeContextLayer(dir, workdir string, mtime time.Time, mediaType types.MediaType) (*fileLayer, []LayerFile, error) {
	f, err := os.CreateTemp("", "tsys-ci-layer-*.tar.gz")
	if err != nil {
		return nil, nil, fmt.Errorf("creating a temporary file for the layer: %w", err)
	}
	ok := false
	defer func() {
		f.Close()
		if !ok {
			os.Remove(f.Name())
		}
	}()
	compressed := &countingHash{h: sha256.New()}
	zw, err := gzip.NewWriterLevel(io.MultiWriter(f, compressed), gzip.BestSpeed)
	if err != nil {
		return nil, nil, err
	}
	var files []LayerFile
	uncompressed := &countingHash{h: sha256.New()}
	tw := tar.NewWriter(io.MultiWriter(zw, uncompressed))
	hdr := func(name string, typ byte, mode int64) *tar.Header {
		return &tar.Header{Name: name, Typeflag: typ, Mode: mode, ModTime: mtime, Format: tar.FormatPAX}
	}
	// The workdir and its parents, so the files have a home with sane modes.
	wd := strings.Trim(path.Clean(workdir), "/")
	if wd != "" {
		parts := strings.Split(wd, "/")
		for i := range parts {
			if err := tw.WriteHeader(hdr(strings.Join(parts[:i+1], "/")+"/", tar.TypeDir, 0o755)); err != nil {
				return nil, nil, fmt.Errorf("writing the layer: %w", err)
			}
		}
	}
	var walk func(rel string) error
	walk = func(rel string) error {
		names, err := sortedNames(filepath.Join(dir, rel))
		if err != nil {
			return fmt.Errorf("reading folder %s for the image: %w; fix its permissions or remove it from the context", filepath.Join(dir, rel), err)
		}
		for _, n := range names {
			if rel == "" && excluded[n] {
				continue
			}
			r := filepath.Join(rel, n)
			full := filepath.Join(dir, r)
			st, err := os.Lstat(full)
			if err != nil {
				return fmt.Errorf("reading %s for the image: %w", full, err)
			}
			inImage := path.Join(wd, filepath.ToSlash(r))
			perm := int64(st.Mode().Perm())
			switch {
			case st.Mode().IsDir():
				if err := tw.WriteHeader(hdr(inImage+"/", tar.TypeDir, perm)); err != nil {
					return fmt.Errorf("writing the layer: %w", err)
				}
				if err := walk(r); err != nil {
					return err
				}
			case st.Mode()&os.ModeSymlink != 0:
				target, err := os.Readlink(full)
				if err != nil {
					return fmt.Errorf("reading link %s for the image: %w", full, err)
				}
				h := hdr(inImage, tar.TypeSymlink, 0o777)
				h.Linkname = target
				if err := tw.WriteHeader(h); err != nil {
					return fmt.Errorf("writing the layer: %w", err)
				}
				files = append(files, LayerFile{Path: "/" + inImage, Link: target})
			case st.Mode().IsRegular():
				h := hdr(inImage, tar.TypeReg, perm)
				h.Size = st.Size()
				if err := tw.WriteHeader(h); err != nil {
					return fmt.Errorf("writing the layer: %w", err)
				}
				sum := &countingHash{h: sha256.New()}
				head, err := copyFile(io.MultiWriter(tw, sum), full)
				if err != nil {
					return err
				}
				if sum.n != st.Size() {
					return fmt.Errorf("%s changed while it was added to the image (%d bytes, then %d); build again once nothing writes to the context", full, st.Size(), sum.n)
				}
				files = append(files, LayerFile{Path: "/" + inImage, Size: sum.n, SHA256: sum.sum().Hex, Go: goBinaryInfo(full, head)})
			default:
				return fmt.Errorf("%s is a %s, which cannot go into an image; remove it from the context", full, st.Mode().Type())
			}
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, nil, fmt.Errorf("writing the layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, nil, fmt.Errorf("writing the layer: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, nil, fmt.Errorf("writing the layer: %w", err)
	}
	ok = true
	return &fileLayer{path: f.Name(), digest: compressed.sum(), diffID: uncompressed.sum(), size: compressed.n, mediaType: mediaType}, files, nil
}
