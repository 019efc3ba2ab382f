package registry

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/name"
)

var sampleContents = Contents{
	Base: BaseImage{Ref: "registry.example.com/base/debian:12", Repository: "registry.example.com/base/debian",
		Digest: "sha256:1111111111111111111111111111111111111111111111111111111111111111"},
	Files: []LayerFile{
		{Path: "/app/index.html", Size: 5, SHA256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},
		{Path: "/app/current", Link: "index.html"},
		{Path: "/app/server", Size: 1000, SHA256: "3333333333333333333333333333333333333333333333333333333333333333", Go: &GoBinary{
			GoVersion: "go1.26.8", Package: "example.com/app/cmd/server", Main: GoModule{Path: "example.com/app", Version: "v1.0.0"},
			Deps: []GoModule{{Path: "golang.org/x/text", Version: "v0.20.0", Sum: "h1:x="}, {Path: "example.com/lib", Version: "v0.1.0", Replace: &GoModule{Path: "../lib"}}},
		}},
		{Path: "/app/worker", Size: 900, SHA256: "4444444444444444444444444444444444444444444444444444444444444444", Go: &GoBinary{
			GoVersion: "go1.26.8", Package: "example.com/app/cmd/worker", Main: GoModule{Path: "example.com/app", Version: "v1.0.0"},
			Deps: []GoModule{{Path: "golang.org/x/text", Version: "v0.20.0"}},
		}},
	},
}

// The SBOM is CycloneDX 1.5 that the library reads back, and its summary
// counts what the build recorded: modules shared by two programs once, a
// module replaced by a local folder under its own name.
func TestSBOMFromContents(t *testing.T) {
	ref, _ := name.NewDigest("registry.example.com/demo/app@sha256:5555555555555555555555555555555555555555555555555555555555555555")
	b, err := SBOM(ref, sampleContents, "tsys-ci v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("the SBOM does not decode: %v\n%s", err, b)
	}
	if bom.SpecVersion != cdx.SpecVersion1_5 {
		t.Errorf("spec version %v, want 1.5", bom.SpecVersion)
	}
	s, err := SummarizeSBOM(b)
	if err != nil {
		t.Fatal(err)
	}
	want := SBOMSummary{Format: "CycloneDX 1.5", Image: ref.Context().Name() + "@" + ref.DigestStr(), Components: 8, Files: 4, GoPrograms: 2, GoModules: 3,
		Base: sampleContents.Base.Ref, BaseDigest: sampleContents.Base.Digest, Libraries: 3}
	s.ByType = nil
	if !reflect.DeepEqual(s, want) {
		t.Errorf("summary\n %+v\nwant\n %+v", s, want)
	}
	if !strings.Contains(string(b), `"purl":"pkg:golang/golang.org/x/text@v0.20.0"`) || !strings.Contains(string(b), `"value":"../lib"`) {
		t.Errorf("no package URL for golang.org/x/text:\n%s", b)
	}
	if _, err := SummarizeSBOM([]byte(`{"spdxVersion":"SPDX-2.3"}`)); err == nil {
		t.Error("an SPDX document summarized as CycloneDX")
	}
}

func TestSameRepository(t *testing.T) {
	same := [][2]string{
		{"https://git.example.com/team/app", "https://git.example.com/team/app.git"},
		{"https://git.example.com/team/app.git", "git@git.example.com:team/app.git"},
		{"ssh://git@git.example.com/team/app.git", "https://Git.Example.com/team/app/"},
		{"https://ci@git.example.com/team/app", "http://git.example.com/team/app"},
	}
	for _, p := range same {
		if !SameRepository(p[0], p[1]) {
			t.Errorf("%s and %s are the same repository", p[0], p[1])
		}
	}
	other := [][2]string{
		{"https://git.example.com/team/app", "https://git.example.com/team/app2"},
		{"https://git.example.com/team/app", "https://git.evil.example/team/app"},
		{"https://git.example.com/team/app", "https://git.example.com/other/app"},
		{"", ""},
		{"https://git.example.com:8443/team/app", "https://git.example.com/team/app"},
	}
	for _, p := range other {
		if SameRepository(p[0], p[1]) {
			t.Errorf("%s and %s are not the same repository", p[0], p[1])
		}
	}
}
