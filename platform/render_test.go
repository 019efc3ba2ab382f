package platform

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/tsys-group/tsys-ci/templates"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/render")

func templatesFS(t *testing.T) fs.FS {
	t.Helper()
	sub, err := fs.Sub(templates.Platform, "platform")
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func renderExample(t *testing.T) Rendered {
	t.Helper()
	out, err := Render(loadExample(t), templatesFS(t))
	if err != nil {
		t.Fatalf("rendering the example: %v", err)
	}
	return out
}

// TestRenderGolden compares every rendered file of the example with
// testdata/render; run with -update after an intended change and review
// the diff.
func TestRenderGolden(t *testing.T) {
	out := renderExample(t)
	dir := filepath.Join("testdata", "render")
	if *update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := out.Write(dir); err != nil {
			t.Fatal(err)
		}
	}
	var golden []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		golden = append(golden, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatalf("reading golden files (run go test ./platform -run TestRenderGolden -update): %v", err)
	}
	if got, want := strings.Join(out.Paths(), "\n"), strings.Join(golden, "\n"); got != want {
		t.Fatalf("rendered files differ from testdata/render:\ngot:\n%s\nwant:\n%s", got, want)
	}
	for _, p := range golden {
		want, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out[p], want) {
			t.Errorf("%s differs from its golden file; got:\n%s", p, out[p])
		}
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	first := renderExample(t)
	for i := 0; i < 20; i++ {
		again := renderExample(t)
		for _, p := range first.Paths() {
			if !bytes.Equal(first[p], again[p]) {
				t.Fatalf("render %d: %s changed between two renders of one file", i, p)
			}
		}
	}
}

func TestRenderedYAMLParses(t *testing.T) {
	for p, body := range renderExample(t) {
		if !strings.HasSuffix(p, ".yaml") {
			continue
		}
		for i, doc := range strings.Split(string(body), "\n---\n") {
			var v map[string]any
			if err := yaml.Unmarshal([]byte(doc), &v); err != nil || len(v) == 0 {
				t.Errorf("%s document %d is not a YAML mapping: %v", p, i, err)
			}
		}
	}
}

func TestRenderNeverWritesPasswords(t *testing.T) {
	canary := "canary-Pa55word-7f3c"
	for _, env := range []string{"TSYS_LDAP_BIND_PASSWORD", "TSYS_LDAP_HARBOR_PASSWORD", "TSYS_LDAP_KEYCLOAK_PASSWORD", "TSYS_LDAP_JENKINS_PASSWORD",
		"TSYS_PG_HARBOR_PASSWORD", "TSYS_PG_KEYCLOAK_PASSWORD", "TSYS_REDIS_HARBOR_PASSWORD"} {
		t.Setenv(env, canary)
	}
	for p, body := range renderExample(t) {
		if bytes.Contains(body, []byte(canary)) {
			t.Errorf("%s contains a password", p)
		}
	}
}

