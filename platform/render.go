package platform

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Rendered is the output of Render: file contents by slash-separated path
// relative to the output directory.
type Rendered map[string][]byte

// Paths returns the file paths in sorted order.
func (r Rendered) Paths() []string {
	paths := make([]string, 0, len(r))
	for p := range r {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// Render produces, from a validated spec, every file an operator reviews or
// commits for GitOps: each host's k3s config.yaml, the Helm values of every
// enabled component, MetalLB's pool and advertisement, the replica counts
// and disruption budgets of k3s's packaged services, and Rancher's LDAP
// auth config. templates is templates/platform (templates.Platform, rooted
// there). The same spec always gives the same bytes.
func Render(spec *Spec, templates fs.FS) (Rendered, error) {
	out := Rendered{}
	if err := renderHosts(spec, out); err != nil {
		return nil, err
	}
	if err := renderValues(spec, templates, out); err != nil {
		return nil, err
	}
	if err := renderManifests(spec, out); err != nil {
		return nil, err
	}
	out["SECRETS.txt"] = renderSecrets(spec)
	return out, nil
}

// Write writes every rendered file under dir, creating directories, and
// leaves other files in dir alone.
func (r Rendered) Write(dir string) error {
	for _, p := range r.Paths() {
		path := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("writing rendered files: %w", err)
		}
		if err := os.WriteFile(path, r[p], 0o644); err != nil {
			return fmt.Errorf("writing rendered files: %w", err)
		}
	}
	return nil
}

// header starts every rendered YAML file so nobody edits it by hand.
func header(lines ...string) []byte {
	var b bytes.Buffer
	b.WriteString("# Rendered by `tsys-ci platform render` from platform.yaml; edit platform.yaml, not this file.\n")
	for _, l := range lines {
		b.WriteString("# " + l + "\n")
	}
	return b.Bytes()
}
