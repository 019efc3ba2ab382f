package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/name"
)

// Property names tsys-ci writes into its SBOM (CycloneDX properties are
// namespaced by their producer).
const (
	propSize      = "tsys-ci:file:size"
	propLink      = "tsys-ci:file:link"
	propGoVersion = "tsys-ci:go:version"
	propGoPackage = "tsys-ci:go:package"
	propBaseRef   = "tsys-ci:base:ref"
	baseBOMRef    = "base-image"
)

// SBOM is the CycloneDX 1.5 JSON bill of materials of the image at ref,
// made from what its build recorded: the base image (by digest), every
// file of the app layer with its SHA-256, and for each Go program the
// modules linked into it (pkg:golang package URLs) as its dependencies.
// It claims nothing the build did not see: the base's own files are not
// listed, only the base itself. tool names the producer ("tsys-ci v1.2").
func SBOM(ref name.Digest, c Contents, tool string) ([]byte, error) {
	bom := cdx.NewBOM()
	bom.Metadata = &cdx.Metadata{
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "tsys-ci", Version: strings.TrimPrefix(tool, "tsys-ci ")}}},
		Component: &cdx.Component{
			BOMRef: ref.String(), Type: cdx.ComponentTypeContainer, Name: ref.Context().Name(), Version: ref.DigestStr(),
		},
	}
	var comps []cdx.Component
	var deps []cdx.Dependency
	var top []string
	if c.Base.Digest != "" {
		comps = append(comps, cdx.Component{
			BOMRef: baseBOMRef, Type: cdx.ComponentTypeContainer, Name: c.Base.Repository, Version: c.Base.Digest,
			Properties: &[]cdx.Property{{Name: propBaseRef, Value: c.Base.Ref}},
		})
		top = append(top, baseBOMRef)
	}
	modules := map[string]bool{}
	for _, f := range c.Files {
		comp := cdx.Component{BOMRef: "file:" + f.Path, Type: cdx.ComponentTypeFile, Name: f.Path}
		props := []cdx.Property{{Name: propSize, Value: strconv.FormatInt(f.Size, 10)}}
		if f.Link != "" {
			props = []cdx.Property{{Name: propLink, Value: f.Link}}
		} else {
			comp.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: f.SHA256}}
		}
		if g := f.Go; g != nil {
			comp.Type = cdx.ComponentTypeApplication
			props = append(props, cdx.Property{Name: propGoVersion, Value: g.GoVersion}, cdx.Property{Name: propGoPackage, Value: g.Package})
			var uses []string
			for _, m := range append([]GoModule{g.Main}, g.Deps...) {
				lib, ok := goComponent(m)
				if !ok {
					continue
				}
				uses = append(uses, lib.BOMRef)
				if !modules[lib.BOMRef] {
					modules[lib.BOMRef] = true
					comps = append(comps, lib)
				}
			}
			if len(uses) > 0 {
				deps = append(deps, cdx.Dependency{Ref: comp.BOMRef, Dependencies: &uses})
			}
		}
		comp.Properties = &props
		comps = append(comps, comp)
		top = append(top, comp.BOMRef)
	}
	bom.Components = &comps
	deps = append([]cdx.Dependency{{Ref: ref.String(), Dependencies: &top}}, deps...)
	bom.Dependencies = &deps
	var b bytes.Buffer
	if err := cdx.NewBOMEncoder(&b, cdx.BOMFileFormatJSON).EncodeVersion(bom, cdx.SpecVersion1_5); err != nil {
		return nil, fmt.Errorf("writing the SBOM of %s: %w", ref, err)
	}
	return b.Bytes(), nil
}

// goComponent is a module linked into a Go program, named by its
// package URL. A module replaced by another module version is that
// version; one replaced by a local folder keeps its own name and version,
// with the folder in a property. The main module of a development build
// has no version to name and is left out (false).
func goComponent(m GoModule) (cdx.Component, bool) {
	var props []cdx.Property
	if r := m.Replace; r != nil {
		if r.Version != "" {
			m = *r
		} else {
			props = append(props, cdx.Property{Name: "tsys-ci:go:replacedBy", Value: r.Path})
		}
	}
	if m.Path == "" || m.Version == "" || m.Version == "(devel)" {
		return cdx.Component{}, false
	}
	if m.Sum != "" {
		props = append(props, cdx.Property{Name: "tsys-ci:go:sum", Value: m.Sum})
	}
	p := "pkg:golang/" + m.Path + "@" + m.Version
	c := cdx.Component{BOMRef: p, Type: cdx.ComponentTypeLibrary, Name: m.Path, Version: m.Version, PackageURL: p}
	if len(props) > 0 {
		c.Properties = &props
	}
	return c, true
}

// SBOMSummary is what `tsys-ci verify --attestations` shows of an SBOM.
type SBOMSummary struct {
	Format     string         `json:"format"` // "CycloneDX 1.5"
	Image      string         `json:"image,omitempty"`
	Components int            `json:"components"`
	Files      int            `json:"files"`
	GoPrograms int            `json:"goPrograms"`
	GoModules  int            `json:"goModules"`
	Base       string         `json:"base,omitempty"`       // the base as given
	BaseDigest string         `json:"baseDigest,omitempty"` // empty: scratch
	Libraries  int            `json:"libraries"`            // all library components, Go or not
	ByType     map[string]int `json:"byType"`
}

// SummarizeSBOM reads a CycloneDX JSON SBOM (tsys-ci's or another tool's)
// and counts what it lists.
func SummarizeSBOM(predicate []byte) (SBOMSummary, error) {
	var bom cdx.BOM
	if err := json.Unmarshal(predicate, &bom); err != nil {
		return SBOMSummary{}, fmt.Errorf("the SBOM is not CycloneDX JSON: %w", err)
	}
	if bom.BOMFormat != cdx.BOMFormat {
		return SBOMSummary{}, fmt.Errorf("the SBOM's bomFormat is %q, not CycloneDX", bom.BOMFormat)
	}
	s := SBOMSummary{Format: "CycloneDX " + bom.SpecVersion.String(), ByType: map[string]int{}}
	if bom.Metadata != nil && bom.Metadata.Component != nil {
		s.Image = bom.Metadata.Component.Name + "@" + bom.Metadata.Component.Version
	}
	var walk func([]cdx.Component)
	walk = func(cs []cdx.Component) {
		for _, c := range cs {
			s.Components++
			s.ByType[string(c.Type)]++
			switch {
			case c.BOMRef == baseBOMRef:
				s.BaseDigest = c.Version
				s.Base = property(c, propBaseRef)
			case c.Type == cdx.ComponentTypeFile:
				s.Files++
			case c.Type == cdx.ComponentTypeApplication && property(c, propGoVersion) != "":
				s.Files++
				s.GoPrograms++
			case c.Type == cdx.ComponentTypeLibrary:
				s.Libraries++
				if strings.HasPrefix(c.PackageURL, "pkg:golang/") {
					s.GoModules++
				}
			}
			if c.Components != nil {
				walk(*c.Components)
			}
		}
	}
	if bom.Components != nil {
		walk(*bom.Components)
	}
	return s, nil
}

func property(c cdx.Component, name string) string {
	if c.Properties == nil {
		return ""
	}
	for _, p := range *c.Properties {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}
