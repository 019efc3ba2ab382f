package registry

import (
	"archive/tar"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// writeContextTar writes the files under dir into a tar file, placed under
// workdir in the image, and returns its path. The tar is reproducible: names
// in byte order, every time set to mtime, owner root, no user or group names,
// only permission bits kept from the files.
func writeContextTar(dir, workdir string, mtime time.Time) (string, error) {
	f, err := os.CreateTemp("", "tsys-ci-layer-*.tar")
	if err != nil {
		return "", fmt.Errorf("creating a temporary file for the layer: %w", err)
	}
	ok := false
	defer func() {
		f.Close()
		if !ok {
			os.Remove(f.Name())
		}
	}()
	tw := tar.NewWriter(f)
	hdr := func(name string, typ byte, mode int64) *tar.Header {
		return &tar.Header{Name: name, Typeflag: typ, Mode: mode, ModTime: mtime, Format: tar.FormatPAX}
	}
	// The workdir and its parents, so the files have a home with sane modes.
	wd := strings.Trim(path.Clean(workdir), "/")
	if wd != "" {
		parts := strings.Split(wd, "/")
		for i := range parts {
			if err := tw.WriteHeader(hdr(strings.Join(parts[:i+1], "/")+"/", tar.TypeDir, 0o755)); err != nil {
				return "", fmt.Errorf("writing the layer: %w", err)
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
			case st.Mode().IsRegular():
				h := hdr(inImage, tar.TypeReg, perm)
				h.Size = st.Size()
				if err := tw.WriteHeader(h); err != nil {
					return fmt.Errorf("writing the layer: %w", err)
				}
				if err := copyFile(tw, full); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%s is a %s, which cannot go into an image; remove it from the context", full, st.Mode().Type())
			}
		}
		return nil
	}
	if err := walk(""); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("writing the layer: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("writing the layer: %w", err)
	}
	ok = true
	return f.Name(), nil
}
