package registry

import (
	"bytes"
	"debug/buildinfo"
	"io"
	"runtime/debug"
)

// Contents is what Build knows exactly about the image it made: the base
// it started from and every file of the layer it added. The SBOM and the
// provenance that `push --sign` attaches are made from it, so they claim
// nothing a scanner guessed.
type Contents struct {
	Base  BaseImage   `json:"base"`
	Files []LayerFile `json:"files"`
}

// BaseImage is the image the build started from.
type BaseImage struct {
	// Ref is --base as given ("scratch" for none).
	Ref string `json:"ref"`
	// Repository is Ref's repository, normalised (index.docker.io/library/x).
	Repository string `json:"repository,omitempty"`
	// Digest is the manifest digest of the base for the build's platform:
	// what was really pulled, whatever the tag points at later. Empty for
	// scratch.
	Digest string `json:"digest,omitempty"`
}

// LayerFile is one entry of the app layer other than a folder.
type LayerFile struct {
	Path   string    `json:"path"`             // absolute, in the image
	Size   int64     `json:"size"`             // bytes; 0 for a symlink
	SHA256 string    `json:"sha256,omitempty"` // hex, of the content; empty for a symlink
	Link   string    `json:"link,omitempty"`   // a symlink's target
	Go     *GoBinary `json:"go,omitempty"`     // set when the file is a Go program with build info
}

// GoBinary is the build information the Go toolchain embeds in a program
// (runtime/debug.BuildInfo), as debug/buildinfo reads it.
type GoBinary struct {
	GoVersion string         `json:"goVersion"`
	Package   string         `json:"package"` // the main package's import path
	Main      GoModule       `json:"main"`
	Deps      []GoModule     `json:"deps,omitempty"`
	Settings  []BuildSetting `json:"settings,omitempty"`
}

// GoModule is one module linked into a Go program.
type GoModule struct {
	Path    string    `json:"path"`
	Version string    `json:"version,omitempty"`
	Sum     string    `json:"sum,omitempty"` // go.sum's h1: hash
	Replace *GoModule `json:"replace,omitempty"`
}

// BuildSetting is one key of the program's build settings (GOOS, vcs.revision ...).
type BuildSetting struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// executableMagic are the first bytes of the formats debug/buildinfo reads
// (ELF, Mach-O 32/64 both byte orders and fat, PE, XCOFF, wasm): other files
// are not opened twice.
var executableMagic = [][]byte{
	[]byte("\x7FELF"), []byte("\xFE\xED\xFA\xCE"), []byte("\xFE\xED\xFA\xCF"),
	[]byte("\xCE\xFA\xED\xFE"), []byte("\xCF\xFA\xED\xFE"), []byte("\xCA\xFE\xBA\xBE"),
	[]byte("MZ"), []byte("\x01\xDF"), []byte("\x01\xF7"), []byte("\x00asm"),
}

// goBinaryInfo reads the Go build information of the file at path; nil
// when it is not a Go program (or one built without module information).
func goBinaryInfo(path string, head []byte) *GoBinary {
	exe := false
	for _, m := range executableMagic {
		exe = exe || bytes.HasPrefix(head, m)
	}
	if !exe {
		return nil
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) *GoBinary {
	g := &GoBinary{GoVersion: bi.GoVersion, Package: bi.Path, Main: goModule(&bi.Main)}
	for _, d := range bi.Deps {
		g.Deps = append(g.Deps, goModule(d))
	}
	for _, s := range bi.Settings {
		g.Settings = append(g.Settings, BuildSetting{Key: s.Key, Value: s.Value})
	}
	return g
}

func goModule(m *debug.Module) GoModule {
	g := GoModule{Path: m.Path, Version: m.Version, Sum: m.Sum}
	if m.Replace != nil {
		r := goModule(m.Replace)
		g.Replace = &r
	}
	return g
}

// headReader keeps the first bytes read through it, to recognise a file's
// format without reading it twice.
type headReader struct {
	r    io.Reader
	head []byte
}

func (h *headReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if room := 8 - len(h.head); room > 0 && n > 0 {
		h.head = append(h.head, p[:min(n, room)]...)
	}
	return n, err
}
