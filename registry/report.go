package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/signature"
)

// AttestationReport is what `tsys-ci verify --attestations` shows of an
// image: its SBOM's summary and its provenance, each verified with the
// key. A missing or unreadable one is named in Problems.
type AttestationReport struct {
	Image      string             `json:"image"`
	SBOM       *SBOMSummary       `json:"sbom,omitempty"`
	Provenance *ProvenanceSummary `json:"provenance,omitempty"`
	Problems   []string           `json:"problems,omitempty"`
}

// ProvenanceSummary is the part of a provenance a person checks.
type ProvenanceSummary struct {
	BuildType   string `json:"buildType"`
	Builder     string `json:"builder"`
	Tool        string `json:"tool,omitempty"` // builder.version["tsys-ci"]
	Job         string `json:"job,omitempty"`
	BuildNumber string `json:"buildNumber,omitempty"`
	BuildURL    string `json:"buildURL,omitempty"`
	Source      string `json:"source,omitempty"`
	Ref         string `json:"ref,omitempty"`
	Commit      string `json:"commit,omitempty"`
	BaseDigest  string `json:"baseDigest,omitempty"`
}

// ReportAttestations reads and verifies the SBOM and the provenance of the
// image at ref (by digest) with v. An attestation that is missing or does
// not verify is a problem in the report, not an error: the other one is
// still shown. The error is for the registry failing.
func (c Client) ReportAttestations(ctx context.Context, ref name.Digest, v signature.Verifier) (*AttestationReport, error) {
	r := &AttestationReport{Image: ref.String()}
	st, err := c.Attestation(ctx, ref, v, PredicateCycloneDX)
	switch {
	case errors.Is(err, ErrNoAttestation):
		r.Problems = append(r.Problems, "SBOM: "+err.Error())
	case err != nil:
		return nil, err
	default:
		s, err := SummarizeSBOM(st.Predicate)
		if err != nil {
			r.Problems = append(r.Problems, "SBOM: "+err.Error())
		} else {
			r.SBOM = &s
		}
	}
	st, err = c.Attestation(ctx, ref, v, PredicateSLSAv1)
	switch {
	case errors.Is(err, ErrNoAttestation):
		r.Problems = append(r.Problems, "provenance: "+err.Error())
	case err != nil:
		return nil, err
	default:
		var p Provenance
		if err := json.Unmarshal(st.Predicate, &p); err != nil {
			r.Problems = append(r.Problems, fmt.Sprintf("provenance: it is not SLSA provenance v1: %v", err))
			break
		}
		s := &ProvenanceSummary{
			BuildType: p.BuildDefinition.BuildType, Builder: p.RunDetails.Builder.ID, Tool: p.RunDetails.Builder.Version["tsys-ci"],
			Source: p.BuildDefinition.ExternalParameters.Source.Repository, Ref: p.BuildDefinition.ExternalParameters.Source.Ref,
			Commit: p.BuildDefinition.ExternalParameters.Source.Commit, BaseDigest: p.BaseDigest(),
		}
		if ip := p.BuildDefinition.InternalParameters; ip != nil {
			s.Job, s.BuildNumber = ip.Job, ip.BuildNumber
		}
		if m := p.RunDetails.Metadata; m != nil {
			s.BuildURL = m.InvocationID
		}
		r.Provenance = s
	}
	return r, nil
}

// WriteText writes the report for a Jenkins console: one fact a line,
// labels aligned, nothing wider than it needs.
func (r *AttestationReport) WriteText(w io.Writer) error {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-12s %s\n", label+":", fmt.Sprintf(format, args...))
	}
	or := func(s, none string) string {
		if s == "" {
			return none
		}
		return s
	}
	line("image", "%s", r.Image)
	if s := r.SBOM; s != nil {
		line("sbom", "%s, %d components: %d files (%d Go programs), %d Go modules, %d libraries in all", s.Format, s.Components, s.Files, s.GoPrograms, s.GoModules, s.Libraries)
		base := "scratch (none)"
		if s.BaseDigest != "" {
			base = or(s.Base, "?") + " at " + s.BaseDigest
		}
		line("base", "%s", base)
	}
	if p := r.Provenance; p != nil {
		builder := p.Builder
		if p.Tool != "" {
			builder += " (tsys-ci " + p.Tool + ")"
		}
		line("builder", "%s", builder)
		if p.Job != "" || p.BuildNumber != "" || p.BuildURL != "" {
			line("build", "%s", strings.TrimSpace(or(p.Job, "?")+" #"+or(p.BuildNumber, "?")+" "+p.BuildURL))
		}
		line("source", "%s", or(p.Source, "(not recorded)"))
		commit := or(p.Commit, "(not recorded)")
		if p.Ref != "" {
			commit += " (" + p.Ref + ")"
		}
		line("commit", "%s", commit)
		if p.BaseDigest != "" && (r.SBOM == nil || r.SBOM.BaseDigest != p.BaseDigest) {
			line("base", "%s (provenance)", p.BaseDigest)
		}
	}
	for _, p := range r.Problems {
		line("problem", "%s", p)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
