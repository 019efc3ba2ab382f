package platform

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// LoadSpec reads, strictly parses and validates platform.yaml at path.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading platform file: %w", err)
	}
	spec, err := ParseSpec(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	resolveLocalCharts(spec, filepath.Dir(path))
	resolveLocalServeChart(spec, filepath.Dir(path))
	return spec, nil
}

// ParseSpec parses platform.yaml strictly (unknown and duplicate fields are
// errors), validates it and fills in defaults. A validation failure is a
// *ValidationError listing every problem by field path.
func ParseSpec(data []byte) (*Spec, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("platform file is empty; start from templates/platform/platform.yaml")
	}
	var spec Spec
	if err := yaml.UnmarshalStrict(data, &spec); err != nil {
		msg := err.Error()
		if strings.Contains(msg, `unknown field "password"`) || strings.Contains(msg, `unknown field "bindPassword"`) {
			return nil, fmt.Errorf("%v: passwords never go into platform.yaml; name them with passwordEnv or passwordFile", err)
		}
		return nil, fmt.Errorf("parsing platform file (strict YAML: unknown or repeated fields are errors): %w", err)
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	spec.applyDefaults()
	return &spec, nil
}

// resolveLocalCharts makes a relative file:// chart path relative to the
// folder of platform.yaml, so plan and apply find the same chart whatever
// directory they run in.
func resolveLocalCharts(spec *Spec, dir string) {
	for name, c := range spec.Components {
		if local, ok := strings.CutPrefix(c.Repo, "file://"); ok && !filepath.IsAbs(local) {
			c.Repo = "file://" + filepath.Join(dir, local)
			spec.Components[name] = c
		}
	}
}
