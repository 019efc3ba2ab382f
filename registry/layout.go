package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// WriteLayout writes img as the only image of an OCI image layout at dir.
// An existing layout there is replaced (its old blobs stay, unreferenced);
// any other non-empty folder is refused rather than overwritten.
func WriteLayout(dir string, img v1.Image) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("writing the image to %s: %w", dir, err)
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
			return &UsageError{fmt.Sprintf("--out %s is a folder that is not an OCI image layout; refusing to write into it, choose another --out", dir)}
		}
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing the image to %s: %w", dir, err)
	}
	if err := p.AppendImage(img); err != nil {
		return fmt.Errorf("writing the image to %s: %w", dir, err)
	}
	return nil
}

// ReadLayout finds the image with digest d in the OCI image layout at dir.
func ReadLayout(dir string, d v1.Hash) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the image layout %s: %w; run 'tsys-ci build' again", dir, err)
	}
	img, err := p.Image(d)
	if err != nil {
		return nil, fmt.Errorf("image %s is not in the layout %s: %w; run 'tsys-ci build' again", d, dir, err)
	}
	return img, nil
}

// LayoutBuild is what BuildToLayout made.
type LayoutBuild struct {
	Digest   v1.Hash
	Labels   map[string]string
	Contents Contents
}

// BuildToLayout builds the image and writes it to the layout at out; it
// returns the image's digest, labels and contents.
func BuildToLayout(ctx context.Context, o BuildOptions, out string) (LayoutBuild, error) {
	b, err := Build(ctx, o)
	if err != nil {
		return LayoutBuild{}, err
	}
	defer b.Close()
	if err := WriteLayout(out, b.Image); err != nil {
		return LayoutBuild{}, err
	}
	cf, err := b.Image.ConfigFile()
	if err != nil {
		return LayoutBuild{}, fmt.Errorf("reading the image config: %w", err)
	}
	return LayoutBuild{Digest: b.Digest, Labels: cf.Config.Labels, Contents: b.Contents}, nil
}
