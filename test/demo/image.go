package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tsys-group/tsys-ci/registry"
)

// image is one version of an app built and pushed by tsys-ci.
type image struct {
	App, Version string
	Ref          string // HOST/demo/APP@sha256:...
}

// ensureKeys writes the demo's cosign key pair into .lab/demo unless there.
func (d *Demo) ensureKeys() (priv, pub string, err error) {
	priv, pub = filepath.Join(d.dir, "cosign.key"), filepath.Join(d.dir, "cosign.pub")
	if _, err1 := os.Stat(priv); err1 == nil {
		if _, err2 := os.Stat(pub); err2 == nil {
			return priv, pub, nil
		}
	}
	privPEM, pubPEM, err := registry.GenerateKeyPair([]byte(cosignPassword))
	if err != nil {
		return "", "", fmt.Errorf("generating the demo's signing key: %w", err)
	}
	if err := os.WriteFile(priv, privPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(pub, pubPEM, 0o644); err != nil {
		return "", "", err
	}
	d.say("generated the signing key pair %s (password %q)", priv, cosignPassword)
	return priv, pub, nil
}

// buildPush compiles pkg (a main package) with its version, puts it in a
// scratch image with tsys-ci build, and pushes and signs it with tsys-ci
// push --sign into the lab registry.
func (d *Demo) buildPush(ctx context.Context, app, version, pkg string, env ...string) (image, error) {
	dir := filepath.Join(d.dir, "images", app+"-"+version)
	if err := os.RemoveAll(dir); err != nil {
		return image{}, err
	}
	ctxDir := filepath.Join(dir, "context")
	if err := os.MkdirAll(ctxDir, 0o755); err != nil {
		return image{}, err
	}
	if _, err := d.run(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -X main.version="+version,
		"-o", filepath.Join(ctxDir, app), pkg); err != nil {
		return image{}, err
	}
	args := []string{"build", "--context", ctxDir, "--base", "scratch", "--workdir", "/app",
		"--entrypoint", "/app/" + app, "--port", "8080", "--job", "demo/" + app, "--build-number", "1",
		"--commit", d.commit(ctx), "--branch", "demo", "--build-time", "2026-01-01T00:00:00Z",
		"--out", filepath.Join(dir, "image"), "--result", filepath.Join(dir, "build.json")}
	for _, e := range env {
		args = append(args, "--env", e)
	}
	if _, err := d.run(ctx, d.tsysci, args...); err != nil {
		return image{}, err
	}
	priv, _, err := d.ensureKeys()
	if err != nil {
		return image{}, err
	}
	result := filepath.Join(dir, "push.json")
	repo := d.addons.Addons.Registry + "/demo/" + app
	if _, err := d.run(ctx, d.tsysci, "push", "--from", filepath.Join(dir, "build.json"), "--repository", repo,
		"--tag", version, "--sign", "--key", priv, "--result", result); err != nil {
		return image{}, err
	}
	b, err := os.ReadFile(result)
	if err != nil {
		return image{}, err
	}
	var pr struct {
		Image  string `json:"image"`
		Signed bool   `json:"signed"`
	}
	if err := json.Unmarshal(b, &pr); err != nil || pr.Image == "" {
		return image{}, fmt.Errorf("reading %s: %v (want {\"image\":...})", result, err)
	}
	return image{App: app, Version: version, Ref: pr.Image}, nil
}

// commit is the checkout's commit, for the image's labels.
func (d *Demo) commit(ctx context.Context) string {
	out, err := d.run(ctx, "git", "rev-parse", "HEAD")
	if err != nil {
		return "0000000"
	}
	return strings.TrimSpace(out)
}
