package platform

import (
	"encoding/json"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/templates"
)

// The rendered pool ConfigMap is one promote reads: the pool key decodes
// as rollout.Pool and passes its own check.
func TestRenderedPromotePoolIsRolloutsPool(t *testing.T) {
	out := renderExample(t)
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(out["manifests/promote-pool.yaml"], &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Namespace != rollout.DefaultAllocNamespace || cm.Name != rollout.DefaultAllocName || len(cm.Data) != 1 {
		t.Fatalf("ConfigMap %s/%s with keys %v, want %s/%s with %s only", cm.Namespace, cm.Name, cm.Data, rollout.DefaultAllocNamespace, rollout.DefaultAllocName, rollout.PoolKey)
	}
	var pool rollout.Pool
	dec := json.NewDecoder(strings.NewReader(cm.Data[rollout.PoolKey]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pool); err != nil {
		t.Fatal(err)
	}
	if err := pool.Validate(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(pool.Addresses, ",") != "10.251.50.220-10.251.50.250" || pool.Ports.Min != 30000 || pool.Ports.Max != 30999 {
		t.Errorf("pool %+v", pool)
	}
}

func TestWithoutPaaSNothingOfItIsRendered(t *testing.T) {
	spec := loadExample(t)
	spec.PaaS = PaaS{}
	out, err := Render(spec, templatesFS(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"manifests/promote-pool.yaml", "values/serve.yaml"} {
		if _, ok := out[p]; ok {
			t.Errorf("%s rendered without paas", p)
		}
	}
	if strings.Contains(string(out["manifests/namespaces.yaml"]), "name: tsys-ci") || strings.Contains(string(out["SECRETS.txt"]), "\nserve ") {
		t.Errorf("the PaaS layer's namespaces or secrets rendered without paas")
	}
	if got := strings.Join(spec.releases(), " "); got != strings.Join(ComponentOrder, " ") {
		t.Errorf("releases %s", got)
	}
}

func serveChart(t *testing.T, spec *Spec) map[string]string {
	t.Helper()
	sub, err := fs.Sub(templates.Serve, "serve")
	if err != nil {
		t.Fatal(err)
	}
	load := ChartFS(ServeComponent, sub, func(string, Component) (*chart.Chart, error) { return nil, errors.New("not the embedded chart") })
	ch, err := load(ServeComponent, spec.component(ServeComponent))
	if err != nil {
		t.Fatal(err)
	}
	values, err := ComponentValues(spec, templatesFS(t), ServeComponent)
	if err != nil {
		t.Fatal(err)
	}
	top, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{Name: ServeRelease, Namespace: spec.PaaS.Serve.Namespace, IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(ch, top)
	if err != nil {
		t.Fatalf("serve's chart refuses the rendered values: %v", err)
	}
	return files
}

// The rendered values satisfy serve's own chart (its fail checks), and the
// serve.yaml it makes of them is one serve accepts.
func TestRenderedServeValuesInstallServesChart(t *testing.T) {
	spec := loadExample(t)
	files := serveChart(t, spec)
	var dep appsv1.Deployment
	if err := yaml.Unmarshal([]byte(files["tsys-ci-serve/templates/deployment.yaml"]), &dep); err != nil {
		t.Fatal(err)
	}
	args := strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " ")
	if *dep.Spec.Replicas != 2 || !strings.Contains(args, "--verify-key=/etc/tsys-ci/cosign.pub") || strings.Contains(args, "--allow-unsigned") ||
		dep.Spec.Template.Spec.Containers[0].Image != "harbor.tsys.example/tsys/tsys-ci:0.1.0" {
		t.Errorf("deployment: replicas %d, image %s, args %s", *dep.Spec.Replicas, dep.Spec.Template.Spec.Containers[0].Image, args)
	}
	var projected []string
	for _, src := range dep.Spec.Template.Spec.Volumes[0].Projected.Sources {
		if src.Secret != nil {
			projected = append(projected, src.Secret.Name+":"+src.Secret.Items[0].Path)
		}
	}
	if got := strings.Join(projected, " "); got != "tsys-ci-serve-verify-key:cosign.pub tsys-ci-serve-ldap-ca:ldap-ca.pem" {
		t.Errorf("secrets projected into /etc/tsys-ci: %s", got)
	}
	var secrets []string
	for _, v := range dep.Spec.Template.Spec.Volumes[1:] {
		if v.Secret != nil {
			secrets = append(secrets, v.Secret.SecretName)
		}
	}
	if !slices.Contains(secrets, "tsys-ci-serve-webhook") || !slices.Contains(secrets, "tsys-ci-serve-tls") {
		t.Errorf("secret volumes %v", secrets)
	}
	if s := files["tsys-ci-serve/templates/secret.yaml"]; strings.Contains(s, "kind: Secret") {
		t.Errorf("the chart makes a Secret although every secret is an existing one:\n%s", s)
	}
	docs := strings.Split(files["tsys-ci-serve/templates/configmap.yaml"], "\n---")
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal([]byte(docs[0]), &cm); err != nil {
		t.Fatal(err)
	}
	cfg, err := serve.ParseConfig([]byte(cm.Data["serve.yaml"]), t.TempDir())
	if err != nil {
		t.Fatalf("serve refuses the serve.yaml made of the rendered values: %v\n%s", err, cm.Data["serve.yaml"])
	}
	if cfg.Registry != "harbor.tsys.example" || cfg.TLS == nil || cfg.LDAP == nil || cfg.LDAP.CAFile != "/etc/tsys-ci/ldap-ca.pem" ||
		cfg.LDAP.BindDN != "uid=svc-tsys-ci,cn=users,dc=tsys,dc=lan" || cfg.Access["shop"] != "cn=shop-deployers,cn=groups,dc=tsys,dc=lan" {
		t.Errorf("serve.yaml %s", cm.Data["serve.yaml"])
	}

	// A lab's choices: plain HTTP, unsigned images, no directory CA.
	spec.PaaS.Serve.TLS = ServeTLS{InsecurePlainHTTP: true}
	spec.PaaS.Serve.VerifyKey = ServeVerifyKey{AllowUnsigned: true}
	spec.LDAP.CAFile = ""
	files = serveChart(t, spec)
	if err := yaml.Unmarshal([]byte(files["tsys-ci-serve/templates/deployment.yaml"]), &dep); err != nil {
		t.Fatal(err)
	}
	if args := strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " "); !strings.Contains(args, "--allow-unsigned") {
		t.Errorf("args %s", args)
	}
	if !strings.Contains(files["tsys-ci-serve/templates/service.yaml"], "port: 80\n") {
		t.Errorf("plain HTTP Service:\n%s", files["tsys-ci-serve/templates/service.yaml"])
	}
	if got := spec.ServeWebhookURL(); got != "http://tsys-ci-serve.tsys-ci.svc.cluster.local/webhook/harbor" {
		t.Errorf("webhook URL %s", got)
	}
}

func TestChartFSChecksTheVersion(t *testing.T) {
	spec := loadExample(t)
	sub, err := fs.Sub(templates.Serve, "serve")
	if err != nil {
		t.Fatal(err)
	}
	c := spec.component(ServeComponent)
	c.Version = "9.9.9"
	_, err = ChartFS(ServeComponent, sub, nil)(ServeComponent, c)
	if err == nil || !strings.Contains(err.Error(), "carries chart tsys-ci-serve 0.1.0, but platform.yaml pins 9.9.9: set paas.serve.version: 0.1.0") {
		t.Fatalf("got %v", err)
	}
	// A repo in platform.yaml goes to the next loader.
	c.Repo = "file://testdata/charts/tsys-ci-serve"
	c.Version = "0.1.0"
	ch, err := ChartFS(ServeComponent, sub, ChartsDir(""))(ServeComponent, c)
	if err != nil || !strings.Contains(ch.Metadata.Description, "stand") {
		t.Fatalf("got %v, %v", ch, err)
	}
}

func TestPaaSValidationNamesTheField(t *testing.T) {
	paas := func(d map[string]any) map[string]any { return m(d, "paas") }
	promote := func(d map[string]any) map[string]any { return m(paas(d), "promote") }
	srv := func(d map[string]any) map[string]any { return m(paas(d), "serve") }
	pools := func(d map[string]any) []any { return m(d, "metallb")["pools"].([]any) }
	cases := []struct {
		name     string
		edit     func(doc map[string]any)
		path     string
		contains string
	}{
		{"outside the metallb pool", func(d map[string]any) { promote(d)["addresses"] = []any{"10.251.50.215-10.251.50.225"} },
			"paas.promote.addresses[0]", `not inside one address entry of MetalLB pool "promote"`},
		{"auto-assigning pool", func(d map[string]any) { delete(pools(d)[1].(map[string]any), "autoAssign") },
			"paas.promote.metallbPool", "another Service could take an address promote hands out"},
		{"auto-assigning pool named", func(d map[string]any) {
			promote(d)["metallbPool"] = "lan"
			promote(d)["addresses"] = []any{"10.251.50.200"}
		}, "paas.promote.metallbPool", `MetalLB pool "lan" gives its addresses to any LoadBalancer Service`},
		{"unknown pool", func(d map[string]any) { promote(d)["metallbPool"] = "wan" }, "paas.promote.metallbPool", `"wan" is not one of metallb.pools[].name (lan, promote)`},
		{"overlapping entries", func(d map[string]any) {
			promote(d)["addresses"] = []any{"10.251.50.220-10.251.50.230", "10.251.50.230"}
		}, "paas.promote.addresses[1]", "overlaps"},
		{"bad address", func(d map[string]any) { promote(d)["addresses"] = []any{"10.251.50.x"} }, "paas.promote.addresses[0]", "not an address"},
		{"ports", func(d map[string]any) { promote(d)["ports"] = map[string]any{"min": 31000, "max": 30000} }, "paas.promote.ports", "not a port range"},
		{"unknown field", nil, "", `unknown field "pool"`},
		{"serve without pool", func(d map[string]any) { delete(paas(d), "promote") }, "paas.promote", "serve's deploys allocate"},
		{"one replica", func(d map[string]any) { srv(d)["replicas"] = 1 }, "paas.serve.replicas", "single point of failure"},
		{"no tls", func(d map[string]any) { delete(srv(d), "tls") }, "paas.serve.tls", "insecurePlainHTTP: true sends them in clear"},
		{"no verify key", func(d map[string]any) { delete(srv(d), "verifyKey") }, "paas.serve.verifyKey", "allowUnsigned: true"},
		{"unpinned", func(d map[string]any) { delete(srv(d), "version") }, "paas.serve.version", "pinned"},
		{"tag and digest", func(d map[string]any) { m(srv(d), "image")["digest"] = "sha256:" + strings.Repeat("a", 64) }, "paas.serve.image", "keep one"},
		{"registry url", func(d map[string]any) { srv(d)["registry"] = "https://harbor.tsys.example" }, "paas.serve.registry", "no scheme"},
		{"access outside app namespaces", func(d map[string]any) { m(srv(d), "access")["web"] = "web-deployers" }, "paas.serve.access.web", "add it to paas.serve.appNamespaces"},
		{"bind", func(d map[string]any) { delete(m(srv(d), "bind"), "passwordEnv") }, "paas.serve.bind", "no password source"},
		{"webhook url not a url", func(d map[string]any) { srv(d)["webhookURL"] = "tsys-ci.tsys.example" }, "paas.serve.webhookURL", "not an http:// or https:// URL"},
		{"webhook url in clear to tls", func(d map[string]any) { srv(d)["webhookURL"] = "http://tsys-ci.tsys.example/webhook/harbor" }, "paas.serve.webhookURL", "give its https:// address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var doc []byte
			if tc.edit == nil {
				doc = mutate(t, func(d map[string]any) { promote(d)["pool"] = "x" })
				if _, err := ParseSpec(doc); err == nil || !strings.Contains(err.Error(), tc.contains) {
					t.Fatalf("got %v, want %q", err, tc.contains)
				}
				return
			}
			_, err := ParseSpec(mutate(t, tc.edit))
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("got %v, want a validation error at %s", err, tc.path)
			}
			for _, p := range verr.Problems {
				if p.Path == tc.path && strings.Contains(p.Message, tc.contains) {
					return
				}
			}
			t.Fatalf("no problem at %s containing %q in:\n%v", tc.path, tc.contains, err)
		})
	}
}

// The webhook URL registry setup registers by default is the Service serve's
// chart makes from the rendered values; paas.serve.webhookURL replaces it,
// and SECRETS.txt asks for a certificate of the host Harbor then calls.
func TestServeWebhookURL(t *testing.T) {
	spec := loadExample(t)
	if got, want := spec.ServeWebhookURL(), "https://tsys-ci-serve.tsys-ci.svc.cluster.local"+ServeWebhookPath; got != want {
		t.Errorf("default webhook URL %s, want %s", got, want)
	}
	var svc corev1.Service
	if err := yaml.Unmarshal([]byte(serveChart(t, spec)["tsys-ci-serve/templates/service.yaml"]), &svc); err != nil {
		t.Fatal(err)
	}
	if svc.Name+"."+svc.Namespace != "tsys-ci-serve.tsys-ci" || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 {
		t.Errorf("the chart's Service is %s.%s ports %+v; the default webhook URL calls tsys-ci-serve.tsys-ci:443", svc.Name, svc.Namespace, svc.Spec.Ports)
	}

	spec.PaaS.Serve.WebhookURL = "https://tsys-ci.tsys.example:8443" + ServeWebhookPath
	if got := spec.ServeWebhookURL(); got != spec.PaaS.Serve.WebhookURL {
		t.Errorf("webhook URL %s, want paas.serve.webhookURL %s", got, spec.PaaS.Serve.WebhookURL)
	}
	out, err := Render(spec, templatesFS(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out["SECRETS.txt"]), "serve's certificate for tsys-ci.tsys.example (") {
		t.Errorf("SECRETS.txt does not ask for a certificate of webhookURL's host:\n%s", out["SECRETS.txt"])
	}
}

// Spec.URL, which registry setup and jenkins seed call, is the address the
// rendered values give Harbor and Jenkins.
func TestComponentURLsAreTheRenderedOnes(t *testing.T) {
	spec := loadExample(t)
	out := renderExample(t)
	for _, c := range []struct{ component, file, key string }{
		{"harbor", "values/harbor.yaml", "externalURL"},
		{"jenkins", "values/jenkins.yaml", "controller.jenkinsUrl"},
	} {
		var values map[string]any
		if err := yaml.Unmarshal(out[c.file], &values); err != nil {
			t.Fatal(err)
		}
		var got any = values
		for _, k := range strings.Split(c.key, ".") {
			got = got.(map[string]any)[k]
		}
		if want := spec.URL(c.component); got != want || want != "https://"+c.component+".tsys.example" {
			t.Errorf("%s: %s is %v, Spec.URL(%q) %s", c.file, c.key, got, c.component, want)
		}
	}
	if spec.URL("metallb") != "" {
		t.Errorf("metallb has no domain, but URL is %q", spec.URL("metallb"))
	}
}
