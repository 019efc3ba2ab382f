package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

var linuxAMD64 = v1.Platform{OS: "linux", Architecture: "amd64"}

// appDir makes a small app folder: files, a subfolder, a symlink, and the
// folders a build must leave out.
func appDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(rel, content string, mode os.FileMode) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("server.sh", "#!/bin/sh\necho hello\n", 0o755)
	write("static/index.html", "<h1>hi</h1>\n", 0o644)
	write(".git/HEAD", "ref: refs/heads/main\n", 0o644)
	write(".tsys-ci/build.json", "{}", 0o644)
	if err := os.Symlink("static/index.html", filepath.Join(dir, "index.html")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func scratchOptions(dir string) BuildOptions {
	return BuildOptions{
		Context: dir, Base: Scratch, Platform: linuxAMD64, Workdir: "/app",
		Entrypoint: []string{"/app/server.sh"}, Env: []string{"A=1"}, User: "1000:1000",
		Ports: []string{"8080", "9090/udp"}, Labels: map[string]string{"org.opencontainers.image.revision": "abc"},
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func TestBuildIsReproducible(t *testing.T) {
	dir := appDir(t)
	ctx := context.Background()
	first, err := Build(ctx, scratchOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	// Touch every file: a new mtime must not change the image.
	later := time.Now().Add(time.Hour)
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, later, later) })
	second, err := Build(ctx, scratchOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if first.Digest != second.Digest {
		t.Fatalf("two builds of the same inputs gave %s and %s", first.Digest, second.Digest)
	}
	// And a changed file must change it.
	os.WriteFile(filepath.Join(dir, "static/index.html"), []byte("changed"), 0o644)
	third, err := Build(ctx, scratchOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if third.Digest == first.Digest {
		t.Fatal("changing a file did not change the digest")
	}
}

func TestBuildConfigAndFiles(t *testing.T) {
	dir := appDir(t)
	b, err := Build(context.Background(), scratchOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// go-containerregistry's own check: digests, diff IDs, sizes, config
	// and manifest agree with the bytes.
	if err := validate.Image(b.Image); err != nil {
		t.Fatalf("the built image does not validate: %v", err)
	}
	cf, err := b.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.WorkingDir != "/app" || c.User != "1000:1000" || strings.Join(c.Entrypoint, " ") != "/app/server.sh" {
		t.Errorf("config = %+v", c)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("8080/tcp not exposed: %v", c.ExposedPorts)
	}
	if _, ok := c.ExposedPorts["9090/udp"]; !ok {
		t.Errorf("9090/udp not exposed: %v", c.ExposedPorts)
	}
	if c.Labels["org.opencontainers.image.revision"] != "abc" {
		t.Errorf("labels = %v", c.Labels)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || !cf.Created.Time.Equal(scratchOptions(dir).Created) {
		t.Errorf("config file os/arch/created = %s/%s/%s", cf.OS, cf.Architecture, cf.Created)
	}
	files := layerFiles(t, b.Image)
	for _, want := range []string{"app/", "app/server.sh", "app/static/index.html", "app/index.html"} {
		if _, ok := files[want]; !ok {
			t.Errorf("%s missing from the layer; has %v", want, files)
		}
	}
	for name := range files {
		if strings.Contains(name, ".git") || strings.Contains(name, ".tsys-ci") {
			t.Errorf("%s should have been left out", name)
		}
	}
	if files["app/server.sh"] != 0o755 {
		t.Errorf("server.sh mode %o, want 755", files["app/server.sh"])
	}
}

func TestBuildOnBaseImage(t *testing.T) {
	reg := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(nopLogger())))
	defer reg.Close()
	base, err := random.Image(100, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := base.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"A=base", "PATH=/bin"}
	cf.Config.Cmd = []string{"base-cmd"}
	base, _ = mutate.ConfigFile(base, cf)
	ref, _ := name.ParseReference(strings.TrimPrefix(reg.URL, "http://") + "/library/base:1")
	if err := remote.Write(ref, base); err != nil {
		t.Fatal(err)
	}
	o := scratchOptions(appDir(t))
	o.Base = ref.String()
	b, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := validate.Image(b.Image); err != nil {
		t.Fatalf("the image built on a base does not validate: %v", err)
	}
	layers, _ := b.Image.Layers()
	if len(layers) != 3 {
		t.Errorf("image has %d layers, want the base's 2 plus 1", len(layers))
	}
	got, _ := b.Image.ConfigFile()
	if strings.Join(got.Config.Env, " ") != "PATH=/bin A=1" {
		t.Errorf("env = %v, want the base's PATH and our A=1", got.Config.Env)
	}
	if got.Config.Cmd != nil {
		t.Errorf("cmd = %v: a new entrypoint must drop the base's cmd", got.Config.Cmd)
	}

	o.Base = strings.TrimPrefix(reg.URL, "http://") + "/library/missing:1"
	_, err = Build(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "pulling base image") || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing base image: error %v, want one naming the base and saying not found", err)
	}
}

func TestBuildBadInput(t *testing.T) {
	dir := appDir(t)
	cases := map[string]func(*BuildOptions){
		"no base":       func(o *BuildOptions) { o.Base = "" },
		"bad base":      func(o *BuildOptions) { o.Base = "UPPER/Case:??" },
		"port zero":     func(o *BuildOptions) { o.Ports = []string{"0"} },
		"port proto":    func(o *BuildOptions) { o.Ports = []string{"80/sctp"} },
		"port word":     func(o *BuildOptions) { o.Ports = []string{"http"} },
		"env no equals": func(o *BuildOptions) { o.Env = []string{"JUSTNAME"} },
		"user name":     func(o *BuildOptions) { o.User = "www-data" },
		"relative dir":  func(o *BuildOptions) { o.Workdir = "app" },
		"context file":  func(o *BuildOptions) { o.Context = filepath.Join(dir, "server.sh") },
	}
	for name, mutateOpts := range cases {
		o := scratchOptions(dir)
		mutateOpts(&o)
		_, err := Build(context.Background(), o)
		if err == nil || !IsUsage(err) {
			t.Errorf("%s: error %v, want a usage error", name, err)
		}
	}
	o := scratchOptions(dir)
	o.Context = filepath.Join(dir, "does-not-exist")
	if _, err := Build(context.Background(), o); err == nil || !strings.Contains(err.Error(), "does-not-exist") {
		t.Errorf("missing context: error %v", err)
	}
}

func TestBuildRefusesFilesItCannotRead(t *testing.T) {
	dir := appDir(t)
	// A named pipe cannot be read into a layer (and as root, permission bits
	// would not stop a read, so this is the unreadable file tests can make).
	fifo := filepath.Join(dir, "static", "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Build(context.Background(), scratchOptions(dir))
	if err == nil || !strings.Contains(err.Error(), fifo) {
		t.Fatalf("error %v, want one naming %s", err, fifo)
	}
	os.Remove(fifo)
	if os.Getuid() != 0 {
		secret := filepath.Join(dir, "secret")
		os.WriteFile(secret, []byte("x"), 0o000)
		_, err := Build(context.Background(), scratchOptions(dir))
		if err == nil || !strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "permission") {
			t.Fatalf("unreadable file: error %v, want one naming %s", err, secret)
		}
	}
}

func TestWriteLayoutRefusesForeignFolder(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "precious.txt"), []byte("x"), 0o644)
	img, _ := random.Image(10, 1)
	if err := WriteLayout(dir, img); err == nil || !IsUsage(err) {
		t.Fatalf("writing a layout into a folder with other files: %v, want a refusal", err)
	}
	out := filepath.Join(t.TempDir(), "image")
	if err := WriteLayout(out, img); err != nil {
		t.Fatal(err)
	}
	img2, _ := random.Image(10, 1)
	if err := WriteLayout(out, img2); err != nil {
		t.Fatalf("replacing a layout: %v", err)
	}
	d, _ := img2.Digest()
	if _, err := ReadLayout(out, d); err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	if _, err := ReadLayout(out, d1); err == nil {
		t.Fatal("the replaced image is still in the layout's index")
	}
}

