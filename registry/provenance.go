package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/signature"
)

// BuildTypeV1 is the buildType of tsys-ci's provenance: what its
// externalParameters and internalParameters hold is documented there.
const BuildTypeV1 = "https://github.com/tsys-group/tsys-ci/blob/main/docs/supply-chain.md#build-type-v1"

// LocalBuilder is the builder id of a build outside Jenkins (no
// JENKINS_URL): someone's machine, which vouches for nothing.
const LocalBuilder = "urn:tsys-ci:local"

// Provenance is a SLSA provenance v1 predicate
// (https://slsa.dev/spec/v1.0/provenance), with tsys-ci's parameters.
type Provenance struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition is what the build was asked to do.
type BuildDefinition struct {
	BuildType            string               `json:"buildType"`
	ExternalParameters   ExternalParameters   `json:"externalParameters"`
	InternalParameters   *InternalParameters  `json:"internalParameters,omitempty"`
	ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies,omitempty"`
}

// ExternalParameters are the inputs someone outside the builder chose:
// the source, and the build's flags (as build.json records them).
type ExternalParameters struct {
	Source SourceParameters `json:"source"`
	Build  json.RawMessage  `json:"build,omitempty"`
}

// SourceParameters say what was built.
type SourceParameters struct {
	Repository string `json:"repository,omitempty"` // URL, without login
	Ref        string `json:"ref,omitempty"`        // the branch
	Commit     string `json:"commit,omitempty"`
}

// InternalParameters are the Jenkins build that ran tsys-ci build.
type InternalParameters struct {
	JenkinsURL  string `json:"jenkinsURL,omitempty"`
	Job         string `json:"job,omitempty"`
	BuildNumber string `json:"buildNumber,omitempty"`
}

// ResourceDescriptor is an artifact the build used (the commit, the base).
type ResourceDescriptor struct {
	URI    string            `json:"uri,omitempty"`
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest,omitempty"`
}

// RunDetails say who ran the build.
type RunDetails struct {
	Builder  Builder        `json:"builder"`
	Metadata *BuildMetadata `json:"metadata,omitempty"`
}

// Builder is the platform that ran the build: the Jenkins server, or
// LocalBuilder.
type Builder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

// BuildMetadata identifies this run (the Jenkins build's URL).
type BuildMetadata struct {
	InvocationID string `json:"invocationId,omitempty"`
}

// BaseDigest is the base image's digest among the resolved dependencies.
func (p Provenance) BaseDigest() string {
	for _, r := range p.BuildDefinition.ResolvedDependencies {
		if r.Name == "base" && r.Digest["sha256"] != "" {
			return "sha256:" + r.Digest["sha256"]
		}
	}
	return ""
}

// ErrOtherSource: the provenance names another source repository than the
// app's spec.
var ErrOtherSource = errors.New("the image was built from another source repository")

// VerifyProvenance reads the SLSA provenance attached to ref (by digest),
// signed with v and about ref's digest, and checks that it names the
// source repository wantSource (compared as SameRepository does). An empty
// wantSource checks only the attestation.
func (c Client) VerifyProvenance(ctx context.Context, ref name.Digest, v signature.Verifier, wantSource string) (*Provenance, error) {
	st, err := c.Attestation(ctx, ref, v, PredicateSLSAv1)
	if err != nil {
		return nil, fmt.Errorf("checking the provenance of %s: %w", ref, err)
	}
	var p Provenance
	if err := json.Unmarshal(st.Predicate, &p); err != nil {
		return nil, fmt.Errorf("checking the provenance of %s: it is not SLSA provenance v1: %w", ref, err)
	}
	if wantSource == "" {
		return &p, nil
	}
	got := p.BuildDefinition.ExternalParameters.Source.Repository
	if got == "" {
		return &p, fmt.Errorf("checking the provenance of %s: %w: it names no source repository, and the app's spec wants %s; build it with tsys-ci build in a clone of %s (or pass --source)", ref, ErrOtherSource, wantSource, wantSource)
	}
	if !SameRepository(got, wantSource) {
		return &p, fmt.Errorf("checking the provenance of %s: %w: it was built from %s, and the app's spec (source.repository) names %s", ref, ErrOtherSource, got, wantSource)
	}
	return &p, nil
}

// SameRepository compares two repository URLs by host and path: the
// scheme, a login, a trailing ".git" or "/" and the host's case do not
// matter, so https://git.example.com/team/app, git@git.example.com:team/app.git
// and ssh://git@git.example.com/team/app.git are the same repository.
func SameRepository(a, b string) bool {
	na, nb := normalRepository(a), normalRepository(b)
	return na != "" && na == nb
}

func normalRepository(s string) string {
	s = strings.TrimSpace(s)
	host, path := "", ""
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" {
		host, path = u.Hostname(), u.Path
		if p := u.Port(); p != "" && p != "22" && p != "443" && p != "80" {
			host += ":" + p
		}
	} else if at, rest, ok := strings.Cut(s, ":"); ok && !strings.Contains(at, "/") {
		// scp-like: [user@]host:path
		if i := strings.LastIndex(at, "@"); i >= 0 {
			at = at[i+1:]
		}
		host, path = at, rest
	} else {
		return strings.TrimSuffix(strings.TrimSuffix(s, "/"), ".git")
	}
	path = strings.Trim(path, "/")
	path = strings.TrimSuffix(path, ".git")
	return strings.ToLower(host) + "/" + path
}
