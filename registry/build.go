// Package registry builds, pushes, signs and verifies OCI images without a
// Docker daemon (go-containerregistry), and talks to Harbor's API
// (goharbor/go-client).
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Scratch is the --base value for an image with no base layers.
const Scratch = "scratch"

// BuildOptions describe one image: a base, the app's files as one layer and
// the runtime configuration. Everything that goes into the digest is here,
// so the same options give the same image.
type BuildOptions struct {
	Context    string // folder whose files become the layer
	Base       string // base image reference, or "scratch"
	Platform   v1.Platform
	Workdir    string   // where the files go in the image, and the working directory
	Entrypoint []string // nil keeps the base's
	Cmd        []string // nil keeps the base's
	Env        []string // K=V, replacing the base's value of K
	User       string   // UID[:GID]
	Ports      []string // N or N/tcp or N/udp
	Labels     map[string]string
	Created    time.Time // image and file times; fixed for reproducibility
	Remote     []remote.Option
}

// Built is an image made by Build.
type Built struct {
	Image    v1.Image
	Digest   v1.Hash
	Contents Contents
	tarPath  string
}

// Close removes the temporary layer file; call it once the image is written.
func (b *Built) Close() error { return os.Remove(b.tarPath) }

// excluded are folders of the context that never go into an image: version
// control and tsys-ci's own output (which is inside the context by default).
var excluded = map[string]bool{".git": true, ".tsys-ci": true}

// Build makes the image described by o. The layer is written to a temporary
// file that stays until the image has been written out (WriteLayout).
func Build(ctx context.Context, o BuildOptions) (*Built, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	base, baseInfo, err := baseImage(ctx, o)
	if err != nil {
		return nil, err
	}
	mt, err := base.MediaType()
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of base image %s: %w", o.Base, err)
	}
	layerType := types.OCILayer
	if mt == types.DockerManifestSchema2 {
		layerType = types.DockerLayer
	}
	// The layer is gzipped once, to a file, with its digests taken on the
	// way: no copy of it is held in memory, whatever the size of the app.
	layer, files, err := writeContextLayer(o.Context, o.Workdir, o.Created, layerType)
	if err != nil {
		return nil, err
	}
	tarPath := layer.path
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: o.Created},
			CreatedBy: "tsys-ci build: " + o.Workdir,
			Comment:   "files of the build context",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("adding the layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	cfg := applyConfig(cf.Config.DeepCopy(), o)
	img, err = mutate.Config(img, *cfg)
	if err != nil {
		return nil, fmt.Errorf("setting the image config: %w", err)
	}
	img, err = mutate.CreatedAt(img, v1.Time{Time: o.Created})
	if err != nil {
		return nil, fmt.Errorf("setting the image time: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		os.Remove(tarPath)
		return nil, fmt.Errorf("computing the image digest: %w", err)
	}
	return &Built{Image: img, Digest: d, Contents: Contents{Base: baseInfo, Files: files}, tarPath: tarPath}, nil
}

func (o BuildOptions) validate() error {
	if o.Base == "" {
		return &UsageError{"--base is required: an image reference, or 'scratch' for an empty base"}
	}
	if !strings.HasPrefix(o.Workdir, "/") {
		return &UsageError{fmt.Sprintf("--workdir %q must be an absolute path in the image, like /app", o.Workdir)}
	}
	for _, e := range o.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return &UsageError{fmt.Sprintf("--env %q must look like NAME=value", e)}
		}
	}
	for _, p := range o.Ports {
		if _, err := ParsePort(p); err != nil {
			return err
		}
	}
	if o.User != "" {
		if err := checkUser(o.User); err != nil {
			return err
		}
	}
	st, err := os.Stat(o.Context)
	if err != nil {
		return fmt.Errorf("reading the build context: %w; pass --context with an existing folder", err)
	}
	if !st.IsDir() {
		return &UsageError{fmt.Sprintf("--context %s is not a folder", o.Context)}
	}
	return nil
}

// UsageError is bad input from the user; commands exit with code 2 on it.
type UsageError struct{ Msg string }

// BadInput marks the error as the user's to fix: the CLI exits 2 on it.
func (e *UsageError) BadInput() bool { return true }

