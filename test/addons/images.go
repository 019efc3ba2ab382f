package addons

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
)

// ImageTarball is one add-on image as scripts/addon-images.sh built it.
type ImageTarball struct {
	// Image is the name the manifests run, e.g. lab.local/tsys/coredns:v1.15.0.
	Image string
	// Path is the `docker save` tarball, under ~/.cache/tsys-ci/addons/.
	Path string
}

// Dir is the image's cache directory: it also holds bin/ (the static
// binaries) and, for metallb-controller, crds/.
func (t ImageTarball) Dir() string { return filepath.Dir(t.Path) }

// BuildImages runs scripts/addon-images.sh in the repository at root
// (building only what is not cached; progress goes to progress) and returns
// its images. With names, only those components are built.
func BuildImages(ctx context.Context, root string, progress io.Writer, names ...string) ([]ImageTarball, error) {
	script := filepath.Join(root, "scripts", "addon-images.sh")
	cmd := exec.CommandContext(ctx, script, names...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = progress
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("building the lab add-on images (%s): %w; its progress above names the failed step and its log", script, err)
	}
	images, err := ParseImageList(out.String())
	if err != nil {
		return nil, fmt.Errorf("reading the output of %s: %w", script, err)
	}
	return images, nil
}

// ParseImageList reads addon-images.sh's stdout: "IMAGE<TAB>TARBALL" lines.
func ParseImageList(s string) ([]ImageTarball, error) {
	var out []ImageTarball
	seen := map[string]bool{}
	for i, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		image, path, ok := strings.Cut(line, "\t")
		if !ok || image == "" || strings.ContainsAny(image, " \t") || !filepath.IsAbs(path) || strings.Contains(path, "\t") {
			return nil, fmt.Errorf("line %d %q: want IMAGE<TAB>/absolute/path/image.tar", i+1, line)
		}
		if seen[image] {
			return nil, fmt.Errorf("line %d: image %s listed twice", i+1, image)
		}
		seen[image] = true
		out = append(out, ImageTarball{Image: image, Path: path})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no images listed")
	}
	return out, nil
}

// find returns the tarball of image.
func find(images []ImageTarball, image string) (ImageTarball, error) {
	for _, t := range images {
		if t.Image == image {
			return t, nil
		}
	}
	var names []string
	for _, t := range images {
		names = append(names, t.Image)
	}
	return ImageTarball{}, fmt.Errorf("image %s was not built (built: %s); run scripts/addon-images.sh", image, strings.Join(names, ", "))
}
