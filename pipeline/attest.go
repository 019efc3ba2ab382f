package pipeline

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/tsys-group/tsys-ci/registry"
)

// Attestations are what `push --sign` attaches to the image at ref: the
// CycloneDX SBOM of what the build put in it and the SLSA provenance of
// how it was built, both from build.json. A build result from an older
// tsys-ci records neither: then there is nothing to attach (nil, nil).
func Attestations(b BuildResult, ref name.Digest) ([]registry.Predicate, error) {
	if b.Contents == nil || b.Build == nil {
		return nil, nil
	}
	sbom, err := registry.SBOM(ref, *b.Contents, b.Build.Tool)
	if err != nil {
		return nil, err
	}
	prov, err := json.Marshal(Provenance(b))
	if err != nil {
		return nil, fmt.Errorf("writing the provenance of %s: %w", ref, err)
	}
	return []registry.Predicate{
		{Type: registry.PredicateCycloneDX, Content: sbom},
		{Type: registry.PredicateSLSAv1, Content: prov},
	}, nil
}

// Provenance is the SLSA provenance v1 predicate of a build: the builder
// is the Jenkins server (JENKINS_URL) or registry.LocalBuilder, the run
// is the Jenkins build (BUILD_URL), the source repository, branch and
// commit and the build's flags are its external parameters, and the
// commit and the base image (by digest) its resolved dependencies.
func Provenance(b BuildResult) registry.Provenance {
	r := b.Build
	params, _ := json.Marshal(r.Parameters) // plain strings and lists: cannot fail
	p := registry.Provenance{
		BuildDefinition: registry.BuildDefinition{
			BuildType: registry.BuildTypeV1,
			ExternalParameters: registry.ExternalParameters{
				Source: registry.SourceParameters{Repository: r.Source, Ref: r.Branch, Commit: r.Commit},
				Build:  params,
			},
		},
		RunDetails: registry.RunDetails{Builder: registry.Builder{ID: registry.LocalBuilder}},
	}
	if r.Tool != "" {
		p.RunDetails.Builder.Version = map[string]string{"tsys-ci": strings.TrimPrefix(r.Tool, "tsys-ci ")}
	}
	if r.JenkinsURL != "" || r.Job != "" || r.BuildNumber != "" {
		p.BuildDefinition.InternalParameters = &registry.InternalParameters{JenkinsURL: r.JenkinsURL, Job: r.Job, BuildNumber: r.BuildNumber}
	}
	if r.JenkinsURL != "" {
		p.RunDetails.Builder.ID = r.JenkinsURL
	}
	if r.BuildURL != "" {
		p.RunDetails.Metadata = &registry.BuildMetadata{InvocationID: r.BuildURL}
	}
	if r.Source != "" && r.Commit != "" {
		p.BuildDefinition.ResolvedDependencies = append(p.BuildDefinition.ResolvedDependencies, registry.ResourceDescriptor{
			URI: "git+" + r.Source, Name: "source", Digest: map[string]string{"gitCommit": r.Commit},
		})
	}
	if base := b.Contents.Base; base.Digest != "" {
		alg, hex, _ := strings.Cut(base.Digest, ":")
		p.BuildDefinition.ResolvedDependencies = append(p.BuildDefinition.ResolvedDependencies, registry.ResourceDescriptor{
			URI: "oci://" + base.Repository, Name: "base", Digest: map[string]string{alg: hex},
		})
	}
	return p
}
