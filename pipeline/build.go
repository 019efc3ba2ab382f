package pipeline

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tsys-group/tsys-ci/registry"
)

// BuildRequest is the build step's input, as `tsys-ci build` takes it.
// Empty build-context fields (Commit ... BuildTime) come from Jenkins'
// environment, then from git.
type BuildRequest struct {
	Context    string
	Base       string
	Platform   string // OS/ARCH[/VARIANT]
	Workdir    string
	Entrypoint []string // nil keeps the base's
	Cmd        []string // nil keeps the base's
	Env        []string
	User       string
	Ports      []string
	Labels     []string // extra K=V labels

	Commit, Branch, BuildNumber, Job string
	Source                           string // repository URL
	BuildTime                        string // RFC 3339
	Tool                             string // the running tsys-ci, for the provenance

	Out    string // OCI layout folder
	Result string // build result file

	Keychain authn.Keychain // for pulling the base image
}

// Build runs the build step: the step context from getenv and git, the
// image written to req.Out, the result to req.Result. Notes go to log.
func Build(ctx context.Context, req BuildRequest, getenv func(string) string, log io.Writer) (BuildResult, error) {
	pc, err := FromEnv(getenv)
	if err != nil {
		return BuildResult{}, &registry.UsageError{Msg: err.Error()}
	}
	for _, o := range []struct {
		dst *string
		v   string
	}{{&pc.Commit, req.Commit}, {&pc.Branch, req.Branch}, {&pc.BuildNumber, req.BuildNumber}, {&pc.Job, req.Job}, {&pc.Source, CleanSourceURL(req.Source)}} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	if req.BuildTime != "" {
		t, err := time.Parse(time.RFC3339, req.BuildTime)
		if err != nil {
			return BuildResult{}, &registry.UsageError{Msg: fmt.Sprintf("--build-time %q is not an RFC 3339 time like 2026-01-02T15:04:05Z", req.BuildTime)}
		}
		pc.Created = t.UTC()
	}
	FillFromGit(ctx, req.Context, &pc)
	created := pc.Created
	if created.IsZero() {
		fmt.Fprintln(log, "tsys-ci build: no SOURCE_DATE_EPOCH, --build-time or commit time; using 1970-01-01 so the build still reproduces")
		created = Epoch
	}
	labels := pc.Labels()
	for _, l := range req.Labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return BuildResult{}, &registry.UsageError{Msg: fmt.Sprintf("--label %q must look like KEY=value", l)}
		}
		labels[k] = v
	}
	plat, err := v1.ParsePlatform(req.Platform)
	if err != nil || plat.OS == "" || plat.Architecture == "" {
		return BuildResult{}, &registry.UsageError{Msg: fmt.Sprintf("--platform %q must look like linux/amd64", req.Platform)}
	}
	var remoteOpts []remote.Option
	if req.Keychain != nil {
		kc := req.Keychain
		if base, err := name.ParseReference(req.Base); err == nil {
			kc = registry.WithHost(kc, base.Context().RegistryStr()) // --base names it
		}
		remoteOpts = registry.RemoteOptions(kc, nil)
	}
	built, err := registry.BuildToLayout(ctx, registry.BuildOptions{
		Context: req.Context, Base: req.Base, Platform: *plat, Workdir: req.Workdir,
		Entrypoint: req.Entrypoint, Cmd: req.Cmd, Env: req.Env, User: req.User, Ports: req.Ports,
		Labels: labels, Created: created, Remote: remoteOpts,
	}, req.Out)
	if err != nil {
		return BuildResult{}, err
	}
	res := BuildResult{
		Digest: built.Digest.String(), Layout: req.Out, Labels: built.Labels, Contents: &built.Contents,
		Build: &BuildRecord{
			Source: pc.Source, Commit: pc.Commit, Branch: pc.Branch, Job: pc.Job, BuildNumber: pc.BuildNumber,
			JenkinsURL: pc.JenkinsURL, BuildURL: pc.BuildURL, Tool: req.Tool,
			Parameters: BuildParameters{
				Context: req.Context, Base: req.Base, Platform: req.Platform, Workdir: req.Workdir,
				Entrypoint: req.Entrypoint, Cmd: req.Cmd, Env: req.Env, User: req.User, Ports: req.Ports,
				Labels: req.Labels, BuildTime: created.UTC().Format(time.RFC3339),
			},
		},
	}
	if err := WriteJSON(req.Result, res); err != nil {
		return BuildResult{}, err
	}
	fmt.Fprintf(log, "tsys-ci build: wrote %s to %s and %s\n", res.Digest, res.Layout, req.Result)
	return res, nil
}
