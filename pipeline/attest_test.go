package pipeline

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/tsys-group/tsys-ci/registry"
)

func TestProvenanceFromBuildResult(t *testing.T) {
	b := BuildResult{
		Digest: "sha256:5555555555555555555555555555555555555555555555555555555555555555",
		Contents: &registry.Contents{Base: registry.BaseImage{Ref: "registry.example.com/base/debian:12", Repository: "registry.example.com/base/debian",
			Digest: "sha256:1111111111111111111111111111111111111111111111111111111111111111"}},
		Build: &BuildRecord{Source: "https://git.example.com/team/app.git", Commit: "89abcdef0123456789abcdef0123456789abcdef", Branch: "main",
			Job: "team/app", BuildNumber: "12", JenkinsURL: "https://jenkins.example.com/", BuildURL: "https://jenkins.example.com/job/team/job/app/12/",
			Tool: "tsys-ci v1.2.3", Parameters: BuildParameters{Context: ".", Base: "registry.example.com/base/debian:12", Platform: "linux/amd64"}},
	}
	p := Provenance(b)
	if p.RunDetails.Builder.ID != "https://jenkins.example.com/" || p.RunDetails.Metadata.InvocationID != b.Build.BuildURL ||
		p.BuildDefinition.InternalParameters.Job != "team/app" || p.BuildDefinition.InternalParameters.BuildNumber != "12" {
		t.Errorf("builder and run: %+v %+v", p.RunDetails, p.BuildDefinition.InternalParameters)
	}
	if s := p.BuildDefinition.ExternalParameters.Source; s.Repository != b.Build.Source || s.Commit != b.Build.Commit || s.Ref != "main" {
		t.Errorf("source: %+v", s)
	}
	if p.BaseDigest() != b.Contents.Base.Digest {
		t.Errorf("base digest %q, want %s", p.BaseDigest(), b.Contents.Base.Digest)
	}
	if !strings.Contains(string(p.BuildDefinition.ExternalParameters.Build), `"platform":"linux/amd64"`) {
		t.Errorf("build parameters: %s", p.BuildDefinition.ExternalParameters.Build)
	}
	// Outside Jenkins the builder is the local one, and says so.
	b.Build.JenkinsURL, b.Build.BuildURL, b.Build.Job, b.Build.BuildNumber = "", "", "", ""
	if p := Provenance(b); p.RunDetails.Builder.ID != registry.LocalBuilder || p.BuildDefinition.InternalParameters != nil || p.RunDetails.Metadata != nil {
		t.Errorf("local build: %+v", p)
	}
	ref, _ := name.NewDigest("registry.example.com/demo/app@" + b.Digest)
	preds, err := Attestations(b, ref)
	if err != nil || len(preds) != 2 || preds[0].Type != registry.PredicateCycloneDX || preds[1].Type != registry.PredicateSLSAv1 || !json.Valid(preds[1].Content) {
		t.Errorf("Attestations: %v, %v", preds, err)
	}
	if preds, err := Attestations(BuildResult{Digest: b.Digest}, ref); preds != nil || err != nil {
		t.Errorf("an old build result: %v, %v; want nothing to attach", preds, err)
	}
}