func TestRenderServersShareCriticalSettings(t *testing.T) {
	out := renderExample(t)
	critical := []string{"cluster-cidr", "service-cidr", "cluster-dns", "cluster-domain", "disable", "flannel-backend", "secrets-encryption"}
	var first map[string]any
	for _, h := range []string{"db1", "db2", "db3"} {
		var cfg map[string]any
		if err := yaml.Unmarshal(out["hosts/"+h+"/config.yaml"], &cfg); err != nil {
			t.Fatal(err)
		}
		if h == "db1" {
			first = cfg
			if cfg["cluster-init"] != true || cfg["server"] != nil {
				t.Errorf("db1 must initialise the cluster: %v", cfg)
			}
			continue
		}
		if cfg["cluster-init"] != nil || cfg["server"] != "https://k8s-api.tsys.lan:6443" {
			t.Errorf("%s must join through the registration address: %v", h, cfg)
		}
		for _, k := range critical {
			if a, b := mustJSON(t, first[k]), mustJSON(t, cfg[k]); a != b || a == "null" {
				t.Errorf("%s: %s is %s, db1 has %s", h, k, b, a)
			}
		}
	}
	var agent map[string]any
	if err := yaml.Unmarshal(out["hosts/www1/config.yaml"], &agent); err != nil {
		t.Fatal(err)
	}
	if agent["cluster-cidr"] != nil || agent["tls-san"] != nil {
		t.Errorf("agent www1 carries server-only settings: %v", agent)
	}
	if !strings.Contains(string(out["hosts/www1/config.yaml"]), "JOINS LAST") {
		t.Errorf("www1 is not marked to join last")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRenderMergesOverrides(t *testing.T) {
	spec := loadExample(t)
	h := spec.Components["harbor"]
	h.Values = map[string]any{"core": map[string]any{"replicas": 3}, "externalURL": "https://registry.tsys.example"}
	spec.Components["harbor"] = h
	out, err := Render(spec, templatesFS(t))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		ExternalURL string `json:"externalURL"`
		Core        struct {
			Replicas              int    `json:"replicas"`
			ConfigureUserSettings string `json:"configureUserSettings"`
		} `json:"core"`
	}
	if err := yaml.Unmarshal(out["values/harbor.yaml"], &values); err != nil {
		t.Fatal(err)
	}
	if values.Core.Replicas != 3 || values.ExternalURL != "https://registry.tsys.example" {
		t.Errorf("overrides not applied: %+v", values)
	}
	if !strings.Contains(values.Core.ConfigureUserSettings, `"auth_mode": "ldap_auth"`) {
		t.Errorf("merging an override dropped the sibling LDAP settings: %+v", values)
	}
}

func TestRenderSkipsDisabledComponents(t *testing.T) {
	spec := loadExample(t)
	r := spec.Components["rancher"]
	r.Disabled = true
	spec.Components["rancher"] = r
	out, err := Render(spec, templatesFS(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"values/rancher.yaml", "manifests/rancher-openldap-authconfig.yaml"} {
		if _, ok := out[p]; ok {
			t.Errorf("%s rendered for a disabled component", p)
		}
	}
}

// The PodDisruptionBudgets render adds select the labels of the upstream
// charts; a component installed from another chart (the lab's stand-in)
// gets none, so they never take over a PDB that chart makes itself.
func TestComponentPDBsOnlyForTheirChart(t *testing.T) {
	spec := loadExample(t)
	if got := len(componentPDBs(spec, "harbor")); got != 5 {
		t.Errorf("harbor: %d PodDisruptionBudgets, want 5 (core, jobservice, portal, registry, trivy)", got)
	}
	for _, c := range []string{"metallb", "keycloak", "jenkins"} {
		if got := componentPDBs(spec, c); len(got) != 0 {
			t.Errorf("%s: render adds %d PodDisruptionBudgets; its chart makes its own or runs one instance", c, len(got))
		}
	}
	for _, c := range []string{"longhorn", "rancher", "harbor"} {
		comp := spec.Components[c]
		comp.Chart = "lab-component"
		spec.Components[c] = comp
	}
	if got := allComponentPDBs(spec); len(got) != 0 {
		t.Errorf("components on another chart still get %d PodDisruptionBudgets", len(got))
	}
}

// TestGatewayValues (issue 26): the gateway's HelmChartConfig carries the
// replicas, the spread and the budget; gateway.values override them, and
// without a gateway Traefik's HelmChartConfig stays in cluster-services.yaml.
func TestGatewayValues(t *testing.T) {
	spec := loadExample(t)
	spec.Gateway.Replicas = 3
	spec.Gateway.Values = map[string]any{"podDisruptionBudget": map[string]any{"maxUnavailable": 2}}
	out, err := Render(spec, templatesFS(t))
	if err != nil {
		t.Fatal(err)
	}
	var hcc struct {
		Kind     string `json:"kind"`
		Metadata struct{ Name, Namespace string }
		Spec     struct {
			ValuesContent string `json:"valuesContent"`
		}
	}
	body := out["manifests/gateway.yaml"]
	if err := yaml.Unmarshal(body, &hcc); err != nil {
		t.Fatal(err)
	}
	var values struct {
		Deployment          struct{ Replicas int }
		PodDisruptionBudget struct {
			Enabled        bool
			MaxUnavailable int `json:"maxUnavailable"`
		} `json:"podDisruptionBudget"`
		TopologySpreadConstraints []struct {
			TopologyKey       string `json:"topologyKey"`
			WhenUnsatisfiable string `json:"whenUnsatisfiable"`
		} `json:"topologySpreadConstraints"`
	}
	if err := yaml.Unmarshal([]byte(hcc.Spec.ValuesContent), &values); err != nil {
		t.Fatal(err)
	}
	if hcc.Kind != "HelmChartConfig" || hcc.Metadata.Name != "traefik" || hcc.Metadata.Namespace != "kube-system" ||
		values.Deployment.Replicas != 3 || !values.PodDisruptionBudget.Enabled || values.PodDisruptionBudget.MaxUnavailable != 2 ||
		len(values.TopologySpreadConstraints) != 1 || values.TopologySpreadConstraints[0].TopologyKey != "kubernetes.io/hostname" {
		t.Fatalf("gateway.yaml:\n%s", body)
	}
	if strings.Contains(string(out["manifests/cluster-services.yaml"]), "HelmChartConfig") {
		t.Error("cluster-services.yaml has a second HelmChartConfig for Traefik beside the gateway's")
	}

	spec.Gateway = nil
	out, err = Render(spec, templatesFS(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out["manifests/gateway.yaml"]; ok || !strings.Contains(string(out["manifests/cluster-services.yaml"]), "HelmChartConfig") {
		t.Errorf("without a gateway: gateway.yaml rendered %v; cluster-services.yaml:\n%s", ok, out["manifests/cluster-services.yaml"])
	}
}
