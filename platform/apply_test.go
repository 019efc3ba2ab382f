package platform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/kube"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// These tests exercise plan/apply's own logic (order, change detection,
// stopping, rollback) on Helm's in-memory release storage and Helm's own
// printing kube client. No API server is involved; that test waits for
// test/apiserver.

// flakyKube fails the next failWaits waits, like resources that never get ready.
type flakyKube struct {
	kubefake.PrintingKubeClient
	failWaits int
}

func (f *flakyKube) Wait(kube.ResourceList, time.Duration) error { return f.wait() }

func (f *flakyKube) WaitWithJobs(kube.ResourceList, time.Duration) error { return f.wait() }

func (f *flakyKube) wait() error {
	if f.failWaits > 0 {
		f.failWaits--
		return errors.New("timed out waiting for the condition")
	}
	return nil
}

// helmWorld is one fake cluster: release storage and a kube client per namespace.
type helmWorld struct {
	configs map[string]*action.Configuration
	kubes   map[string]*flakyKube
}

func newHelmWorld() *helmWorld {
	return &helmWorld{configs: map[string]*action.Configuration{}, kubes: map[string]*flakyKube{}}
}

func (w *helmWorld) kube(ns string) *flakyKube {
	if w.kubes[ns] == nil {
		w.kubes[ns] = &flakyKube{PrintingKubeClient: kubefake.PrintingKubeClient{Out: io.Discard}}
	}
	return w.kubes[ns]
}

func (w *helmWorld) config(ns string) (*action.Configuration, error) {
	if w.configs[ns] == nil {
		mem := driver.NewMemory()
		mem.SetNamespace(ns)
		w.configs[ns] = &action.Configuration{
			Releases:     storage.Init(mem),
			KubeClient:   w.kube(ns),
			Capabilities: chartutil.DefaultCapabilities,
			Log:          func(string, ...interface{}) {},
		}
	}
	return w.configs[ns], nil
}

func (w *helmWorld) revision(t *testing.T, spec *Spec, component string) int {
	t.Helper()
	cfg, _ := w.config(spec.component(component).Namespace)
	rel, err := action.NewGet(cfg).Run(releaseName(component))
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return rel.Version
}

func helmOptions(t *testing.T, w *helmWorld, progress io.Writer) HelmOptions {
	return HelmOptions{
		Config: w.config, LoadChart: ChartsDir("testdata/charts"), Templates: templatesFS(t),
		Wait: true, Timeout: time.Minute, Progress: progress,
	}
}

func actions(steps []Step) string {
	var out []string
	for _, s := range steps {
		out = append(out, s.Component+":"+s.Action)
	}
	return strings.Join(out, " ")
}

