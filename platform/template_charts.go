package platform

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"sigs.k8s.io/yaml"
)

// ChartObjects are the objects one component's chart renders, as Helm's
// manifest (YAML documents separated by ---; hooks left out).
type ChartObjects struct {
	Component string `json:"component"`
	Namespace string `json:"namespace"`
	Release   string `json:"release"`
	Chart     string `json:"chart"`
	Manifest  string `json:"-"`
}

// TemplateCharts renders every enabled component's chart with its values
// as `helm template` does: Helm's client-only dry run, with no cluster (a
// chart's lookup finds nothing) and the Kubernetes version of the pinned
// k3s release. It lets the objects a platform would install be checked for
// single points of failure before anything is installed (issue 27,
// `platform doctor --rendered`). values gives each component's values
// (render's values/<component>.yaml, or ComponentValues); a loadChart
// that returns a nil chart and no error leaves that component out.
func TemplateCharts(spec *Spec, values func(component string) (map[string]any, error),
	loadChart func(string, Component) (*chart.Chart, error)) ([]ChartObjects, error) {
	kube, err := chartutil.ParseKubeVersion(strings.SplitN(spec.K3s.Version, "+", 2)[0])
	if err != nil {
		return nil, fmt.Errorf("k3s.version %s as a Kubernetes version: %w", spec.K3s.Version, err)
	}
	var out []ChartObjects
	for _, name := range spec.releases() {
		c := spec.component(name)
		ch, err := loadChart(name, c)
		if err != nil {
			return nil, err
		}
		if ch == nil {
			continue // the loader leaves this component out
		}
		vals, err := values(name)
		if err != nil {
			return nil, err
		}
		if vals, err = withoutLookups(name, vals); err != nil {
			return nil, err
		}
		in := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
		in.ClientOnly, in.DryRun, in.DisableHooks = true, true, true
		in.Namespace, in.ReleaseName, in.KubeVersion = c.Namespace, releaseName(name), kube
		rel, err := in.Run(ch, vals)
		if err != nil {
			return nil, fmt.Errorf("rendering the %s chart (%s-%s) with its values: %w", name, c.Chart, c.Version, err)
		}
		out = append(out, ChartObjects{Component: name, Namespace: c.Namespace, Release: releaseName(name),
			Chart: c.Chart + "-" + c.Version, Manifest: rel.Manifest})
	}
	return out, nil
}

// RenderedValues reads each component's values from what render wrote
// (DIR/values/<component>.yaml), the files reviewed or committed.
func RenderedValues(dir string) func(component string) (map[string]any, error) {
	return func(component string) (map[string]any, error) {
		path := filepath.Join(dir, "values", component+".yaml")
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading the values of %s (run `tsys-ci platform render -o %s` first): %w", component, dir, err)
		}
		var v map[string]any
		if err := yaml.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return v, nil
	}
}

// RenderedManifests are render's own objects (DIR/manifests/*.yaml) as one
// YAML stream.
func RenderedManifests(dir string) ([]byte, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "manifests", "*.yaml"))
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading render's manifests: %w", err)
		}
		out = append(append(out, "\n---\n"...), data...)
	}
	return out, nil
}

// withoutLookups adjusts values a chart can only render against a cluster.
// Harbor's chart 1.18 reads redis.external.existingSecret with Helm's
// lookup to build its Redis URLs and fails when the Secret is not there
// (so does `helm template`: "nil pointer evaluating interface
// {}.REDIS_PASSWORD"); without a cluster lookup finds nothing. For the
// objects alone, the Secret's name is replaced by a placeholder password:
// that changes only the Redis URLs inside Harbor's Secrets. At install the
// Secret must exist (SECRETS.txt).
func withoutLookups(component string, values map[string]any) (map[string]any, error) {
	if component != "harbor" {
		return values, nil
	}
	redis, _ := values["redis"].(map[string]any)
	ext, _ := redis["external"].(map[string]any)
	if redis["type"] != "external" || ext["existingSecret"] == nil || ext["existingSecret"] == "" {
		return values, nil
	}
	raw, err := json.Marshal(values)
	if err != nil {
		return nil, err
	}
	var cp map[string]any
	if err := json.Unmarshal(raw, &cp); err != nil {
		return nil, err
	}
	ext = cp["redis"].(map[string]any)["external"].(map[string]any)
	delete(ext, "existingSecret")
	ext["password"] = "placeholder-read-at-install"
	return cp, nil
}
