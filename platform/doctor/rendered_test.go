package doctor

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tsys-group/tsys-ci/platform"
	"github.com/tsys-group/tsys-ci/templates"
)

// Issue 27: doctor's rules on what a platform would install, before it is.

func templatesFS(t *testing.T) fs.FS {
	t.Helper()
	sub, err := fs.Sub(templates.Platform, "platform")
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// only loads the charts of the named components and leaves the others
// out (their charts are not at hand in tests).
func only(load func(string, platform.Component) (*chart.Chart, error), names ...string) func(string, platform.Component) (*chart.Chart, error) {
	return func(name string, c platform.Component) (*chart.Chart, error) {
		if !slices.Contains(names, name) {
			return nil, nil
		}
		return load(name, c)
	}
}

func analyzeRendered(t *testing.T, spec *platform.Spec, charts []platform.ChartObjects) []Finding {
	t.Helper()
	out, err := platform.Render(spec, templatesFS(t))
	if err != nil {
		t.Fatal(err)
	}
	var extra []byte
	for _, p := range out.Paths() {
		if strings.HasPrefix(p, "manifests/") {
			extra = append(append(extra, "\n---\n"...), out[p]...)
		}
	}
	fs, err := AnalyzeRendered(spec, charts, extra, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func has(fs []Finding, sev Severity, object, problem string) bool {
	for _, f := range fs {
		if f.Severity == sev && f.Object == object && strings.Contains(f.Problem, problem) {
			return true
		}
	}
	return false
}

// TestRenderedRulesOnStandIns: the rules on hand-written objects standing
// in for charts' output (stand-in objects, not a real chart).
func TestRenderedRulesOnStandIns(t *testing.T) {
	spec := examplePlatform(t)
	charts := []platform.ChartObjects{
		{Component: "harbor", Namespace: "harbor", Manifest: `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: harbor-database}
spec:
  replicas: 1
  selector: {matchLabels: {component: database}}
  template: {metadata: {labels: {component: database}}, spec: {containers: [{name: db, image: x}]}}
  volumeClaimTemplates:
  - metadata: {name: database-data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: harbor-core}
spec:
  replicas: 2
  selector: {matchLabels: {component: core}}
  template: {metadata: {labels: {component: core}}, spec: {containers: [{name: core, image: x}]}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: harbor-registry}
spec: {storageClassName: local-path, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`},
		{Component: "jenkins", Namespace: "jenkins", Manifest: `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: jenkins, namespace: jenkins}
spec:
  replicas: 1
  selector: {matchLabels: {app: jenkins}}
  template: {metadata: {labels: {app: jenkins}}, spec: {containers: [{name: jenkins, image: x}]}}
  volumeClaimTemplates:
  - metadata: {name: home}
    spec: {storageClassName: longhorn, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`},
		{Component: "metallb", Namespace: "metallb-system", Manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: metallb-controller}
spec:
  selector: {matchLabels: {app: metallb}}
  template: {metadata: {labels: {app: metallb}}, spec: {containers: [{name: c, image: x}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: metallb-webhook}
spec:
  replicas: 1
  selector: {matchLabels: {app: webhook}}
  template: {metadata: {labels: {app: webhook}}, spec: {containers: [{name: c, image: x}]}}
`},
	}
	got := analyzeRendered(t, spec, charts)
	for _, want := range []struct {
		sev             Severity
		object, problem string
	}{
		{SeverityCritical, "statefulset/harbor/harbor-database", "harbor: Harbor's internal PostgreSQL, 1 replica"},
		{SeverityCritical, "pvc/harbor/harbor-registry", "volume on local-path (not one the platform creates)"},
		{SeverityWarning, "deployment/harbor/harbor-core", "2 replicas with nothing keeping them on different nodes"},
		{SeverityWarning, "deployment/harbor/harbor-core", "no PodDisruptionBudget"},
		{SeverityWarning, "statefulset/jenkins/jenkins", "jenkins: 1 replica (one instance by design)"},
		{SeverityWarning, "deployment/metallb-system/metallb-controller", "metallb: 1 replica (one instance by design)"},
		{SeverityCritical, "deployment/metallb-system/metallb-webhook", "metallb: 1 replica"},
	} {
		if !has(got, want.sev, want.object, want.problem) {
			t.Errorf("no %s finding on %s with %q; got:\n%s", want.sev, want.object, want.problem, strings.Join(keysAndProblems(got), "\n"))
		}
	}
	for _, f := range got {
		if strings.Contains(f.Object, "harbor-database volume") || strings.Contains(f.Object, "jenkins volume") {
			t.Errorf("a claim on the default (Longhorn) or the longhorn class reported: %+v", f)
		}
		if f.Object == "statefulset/harbor/harbor-database" && !strings.Contains(f.Fix, "dataServices.postgres.databases.harbor") {
			t.Errorf("the internal database's fix does not name the key to add: %s", f.Fix)
		}
	}
}

func keysAndProblems(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Severity.String()+" "+f.Object+": "+f.Problem)
	}
	return out
}

// TestRenderedLabPlatform: the lab's platform.yaml through the real path,
// Helm's client-only rendering of its local chart (lab-component: two
// replicas spread over nodes with a PodDisruptionBudget) with the values
// render writes: nothing to report.
func TestRenderedLabPlatform(t *testing.T) {
	dir, err := filepath.Abs("../../test/e2e/testdata/platform")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "platform.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.ReplaceAll(string(raw), "@CHARTS@", filepath.Join(dir, "charts"))
	spec, err := platform.ParseSpec([]byte(strings.ReplaceAll(doc, "@IMAGE@", "registry.lab.invalid/hello:v1")))
	if err != nil {
		t.Fatal(err)
	}
	charts, err := platform.TemplateCharts(spec, func(c string) (map[string]any, error) {
		return platform.ComponentValues(spec, templatesFS(t), c)
	}, platform.ChartsDir(""))
	if err != nil {
		t.Fatal(err)
	}
	if len(charts) != 6 {
		t.Fatalf("rendered %d charts, want the lab's 6", len(charts))
	}
	if got := analyzeRendered(t, spec, charts); len(got) != 0 {
		t.Errorf("findings on the lab's platform:\n%s", strings.Join(keysAndProblems(got), "\n"))
	}
}

// harborChart is Harbor's real chart 1.18.4, if this machine has it in
// the chart cache (~/.cache/tsys-ci/charts/harbor/ or harbor-1.18.4.tgz,
// e.g. `helm pull harbor --repo https://helm.goharbor.io --version 1.18.4`
// into that folder); nothing is downloaded.
func harborChart(t *testing.T) string {
	t.Helper()
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory for the chart cache")
	}
	dir := filepath.Join(home, ".cache", "tsys-ci", "charts")
	for _, p := range []string{filepath.Join(dir, "harbor", "Chart.yaml"), filepath.Join(dir, "harbor-1.18.4.tgz")} {
		if _, err := os.Stat(p); err == nil {
			return dir
		}
	}
	t.Skipf("Harbor's chart 1.18.4 is not in %s (helm pull harbor --repo https://helm.goharbor.io --version 1.18.4 -d %s)", dir, dir)
	return ""
}

// TestRenderedExampleHarbor: the example platform.yaml's Harbor, rendered
// by its real chart, has no critical finding; the same platform without
// dataServices (which validation refuses: built here in memory) has the
// chart's internal PostgreSQL and Redis as critical findings naming the
// key to add.
func TestRenderedExampleHarbor(t *testing.T) {
	dir := harborChart(t)
	render := func(spec *platform.Spec) []Finding {
		charts, err := platform.TemplateCharts(spec, func(c string) (map[string]any, error) {
			return platform.ComponentValues(spec, templatesFS(t), c)
		}, only(platform.ChartsDir(dir), "harbor"))
		if err != nil {
			t.Fatal(err)
		}
		return analyzeRendered(t, spec, charts)
	}
	spec := examplePlatform(t)
	charts, err := platform.TemplateCharts(spec, func(c string) (map[string]any, error) {
		return platform.ComponentValues(spec, templatesFS(t), c)
	}, only(platform.ChartsDir(dir), "harbor"))
	if err != nil {
		t.Fatal(err)
	}
	// The anti-affinity render sets must select the pods it is on, or it
	// spreads nothing.
	snap, err := ParseSnapshot([]byte(charts[0].Manifest))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range (&analysis{s: snap}).allWorkloads() {
		aff := w.template.Spec.Affinity
		if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
			t.Errorf("%s/%s has no anti-affinity", w.kind, w.meta.Name)
			continue
		}
		term := aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
		sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
		if err != nil || !sel.Matches(labels.Set(w.template.Labels)) {
			t.Errorf("%s/%s: anti-affinity selector %v does not select its pods (%v)", w.kind, w.meta.Name, term.LabelSelector, w.template.Labels)
		}
	}
	got := render(spec)
	for _, f := range got {
		if f.Severity == SeverityCritical {
			t.Errorf("critical: %s: %s", f.Object, f.Problem)
		}
	}
	t.Logf("the example's Harbor:\n%s", strings.Join(keysAndProblems(got), "\n"))

	bare := examplePlatform(t)
	bare.DataServices = platform.DataServices{}
	got = render(bare)
	for _, want := range []struct{ object, problem, key string }{
		{"statefulset/harbor/harbor-database", "Harbor's internal PostgreSQL, 1 replica", "dataServices.postgres.databases.harbor"},
		{"statefulset/harbor/harbor-redis", "Harbor's internal Redis, 1 replica", "dataServices.redis.accounts.harbor"},
	} {
		found := false
		for _, f := range got {
			if f.Severity == SeverityCritical && f.Object == want.object && strings.Contains(f.Problem, want.problem) && strings.Contains(f.Fix, want.key) {
				found = true
			}
		}
		if !found {
			t.Errorf("without dataServices: no critical finding on %s; got:\n%s", want.object, strings.Join(keysAndProblems(got), "\n"))
		}
	}
}

// cachedCharts are the example's components whose real chart is in the
// chart cache (~/.cache/tsys-ci/charts/<chart>/ or <chart>-<version>.tgz;
// nothing is downloaded), with the version found. A cached chart whose
// version differs from the pin is used at its own version, and the test
// says so: the cache holds what could be had.
func cachedCharts(t *testing.T, spec *platform.Spec) (dir string, found map[string]string) {
	t.Helper()
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory for the chart cache")
	}
	dir = filepath.Join(home, ".cache", "tsys-ci", "charts")
	found = map[string]string{}
	for _, name := range platform.ComponentOrder {
		c := spec.Components[name]
		if !spec.Enabled(name) {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, c.Chart+"-"+c.Version+".tgz")); err == nil {
			found[name] = c.Version
			continue
		}
		ch, err := loader.Load(filepath.Join(dir, c.Chart))
		if err != nil {
			t.Logf("%s: skipped, no chart %s in %s (%v)", name, c.Chart, dir, err)
			continue
		}
		found[name] = ch.Metadata.Version
		if ch.Metadata.Version != c.Version {
			t.Logf("%s: platform.yaml pins chart %s %s; rendering the cached %s instead", name, c.Chart, c.Version, ch.Metadata.Version)
		}
	}
	if len(found) == 0 {
		t.Skipf("none of the example's charts is in %s", dir)
	}
	return dir, found
}

// TestRenderedExample: the example platform.yaml, every component whose
// real chart is in the cache rendered by Helm with render's values, plus
// render's manifests, as `platform doctor --rendered` does: no critical
// finding. The warnings are logged per component. Every PodDisruptionBudget
// render adds selects exactly the pods of one workload of its component's
// rendered chart, and those workloads have no "no PodDisruptionBudget"
// warning left.
func TestRenderedExample(t *testing.T) {
	spec := examplePlatform(t)
	dir, found := cachedCharts(t, spec)
	var names []string
	for _, name := range platform.ComponentOrder {
		if v, ok := found[name]; ok {
			c := spec.Components[name]
			c.Version = v
			spec.Components[name] = c
			names = append(names, name)
		}
	}
	charts, err := platform.TemplateCharts(spec, func(c string) (map[string]any, error) {
		return platform.ComponentValues(spec, templatesFS(t), c)
	}, only(platform.ChartsDir(dir), names...))
	if err != nil {
		t.Fatal(err)
	}
	got := analyzeRendered(t, spec, charts)
	for _, c := range charts {
		var crit, warn []string
		for _, f := range got {
			if ownedBy(f, c) {
				if f.Severity == SeverityCritical {
					crit = append(crit, f.Object+": "+f.Problem)
				} else {
					warn = append(warn, f.Severity.String()+" "+f.Object+": "+f.Problem)
				}
			}
		}
		for _, f := range crit {
			t.Errorf("%s (%s): critical: %s", c.Component, c.Chart, f)
		}
		t.Logf("%s (%s): %d critical, %d warnings%s", c.Component, c.Chart, len(crit), len(warn), indented(warn))
	}

	// render's PodDisruptionBudgets against the rendered charts' pods.
	out, err := platform.Render(spec, templatesFS(t))
	if err != nil {
		t.Fatal(err)
	}
	pdbs, err := ParseSnapshot(out["manifests/component-pdbs.yaml"])
	if err != nil {
		t.Fatal(err)
	}
	rendered := map[string]*analysis{}
	for _, c := range charts {
		snap, err := ParseSnapshot([]byte(c.Manifest))
		if err != nil {
			t.Fatal(err)
		}
		rendered[c.Namespace] = &analysis{s: snap}
	}
	checked := 0
	for _, p := range pdbs.PDBs {
		a, ok := rendered[p.Namespace]
		if !ok {
			continue // that component's chart is not in the cache
		}
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		var selected []string
		for _, w := range a.allWorkloads() {
			if sel.Matches(labels.Set(w.template.Labels)) {
				selected = append(selected, w.kind+"/"+p.Namespace+"/"+w.meta.Name)
			}
		}
		if len(selected) != 1 {
			t.Errorf("PodDisruptionBudget %s/%s (%s) selects the pods of %v, want exactly one workload", p.Namespace, p.Name, sel, selected)
			continue
		}
		checked++
		t.Logf("PodDisruptionBudget %s/%s selects %s", p.Namespace, p.Name, selected[0])
		for _, f := range got {
			if f.Object == selected[0] && strings.Contains(f.Problem, "no PodDisruptionBudget") {
				t.Errorf("%s still reported: %s", f.Object, f.Problem)
			}
		}
	}
	if _, ok := found["harbor"]; ok && checked < 5 {
		t.Errorf("checked %d of render's PodDisruptionBudgets against Harbor's chart, want at least Harbor's 5", checked)
	}
}

// ownedBy: a finding about an object in the chart's namespace.
func ownedBy(f Finding, c platform.ChartObjects) bool {
	parts := strings.SplitN(f.Object, "/", 3)
	return len(parts) == 3 && parts[1] == c.Namespace
}

func indented(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return "\n    " + strings.Join(lines, "\n    ")
}