// TestBuildRecordsContents: the build lists every file of its layer with
// its size and SHA-256, symlinks with their target, the build information
// of a Go program (this test binary is one), and the base's digest.
func TestBuildRecordsContents(t *testing.T) {
	dir := appDir(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server"), exe, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := Build(context.Background(), scratchOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := map[string]LayerFile{}
	for _, f := range b.Contents.Files {
		got[f.Path] = f
	}
	if len(got) != 4 {
		t.Errorf("%d files recorded, want server, server.sh, static/index.html, index.html: %+v", len(got), b.Contents.Files)
	}
	sh := got["/app/server.sh"]
	sum := sha256.Sum256([]byte("#!/bin/sh\necho hello\n"))
	if sh.Size != 21 || sh.SHA256 != hex.EncodeToString(sum[:]) || sh.Go != nil {
		t.Errorf("server.sh recorded as %+v", sh)
	}
	if l := got["/app/index.html"]; l.Link != "static/index.html" || l.SHA256 != "" {
		t.Errorf("the symlink recorded as %+v", l)
	}
	g := got["/app/server"].Go
	if g == nil || g.GoVersion == "" || g.Main.Path != "github.com/tsys-group/tsys-ci" {
		t.Fatalf("the Go program's build info: %+v", g)
	}
	if b.Contents.Base.Ref != Scratch || b.Contents.Base.Digest != "" {
		t.Errorf("scratch base recorded as %+v", b.Contents.Base)
	}

	reg := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(nopLogger())))
	defer reg.Close()
	base, _ := random.Image(100, 1)
	cf, _ := base.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	base, _ = mutate.ConfigFile(base, cf)
	ref, _ := name.ParseReference(strings.TrimPrefix(reg.URL, "http://") + "/library/base:1")
	if err := remote.Write(ref, base); err != nil {
		t.Fatal(err)
	}
	want, _ := base.Digest()
	o := scratchOptions(appDir(t))
	o.Base = ref.String()
	b2, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if b2.Contents.Base.Digest != want.String() || b2.Contents.Base.Repository != ref.Context().Name() || b2.Contents.Base.Ref != ref.String() {
		t.Errorf("base recorded as %+v, want digest %s", b2.Contents.Base, want)
	}
}

// A test binary lists no modules; the conversion of a real list, with a
// replaced module, is checked here.
func TestFromBuildInfoKeepsModules(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Path: "example.com/app/cmd/app",
		Main: debug.Module{Path: "example.com/app", Version: "v1.2.3"},
		Deps: []*debug.Module{
			{Path: "golang.org/x/text", Version: "v0.20.0", Sum: "h1:abc="},
			{Path: "example.com/lib", Version: "v0.1.0", Replace: &debug.Module{Path: "../lib", Version: "(devel)"}},
		},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abc"}},
	}
	g := fromBuildInfo(bi)
	if g.Package != "example.com/app/cmd/app" || g.Main.Version != "v1.2.3" || len(g.Deps) != 2 ||
		g.Deps[0].Sum != "h1:abc=" || g.Deps[1].Replace == nil || g.Deps[1].Replace.Path != "../lib" || g.Settings[0].Value != "0123abc" {
		t.Errorf("fromBuildInfo = %+v", g)
	}
}