func (e *UsageError) Error() string { return e.Msg }

// IsUsage reports whether err is (or wraps) bad input from the user.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

// ParsePort turns "8080" or "8080/tcp" into the image config's key "8080/tcp".
func ParsePort(p string) (string, error) {
	num, proto, ok := strings.Cut(p, "/")
	if !ok {
		proto = "tcp"
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 65535 {
		return "", &UsageError{fmt.Sprintf("--port %q: the port must be a number from 1 to 65535, optionally followed by /tcp or /udp", p)}
	}
	if proto != "tcp" && proto != "udp" {
		return "", &UsageError{fmt.Sprintf("--port %q: the protocol must be tcp or udp", p)}
	}
	return strconv.Itoa(n) + "/" + proto, nil
}

func checkUser(u string) error {
	uid, gid, hasGID := strings.Cut(u, ":")
	bad := func(s string) bool {
		n, err := strconv.ParseUint(s, 10, 32)
		return err != nil || n > 1<<31
	}
	if bad(uid) || (hasGID && bad(gid)) {
		return &UsageError{fmt.Sprintf("--user %q must be a numeric UID or UID:GID (names need /etc/passwd in the image)", u)}
	}
	return nil
}

// baseImage pulls the base (for the platform) and says what it was.
func baseImage(ctx context.Context, o BuildOptions) (v1.Image, BaseImage, error) {
	info := BaseImage{Ref: o.Base}
	if o.Base == Scratch {
		img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, info, err
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Variant = o.Platform.OS, o.Platform.Architecture, o.Platform.Variant
		img, err = mutate.ConfigFile(img, cf)
		return img, info, err
	}
	ref, err := name.ParseReference(o.Base)
	if err != nil {
		return nil, info, &UsageError{fmt.Sprintf("--base %q is not a valid image reference: %v", o.Base, err)}
	}
	info.Repository = ref.Context().Name()
	opts := append([]remote.Option{remote.WithContext(ctx), remote.WithPlatform(o.Platform), remote.WithTransport(defaultTransport)}, o.Remote...)
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return nil, info, fmt.Errorf("pulling base image %s: %w", ref, explain(err, ref.Context().RegistryStr()))
	}
	d, err := img.Digest()
	if err != nil {
		return nil, info, fmt.Errorf("reading the digest of base image %s: %w", ref, err)
	}
	info.Digest = d.String()
	return img, info, nil
}

// applyConfig sets the runtime configuration of o over the base's.
func applyConfig(c *v1.Config, o BuildOptions) *v1.Config {
	c.WorkingDir = o.Workdir
	if o.Entrypoint != nil {
		c.Entrypoint = o.Entrypoint
		if o.Cmd == nil {
			c.Cmd = nil // a new entrypoint must not inherit the base's arguments
		}
	}
	if o.Cmd != nil {
		c.Cmd = o.Cmd
	}
	if o.User != "" {
		c.User = o.User
	}
	for _, e := range o.Env {
		k, _, _ := strings.Cut(e, "=")
		kept := c.Env[:0:0]
		for _, old := range c.Env {
			if ok, _, _ := strings.Cut(old, "="); ok != k {
				kept = append(kept, old)
			}
		}
		c.Env = append(kept, e)
	}
	if len(o.Ports) > 0 && c.ExposedPorts == nil {
		c.ExposedPorts = map[string]struct{}{}
	}
	for _, p := range o.Ports {
		k, _ := ParsePort(p) // validated already
		c.ExposedPorts[k] = struct{}{}
	}
	if len(o.Labels) > 0 && c.Labels == nil {
		c.Labels = map[string]string{}
	}
	for k, v := range o.Labels {
		c.Labels[k] = v
	}
	return c
}

// sortedNames lists a folder in byte order, so the tar is the same everywhere.
func sortedNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// copyFile copies path into w, saying which file could not be read; it
// returns the file's first bytes, to recognise its format.
func copyFile(w io.Writer, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s for the image: %w; fix its permissions or remove it from the context", path, err)
	}
	defer f.Close()
	hr := &headReader{r: f}
	if _, err := io.Copy(w, hr); err != nil {
		return nil, fmt.Errorf("reading %s for the image: %w", path, err)
	}
	return hr.head, nil
}