func TestApplyInstallsInOrderAndSecondApplyChangesNothing(t *testing.T) {
	spec := loadExample(t)
	w := newHelmWorld()
	var progress bytes.Buffer
	steps, err := Apply(spec, helmOptions(t, w, &progress))
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, progress.String())
	}
	if got := actions(steps); got != "metallb:install longhorn:install keycloak:install rancher:install harbor:install jenkins:install serve:install" {
		t.Fatalf("steps: %s", got)
	}
	if !strings.Contains(progress.String(), "[2/7] longhorn: install longhorn-1.12.2 in longhorn-system, waiting up to 1m0s") {
		t.Errorf("progress lacks the longhorn step:\n%s", progress.String())
	}
	cfg, _ := w.config("longhorn-system")
	rel, err := action.NewGet(cfg).Run("longhorn")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rel.Manifest, "nodeDownPodDeletionPolicy: delete-both-statefulset-and-deployment-pod") {
		t.Errorf("longhorn's release did not get the rendered values:\n%s", rel.Manifest)
	}

	plan, err := Plan(spec, helmOptions(t, w, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(plan); strings.Count(got, ":unchanged") != 7 {
		t.Fatalf("plan after apply: %s", got)
	}
	progress.Reset()
	if _, err := Apply(spec, helmOptions(t, w, &progress)); err != nil {
		t.Fatal(err)
	}
	for _, c := range append(ComponentOrder, ServeComponent) {
		if r := w.revision(t, spec, c); r != 1 {
			t.Errorf("%s is at revision %d after a second apply, want 1", c, r)
		}
	}
	if strings.Count(progress.String(), "unchanged") != 7 {
		t.Errorf("second apply progress:\n%s", progress.String())
	}
}

func TestApplyAppliesNamespacesFirstPoolsAfterMetalLBAndPDBsAfterTheirChart(t *testing.T) {
	spec := loadExample(t)
	w := newHelmWorld()
	var progress bytes.Buffer
	opts := helmOptions(t, w, &progress)
	var applied []string
	opts.ApplyObjects = func(_ context.Context, objs []map[string]any) (int, error) {
		var kinds []string
		for _, o := range objs {
			kinds = append(kinds, o["kind"].(string))
		}
		// MetalLB's release must exist when its pools are applied, and a
		// component's release when its PodDisruptionBudgets are.
		if kinds[0] == "PodDisruptionBudget" {
			ns := objs[0]["metadata"].(obj)["namespace"].(string)
			for _, c := range ComponentOrder {
				if spec.Components[c].Namespace == ns {
					applied = append(applied, fmt.Sprintf("%s in %s (%s revision %d)", strings.Join(kinds, ","), ns, c, w.revision(t, spec, c)))
				}
			}
			return len(objs), nil
		}
		applied = append(applied, fmt.Sprintf("%s (metallb revision %d)", strings.Join(kinds, ","), w.revision(t, spec, "metallb")))
		return len(objs), nil
	}
	if _, err := Apply(spec, opts); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Namespace,Namespace,Namespace,Namespace,Namespace,Namespace,Namespace,Namespace (metallb revision 0)",
		"IPAddressPool,L2Advertisement,IPAddressPool,L2Advertisement (metallb revision 1)",
		"ConfigMap (metallb revision 1)",
		"HelmChartConfig (metallb revision 1)",
		"PodDisruptionBudget in longhorn-system (longhorn revision 1)",
		"PodDisruptionBudget in cattle-system (rancher revision 1)",
		"PodDisruptionBudget,PodDisruptionBudget,PodDisruptionBudget,PodDisruptionBudget,PodDisruptionBudget in harbor (harbor revision 1)",
	}
	if strings.Join(applied, "\n") != strings.Join(want, "\n") {
		t.Fatalf("applied:\n%s\nwant:\n%s", strings.Join(applied, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(progress.String(), "MetalLB pools and L2 advertisements: 4 of 4 changed") ||
		!strings.Contains(progress.String(), "promote pool ConfigMap tsys-ci-system/tsys-ci-lb: 1 of 1 changed") ||
		!strings.Contains(progress.String(), "harbor's PodDisruptionBudgets: 5 of 5 changed") ||
		!strings.Contains(progress.String(), "gateway HelmChartConfig kube-system/traefik: 1 of 1 changed") {
		t.Errorf("progress:\n%s", progress.String())
	}
}

func TestPlanNamesWhatChanged(t *testing.T) {
	spec := loadExample(t)
	w := newHelmWorld()
	if _, err := Apply(spec, helmOptions(t, w, io.Discard)); err != nil {
		t.Fatal(err)
	}
	spec.Storage.ReplicaCount = 2
	// A newer harbor chart in another charts directory.
	dir := t.TempDir()
	copyChart(t, "testdata/charts/harbor", filepath.Join(dir, "harbor"), "1.18.4", "1.18.5")
	h := spec.Components["harbor"]
	h.Version, h.Repo = "1.18.5", "file://"+filepath.Join(dir, "harbor")
	spec.Components["harbor"] = h

	plan, err := Plan(spec, helmOptions(t, w, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	want := "metallb:unchanged longhorn:upgrade keycloak:unchanged rancher:unchanged harbor:upgrade jenkins:unchanged serve:unchanged"
	if got := actions(plan); got != want {
		t.Fatalf("plan: %s, want %s", got, want)
	}
	if r := plan[1].Reason; r != "values changed, manifests changed" {
		t.Errorf("longhorn reason %q", r)
	}
	if got, want := strings.Join(plan[1].Changes, "\n"), "values defaultSettings.defaultReplicaCount: 3 -> 2\n"+
		"values persistence.defaultClassReplicaCount: 3 -> 2\n~ ConfigMap/longhorn-system/longhorn-values"; got != want {
		t.Errorf("longhorn changes:\n%s\nwant:\n%s", got, want)
	}
	if len(plan[0].Changes) != 0 {
		t.Errorf("unchanged metallb lists changes: %q", plan[0].Changes)
	}
	if r := plan[4].Reason; !strings.HasPrefix(r, "chart 1.18.4 -> 1.18.5") {
		t.Errorf("harbor reason %q", r)
	}
	if _, err := Apply(spec, helmOptions(t, w, io.Discard)); err != nil {
		t.Fatal(err)
	}
	if w.revision(t, spec, "longhorn") != 2 || w.revision(t, spec, "harbor") != 2 || w.revision(t, spec, "jenkins") != 1 {
		t.Errorf("revisions after the upgrade: longhorn %d harbor %d jenkins %d", w.revision(t, spec, "longhorn"), w.revision(t, spec, "harbor"), w.revision(t, spec, "jenkins"))
	}
}

func TestApplyRollsBackAFailedUpgradeAndStops(t *testing.T) {
	spec := loadExample(t)
	w := newHelmWorld()
	if _, err := Apply(spec, helmOptions(t, w, io.Discard)); err != nil {
		t.Fatal(err)
	}
	spec.Storage.ReplicaCount = 2                 // longhorn changes
	spec.Domains.Harbor = "registry.tsys.example" // harbor changes
	w.kube("longhorn-system").failWaits = 1       // longhorn's new pods never get ready
	var progress bytes.Buffer
	done, err := Apply(spec, helmOptions(t, w, &progress))
	var aerr *ApplyError
	if !errors.As(err, &aerr) {
		t.Fatalf("got %v, want an ApplyError", err)
	}
	if aerr.Step.Component != "longhorn" || aerr.RolledBack != 1 || aerr.RollbackErr != nil {
		t.Fatalf("error %+v", aerr)
	}
	if !strings.Contains(err.Error(), "rolled back to revision 1") || !strings.Contains(err.Error(), "upgrade of longhorn (longhorn-1.12.2) in longhorn-system failed: not ready within 1m0s: timed out waiting") {
		t.Errorf("message: %v", err)
	}
	if !strings.Contains(progress.String(), "longhorn: rolled back to revision 1 in ") {
		t.Errorf("progress does not say when the rollback was done:\n%s", progress.String())
	}
	if got := actions(done); got != "metallb:unchanged" {
		t.Errorf("steps done before the failure: %s", got)
	}
	cfg, _ := w.config("longhorn-system")
	rel, err := action.NewGet(cfg).Run("longhorn")
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != 3 || !strings.Contains(rel.Manifest, "defaultReplicaCount: 3") {
		t.Errorf("after rollback longhorn is revision %d with:\n%s", rel.Version, rel.Manifest)
	}
	if r := w.revision(t, spec, "harbor"); r != 1 {
		t.Errorf("harbor, after the failure in the order, was touched: revision %d", r)
	}
	// Fixed: the next apply upgrades longhorn and harbor.
	if _, err := Apply(spec, helmOptions(t, w, io.Discard)); err != nil {
		t.Fatal(err)
	}
	if w.revision(t, spec, "longhorn") != 4 || w.revision(t, spec, "harbor") != 2 {
		t.Errorf("after the retry: longhorn %d, harbor %d", w.revision(t, spec, "longhorn"), w.revision(t, spec, "harbor"))
	}
}

func TestApplyRemovesAFailedInstallAndStops(t *testing.T) {
	spec := loadExample(t)
	w := newHelmWorld()
	w.kube("longhorn-system").failWaits = 1
	done, err := Apply(spec, helmOptions(t, w, io.Discard))
	var aerr *ApplyError
	if !errors.As(err, &aerr) || aerr.Step.Component != "longhorn" || !strings.Contains(err.Error(), "failed release was removed") {
		t.Fatalf("got %v", err)
	}
	if got := actions(done); got != "metallb:install" {
		t.Errorf("done: %s", got)
	}
	for _, c := range []string{"longhorn", "keycloak", "jenkins"} {
		if r := w.revision(t, spec, c); r != 0 {
			t.Errorf("%s has revision %d after the stop, want none", c, r)
		}
	}
	if _, err := Apply(spec, helmOptions(t, w, io.Discard)); err != nil {
		t.Fatalf("apply after the cause is gone: %v", err)
	}
}

func TestChartsDirRefusesAnotherVersion(t *testing.T) {
	spec := loadExample(t)
	m := spec.Components["metallb"]
	m.Version = "0.16.0"
	_, err := ChartsDir("testdata/charts")("metallb", m)
	if err == nil || !strings.Contains(err.Error(), "pins 0.16.0") {
		t.Fatalf("got %v", err)
	}
	_, err = ChartsDir(t.TempDir())("metallb", spec.Components["metallb"])
	if err == nil || !strings.Contains(err.Error(), "helm pull") {
		t.Fatalf("got %v", err)
	}
}

// A file:// chart that is not there is an error naming the field, not a
// reason to take the chart of the same name from --charts.
func TestChartsDirLocalRepoMustExist(t *testing.T) {
	spec := loadExample(t)
	h := spec.Components["harbor"]
	h.Repo = "file://" + filepath.Join(t.TempDir(), "harbor")
	_, err := ChartsDir("testdata/charts")("harbor", h)
	if err == nil || !strings.Contains(err.Error(), "components.harbor.repo") {
		t.Fatalf("got %v, want an error naming components.harbor.repo", err)
	}
	h.Repo = "file://testdata/charts/harbor"
	if _, err := ChartsDir("")("harbor", h); err != nil {
		t.Fatalf("an existing local chart: %v", err)
	}
	h.Chart = "registry"
	_, err = ChartsDir("")("harbor", h)
	if err == nil || !strings.Contains(err.Error(), "named harbor but platform.yaml says chart: registry") {
		t.Fatalf("got %v, want the chart name refused", err)
	}
}

func TestValueChanges(t *testing.T) {
	old := map[string]any{"lab": map[string]any{"version": "v1", "replicas": 2, "list": []any{"a"}}, "gone": true}
	next := map[string]any{"lab": map[string]any{"version": "v2", "replicas": 2.0, "list": []any{"a", "b"}}, "new": map[string]any{"x": 1}}
	got := strings.Join(valueChanges(old, next), "\n")
	want := strings.Join([]string{
		`gone: removed (was true)`,
		`lab.list: ["a"] -> ["a","b"]`,
		`lab.version: "v1" -> "v2"`,
		`new: added {"x":1}`,
	}, "\n")
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if c := valueChanges(nil, map[string]any{"a": 1}); len(c) != 1 || c[0] != "a: added 1" {
		t.Errorf("from no values: %q", c)
	}
}

// A value the chart defaults shows as a change from its default.
func TestEffectiveValueChangesCountChartDefaults(t *testing.T) {
	ch := &chart.Chart{Metadata: &chart.Metadata{Name: "c", Version: "1.0.0", APIVersion: "v2"},
		Values: map[string]any{"lab": map[string]any{"version": "v1", "replicas": 2}}}
	got := effectiveValueChanges(ch, map[string]any{"lab": map[string]any{"image": "x"}}, ch, map[string]any{"lab": map[string]any{"image": "x", "version": "v2"}})
	if want := `lab.version: "v1" -> "v2"`; strings.Join(got, "\n") != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	// The default set explicitly changes nothing effective: say what was given.
	got = effectiveValueChanges(ch, nil, ch, map[string]any{"lab": map[string]any{"replicas": 2}})
	if want := `lab: added {"replicas":2}`; strings.Join(got, "\n") != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestManifestChanges(t *testing.T) {
	old := "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata: {k: v1}\n" +
		"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n" +
		"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n"
	next := "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata: {k: v2}\n" +
		"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n" +
		"---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  namespace: x\n"
	got := strings.Join(manifestChanges(old, next), ", ")
	if want := "~ ConfigMap/a, + Deployment/x/d, - ConfigMap/b"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func copyChart(t *testing.T, from, to, oldVersion, newVersion string) {
	t.Helper()
	for _, f := range []string{"Chart.yaml", "templates/values.yaml"} {
		b, err := os.ReadFile(filepath.Join(from, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "Chart.yaml" {
			b = bytes.Replace(b, []byte("version: "+oldVersion), []byte("version: "+newVersion), 1)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(to, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHasFields(t *testing.T) {
	live := map[string]any{"metadata": map[string]any{"name": "lan", "resourceVersion": "7", "labels": map[string]any{"a": "b"}},
		"spec": map[string]any{"addresses": []any{"10.0.0.1-10.0.0.9"}, "autoAssign": true}}
	cases := []struct {
		want map[string]any
		ok   bool
	}{
		{map[string]any{"metadata": map[string]any{"name": "lan"}, "spec": map[string]any{"addresses": []string{"10.0.0.1-10.0.0.9"}}}, true},
		{map[string]any{"spec": map[string]any{"addresses": []string{"10.0.0.1-10.0.0.8"}}}, false},
		{map[string]any{"metadata": map[string]any{"labels": map[string]any{"a": "c"}}}, false},
		{map[string]any{"spec": map[string]any{"interfaces": []string{"eth0"}}}, false},
	}
	for i, tc := range cases {
		if got := hasFields(live, tc.want); got != tc.ok {
			t.Errorf("case %d: hasFields = %v, want %v", i, got, tc.ok)
		}
	}
}
