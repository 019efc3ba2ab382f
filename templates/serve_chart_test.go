package templates_test

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

const serveValues = `
webhookSecrets:
  demo: "Bearer 0123456789abcdef0123456789abcdef"
  web: "Bearer fedcba9876543210fedcba9876543210"
ldapBindPassword: "bind-pw"
ldapCA: |
  -----BEGIN CERTIFICATE-----
  MIIB
  -----END CERTIFICATE-----
allowUnsigned: true
tls: {secretName: tsys-ci-serve-tls}
readToken: "0123456789abcdef-read"
sessionKey: "0123456789abcdef0123456789abcdef-session"
appNamespaces: [shop, web]
config:
  registry: harbor.company.example
  policies:
    - {name: shop-main, repository: demo/shop, tags: "main-*", app: shop, namespace: shop, spec: specs/shop.yaml, envSecret: shop-env}
    - {name: blog, repository: web/blog, tags: "v*", app: blog, namespace: web, strategy: canary, spec: specs/blog.yaml}
  ldap:
    url: ldaps://ucs.company.example:7636
    caFile: /etc/tsys-ci/ldap-ca.pem
    baseDN: dc=company,dc=example
    bindDN: uid=tsys-ci,cn=users,dc=company,dc=example
    bindPasswordEnv: LDAP_BIND_PASSWORD
  access:
    shop: cn=shop-deployers,cn=groups,dc=company,dc=example
specs:
  shop.yaml: |
    name: shop
    ports: [{name: http, containerPort: 8080, expose: true, hosts: [shop.company.example]}]
  blog.yaml: |
    name: blog
    namespace: web
    ports: [{name: http, containerPort: 8080, expose: true, hosts: [blog.company.example]}]
`

// renderServe renders templates/serve with the Helm v3 SDK (loader and
// engine, no cluster) and returns the manifests by template name.
func renderServe(t *testing.T, values string) (map[string]string, error) {
	t.Helper()
	chrt, err := loader.Load("serve")
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	vals, err := chartutil.ReadValues([]byte(values))
	if err != nil {
		t.Fatal(err)
	}
	top, err := chartutil.ToRenderValues(chrt, vals, chartutil.ReleaseOptions{Name: "tsys-ci", Namespace: "tsys-ci", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatalf("values: %v", err)
	}
	return engine.Render(chrt, top)
}

// decodeStrict decodes every document as its typed Kubernetes object;
// an unknown or misspelt field is an error.
func decodeStrict(t *testing.T, files map[string]string) []runtime.Object {
	t.Helper()
	dec := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{Yaml: true, Strict: true})
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var objs []runtime.Object
	for _, n := range names {
		if strings.HasSuffix(n, ".tpl") {
			continue
		}
		for i, doc := range strings.Split(files[n], "\n---") {
			if strings.TrimSpace(strings.Trim(strings.TrimSpace(doc), "-")) == "" {
				continue
			}
			obj, gvk, err := dec.Decode([]byte(doc), nil, nil)
			if err != nil {
				t.Fatalf("%s document %d does not decode strictly: %v\n%s", n, i, err, doc)
			}
			if gvk.Kind == "" {
				t.Fatalf("%s document %d has no kind", n, i)
			}
			objs = append(objs, obj)
		}
	}
	return objs
}

func TestServeChartRendersValidObjects(t *testing.T) {
	files, err := renderServe(t, serveValues)
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeStrict(t, files)
	var dep *appsv1.Deployment
	var svc *corev1.Service
	var pdb *policyv1.PodDisruptionBudget
	var cm *corev1.ConfigMap
	specs := map[string]string{}
	bindings := map[string]bool{}
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[kindOf(o)]++
		switch o := o.(type) {
		case *appsv1.Deployment:
			dep = o
		case *corev1.Service:
			svc = o
		case *policyv1.PodDisruptionBudget:
			pdb = o
		case *corev1.ConfigMap:
			if strings.HasSuffix(o.Name, "-specs") {
				specs = o.Data
			} else {
				cm = o
			}
		case *rbacv1.RoleBinding:
			if o.RoleRef.Name == "tsys-ci-serve-promote" {
				bindings[o.Namespace] = true
			}
		}
	}
	for _, k := range []string{"Deployment", "Service", "PodDisruptionBudget", "ServiceAccount", "Secret", "ConfigMap", "Role", "RoleBinding", "ClusterRole"} {
		if kinds[k] == 0 {
			t.Errorf("no %s rendered (kinds: %v)", k, kinds)
		}
	}
	if dep == nil || pdb == nil || cm == nil || svc == nil {
		t.Fatal("deployment, Service, PDB or config missing")
	}
	// The Service reaches the leader only (the pod it labels), never the
	// follower, which would refuse Harbor's deliveries.
	if svc.Spec.Selector[serve.LeaderLabel] != "true" || svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("Service %s selects %v (type %s), want the leader label and ClusterIP by default", svc.Name, svc.Spec.Selector, svc.Spec.Type)
	}
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	switch {
	case *dep.Spec.Replicas != 2:
		t.Errorf("replicas %d", *dep.Spec.Replicas)
	case pod.Affinity == nil || len(pod.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 1 ||
		pod.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].TopologyKey != "kubernetes.io/hostname":
		t.Errorf("no anti-affinity across nodes: %+v", pod.Affinity)
	case pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1:
		t.Errorf("PDB %+v", pdb.Spec)
	case c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz":
		t.Errorf("probes %+v %+v", c.ReadinessProbe, c.LivenessProbe)
	case *pod.TerminationGracePeriodSeconds < 300+10:
		t.Errorf("grace period %d is shorter than the shutdown timeout plus preStop", *pod.TerminationGracePeriodSeconds)
	case !bindings["shop"] || !bindings["web"] || !bindings["tsys-ci-system"] || len(bindings) != 3:
		t.Errorf("promote RoleBindings in %v, want shop, web and the pool namespace", bindings)
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"serve", "--config=/etc/tsys-ci/serve.yaml", "--allow-unsigned", "--lease-name=tsys-ci-serve", "--label-leader"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	// The rendered serve.yaml is a config serve accepts, with the specs
	// where the pod mounts them.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "specs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for n, s := range specs {
		if err := os.WriteFile(filepath.Join(dir, "specs", n), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := serve.ParseConfig([]byte(cm.Data["serve.yaml"]), dir)
	if err != nil {
		t.Fatalf("serve rejects the rendered serve.yaml: %v\n%s", err, cm.Data["serve.yaml"])
	}
	// Issue 17 finding 5: TLS from the Secret, probes and Service on https.
	if cfg.TLS == nil || cfg.TLS.CertFile != "/var/run/tsys-ci/tls/tls.crt" || cfg.InsecurePlainHTTP ||
		c.ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS || c.LivenessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS ||
		svc.Spec.Ports[0].Name != "https" || pod.Volumes[2].Secret.SecretName != "tsys-ci-serve-tls" {
		t.Errorf("TLS: config %+v, probes %+v %+v, Service ports %+v, volumes %+v", cfg.TLS, c.ReadinessProbe, c.LivenessProbe, svc.Spec.Ports, pod.Volumes)
	}
	// Issue 17 finding 9: the read token's file.
	if cfg.ReadTokenFile != "/var/run/tsys-ci/read/read-token" {
		t.Errorf("readTokenFile %q", cfg.ReadTokenFile)
	}
	// Issue 20: the dashboard's session key, one Secret for both replicas.
	mounted := slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == "session-key" && m.MountPath == "/var/run/tsys-ci/session"
	}) && slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool {
		return v.Name == "session-key" && v.Secret != nil && v.Secret.SecretName == "tsys-ci-serve-session"
	})
	if cfg.Dashboard == nil || cfg.Dashboard.SessionKeyFile != "/var/run/tsys-ci/session/session-key" || !mounted {
		t.Errorf("dashboard %+v, session key mounted %v", cfg.Dashboard, mounted)
	}
	if len(cfg.Policies) != 2 || cfg.Registry != "harbor.company.example" || cfg.WebhookSecretsDir != "/var/run/tsys-ci/webhook-secrets" || cfg.Access["shop"] == "" || cm.Data["ldap-ca.pem"] == "" {
		t.Fatalf("rendered config %+v", cfg)
	}
	var projected []string
	for _, src := range pod.Volumes[0].Projected.Sources {
		for _, it := range src.ConfigMap.Items {
			projected = append(projected, it.Path)
		}
	}
	if strings.Join(projected, ",") != "specs/blog.yaml,specs/shop.yaml" {
		t.Errorf("specs projected as %v", projected)
	}
}

func kindOf(o runtime.Object) string {
	gvks, _, err := scheme.Scheme.ObjectKinds(o)
	if err != nil || len(gvks) == 0 {
		return "?"
	}
	return gvks[0].Kind
}

func TestServeChartRefusesMissingChoices(t *testing.T) {
	for _, tc := range []struct{ drop, words string }{
		{"webhookSecrets", "webhookSecrets is required"},
		{"allowUnsigned", "set verifyKey"},
		{"tls", "tls.secretName is required"}, // issue 17 finding 5
	} {
		var vals map[string]any
		if err := yaml.Unmarshal([]byte(serveValues), &vals); err != nil {
			t.Fatal(err)
		}
		delete(vals, tc.drop)
		b, _ := yaml.Marshal(vals)
		if _, err := renderServe(t, string(b)); err == nil || !strings.Contains(err.Error(), tc.words) {
			t.Errorf("without %s: %v, want an error saying %q", tc.drop, err, tc.words)
		}
	}
	// Issue 17 finding 1: an old values file (one webhookSecret, no
	// registry) is refused with what to give instead.
	for _, tc := range []struct{ from, to, words string }{
		{"webhookSecrets:\n", "webhookSecret: \"Bearer 0123456789abcdef0123456789abcdef\"\nwebhookSecrets:\n", "one per project"},
		{"  registry: harbor.company.example\n", "", "config.registry is required"},
		{`sessionKey: "0123456789abcdef0123456789abcdef-session"`, `sessionKey: "short"`, "sessionKey must be at least 32 characters"},
	} {
		if _, err := renderServe(t, strings.Replace(serveValues, tc.from, tc.to, 1)); err == nil || !strings.Contains(err.Error(), tc.words) {
			t.Errorf("values with %q: %v, want an error saying %q", tc.to, err, tc.words)
		}
	}
	// Issue 17 finding 4: a policy deploying outside appNamespaces fails
	// the chart; no namespace rights; managed app namespaces get Pod
	// Security labels.
	if _, err := renderServe(t, strings.Replace(serveValues, "appNamespaces: [shop, web]", "appNamespaces: [shop]", 1)); err == nil || !strings.Contains(err.Error(), "namespace web, which is not in appNamespaces") {
		t.Errorf("a policy outside appNamespaces: %v", err)
	}
	managed, err := renderServe(t, serveValues+"manageAppNamespaces: true\n")
	if err != nil {
		t.Fatal(err)
	}
	var nsLabelled int
	for _, o := range decodeStrict(t, managed) {
		switch o := o.(type) {
		case *corev1.Namespace:
			if o.Labels["pod-security.kubernetes.io/enforce"] == "baseline" && o.Labels["pod-security.kubernetes.io/warn"] == "restricted" {
				nsLabelled++
			}
		case *rbacv1.ClusterRole:
			for _, r := range o.Rules {
				if slices.Contains(r.Resources, "namespaces") {
					t.Errorf("ClusterRole %s grants %v on namespaces", o.Name, r.Verbs)
				}
			}
		case *rbacv1.ClusterRoleBinding:
			t.Errorf("ClusterRoleBinding %s rendered; serve needs no cluster-wide binding", o.Name)
		}
	}
	if nsLabelled != 2 {
		t.Errorf("%d app namespaces with Pod Security labels, want 2 (shop, web)", nsLabelled)
	}
	// Existing Secrets replace the rendered ones.
	vals := strings.Replace(strings.Replace(serveValues, "webhookSecrets:\n", "existingWebhookSecret: serve-hooks\nexistingSecret: serve-secrets\nx:\n", 1), `readToken: "0123456789abcdef-read"`, "existingReadTokenSecret: serve-secrets", 1)
	vals = strings.Replace(vals, `sessionKey: "0123456789abcdef0123456789abcdef-session"`, "existingSessionKeySecret: serve-secrets", 1)
	files, err := renderServe(t, vals)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range decodeStrict(t, files) {
		if s, ok := o.(*corev1.Secret); ok {
			t.Fatalf("Secret %s rendered although existingSecret and existingWebhookSecret are set", s.Name)
		}
		if d, ok := o.(*appsv1.Deployment); ok && d.Spec.Template.Spec.Volumes[1].Secret.SecretName != "serve-hooks" {
			t.Fatalf("deployment mounts %s", d.Spec.Template.Spec.Volumes[1].Secret.SecretName)
		}
	}
}

var updateManifests = flag.Bool("update-serve-manifests", false, "rewrite templates/serve/manifests.yaml from the chart")

// templates/serve/manifests.yaml is the chart rendered with the example
// values above, for `kubectl apply` without Helm (replace the placeholders
// first); this test keeps it in step with the chart.
func TestServeManifestsMatchChart(t *testing.T) {
	example := strings.Replace(serveValues, "Bearer 0123456789abcdef0123456789abcdef", "REPLACE-WITH: project demo's webhook secret from tsys-ci registry setup", 1)
	example = strings.Replace(example, "Bearer fedcba9876543210fedcba9876543210", "REPLACE-WITH: project web's webhook secret from tsys-ci registry setup", 1)
	example = strings.Replace(example, `readToken: "0123456789abcdef-read"`, `readToken: "REPLACE-WITH: a random token for Prometheus and scripts"`, 1)
	example = strings.Replace(example, `sessionKey: "0123456789abcdef0123456789abcdef-session"`, `sessionKey: "REPLACE-WITH: 48 random bytes in base64 (head -c 48 /dev/urandom | base64)"`, 1)
	example = strings.Replace(example, `ldapBindPassword: "bind-pw"`, `ldapBindPassword: "REPLACE-WITH-THE-BIND-PASSWORD"`, 1)
	files, err := renderServe(t, example)
	if err != nil {
		t.Fatal(err)
	}
	decodeStrict(t, files)
	names := make([]string, 0, len(files))
	for n := range files {
		if !strings.HasSuffix(n, ".tpl") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# Generated from the chart in this folder with the example values of\n# templates/serve_chart_test.go: go test ./templates -run ServeManifests -update-serve-manifests\n")
	for _, n := range names {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", n, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(files[n]), "---")))
	}
	path := filepath.Join("serve", "manifests.yaml")
	if *updateManifests {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != b.String() {
		t.Fatalf("%s is not the chart's current output (%v); run go test ./templates -run ServeManifests -update-serve-manifests", path, err)
	}
}

// platform render names Secrets for the verify key and the directory's CA
// instead of putting them in values; one source of each, not two.
func TestServeChartTakesKeysFromExistingSecrets(t *testing.T) {
	vals := strings.Replace(serveValues, "allowUnsigned: true\n", "existingVerifyKeySecret: serve-key\nexistingLDAPCASecret: serve-ca\n", 1)
	vals = strings.Replace(vals, "ldapCA: |\n  -----BEGIN CERTIFICATE-----\n  MIIB\n  -----END CERTIFICATE-----\n", "", 1)
	files, err := renderServe(t, vals)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range decodeStrict(t, files) {
		d, ok := o.(*appsv1.Deployment)
		if !ok {
			continue
		}
		var got []string
		for _, src := range d.Spec.Template.Spec.Volumes[0].Projected.Sources {
			if src.Secret != nil {
				got = append(got, src.Secret.Name+"/"+src.Secret.Items[0].Key+"->"+src.Secret.Items[0].Path)
			}
		}
		if strings.Join(got, " ") != "serve-key/cosign.pub->cosign.pub serve-ca/ldap-ca.pem->ldap-ca.pem" {
			t.Errorf("projected secrets %v", got)
		}
		if args := strings.Join(d.Spec.Template.Spec.Containers[0].Args, " "); !strings.Contains(args, "--verify-key=/etc/tsys-ci/cosign.pub") {
			t.Errorf("args %s", args)
		}
	}
	for _, tc := range []struct{ add, words string }{
		{"verifyKey: |\n  -----BEGIN PUBLIC KEY-----\n", "verifyKey and existingVerifyKeySecret are both set"},
		{"ldapCA: x\n", "ldapCA and existingLDAPCASecret are both set"},
	} {
		if _, err := renderServe(t, vals+tc.add); err == nil || !strings.Contains(err.Error(), tc.words) {
			t.Errorf("with %q: %v, want %q", tc.add, err, tc.words)
		}
	}
}

// TestServeChartRegistersImageAdmission: with admission.enabled the chart
// registers serve as the validating webhook of the app namespaces (never
// its own), behind a Service of every replica, and refuses the settings
// that could not work.
func TestServeChartRegistersImageAdmission(t *testing.T) {
	signed := strings.Replace(serveValues, "allowUnsigned: true", "verifyKey: |\n  -----BEGIN PUBLIC KEY-----\n  MFkw\n  -----END PUBLIC KEY-----", 1)
	on := signed + "admission: {enabled: true, caBundle: \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"}\n"
	files, err := renderServe(t, on)
	if err != nil {
		t.Fatal(err)
	}
	var hook *admissionregistrationv1.ValidatingWebhookConfiguration
	var svc *corev1.Service
	for _, o := range decodeStrict(t, files) {
		switch o := o.(type) {
		case *admissionregistrationv1.ValidatingWebhookConfiguration:
			hook = o
		case *corev1.Service:
			if o.Name == "tsys-ci-serve-admission" {
				svc = o
			}
		}
	}
	if hook == nil || svc == nil {
		t.Fatalf("webhook %v, admission Service %v", hook != nil, svc != nil)
	}
	if _, leaderOnly := svc.Spec.Selector["tsys-ci.io/serve-leader"]; leaderOnly || svc.Spec.Ports[0].TargetPort.StrVal != "https" {
		t.Errorf("admission Service %+v: want every replica, on https", svc.Spec)
	}
	w := hook.Webhooks[0]
	if *w.FailurePolicy != admissionregistrationv1.Fail || *w.TimeoutSeconds != 5 || w.ClientConfig.Service.Path == nil || *w.ClientConfig.Service.Path != serve.AdmissionPath ||
		!strings.Contains(string(w.ClientConfig.CABundle), "BEGIN CERTIFICATE") {
		t.Errorf("webhook %+v", w)
	}
	if ns := w.NamespaceSelector.MatchExpressions[0].Values; strings.Join(ns, ",") != "shop,web" {
		t.Errorf("judged namespaces %v, want the app namespaces shop,web", ns)
	}
	for _, tc := range []struct{ values, words string }{
		{serveValues + "admission: {enabled: true, caBundle: x}\n", "no key to admit images by"},
		{signed + "admission: {enabled: true}\n", "needs admission.caBundle"},
		{signed + "admission: {enabled: true, caBundle: x, namespaces: [shop, tsys-ci]}\n", "holds serve's own namespace tsys-ci"},
	} {
		if _, err := renderServe(t, tc.values); err == nil || !strings.Contains(err.Error(), tc.words) {
			t.Errorf("values %q: %v, want an error saying %q", tc.values[len(tc.values)-60:], err, tc.words)
		}
	}
	if files, err := renderServe(t, signed); err != nil || strings.Contains(strings.Join(slices.Collect(maps.Values(files)), ""), "ValidatingWebhookConfiguration") {
		t.Errorf("admission is opt-in: without it, %v", err)
	}
}

// TestServeChartEnvSecretRBAC: a policy's envSecret gives serve get on
// that Secret of its namespace (by name) and promote's Secret rights in
// that policy's app namespace only; without envSecret, no Secret rights
// at all. On a real API server: pipeline/serve/clustertest's
// TestChartEnvSecretRBAC.
func TestServeChartEnvSecretRBAC(t *testing.T) {
	secretRoles := func(values string) map[string][]rbacv1.PolicyRule {
		t.Helper()
		files, err := renderServe(t, values)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]rbacv1.PolicyRule{}
		for _, obj := range decodeStrict(t, files) {
			role, ok := obj.(*rbacv1.Role)
			if !ok {
				continue
			}
			for _, r := range role.Rules {
				if slices.Contains(r.Resources, "secrets") {
					out[role.Namespace+"/"+role.Name] = append(out[role.Namespace+"/"+role.Name], r)
				}
			}
		}
		return out
	}
	got := secretRoles(serveValues)
	if r := got["tsys-ci/tsys-ci-serve-env-secrets"]; len(r) != 1 || !slices.Equal(r[0].ResourceNames, []string{"shop-env"}) || !slices.Equal(r[0].Verbs, []string{"get"}) {
		t.Errorf("serve's namespace: %+v, want get on shop-env only", r)
	}
	if r := got["shop/tsys-ci-serve-app-secrets"]; len(r) != 1 || !slices.Equal(r[0].Verbs, []string{"get", "list", "create", "delete"}) {
		t.Errorf("the app namespace shop: %+v", r)
	}
	if len(got) != 2 {
		t.Errorf("Secret rights in %v; want serve's namespace and shop only (blog, in web, has no envSecret)", slices.Sorted(maps.Keys(got)))
	}
	if got := secretRoles(strings.Replace(serveValues, ", envSecret: shop-env", "", 1)); len(got) != 0 {
		t.Errorf("without envSecret: Secret rights in %v", slices.Sorted(maps.Keys(got)))
	}
}

// A staged policy (serve.yaml stages, issue 20) deploys into every
// stage's namespace: each must be in appNamespaces, and a staged policy
// with an envSecret gets the app-secrets Role in each.
func TestServeChartStagesNamespaces(t *testing.T) {
	staged := strings.Replace(serveValues, "envSecret: shop-env}", "envSecret: shop-env, stages: [{name: dev}, {name: prod, namespace: shop-prod, approval: {group: release-managers}}]}", 1)
	if _, err := renderServe(t, staged); err == nil || !strings.Contains(err.Error(), "policy shop-main's stage prod deploys into namespace shop-prod, which is not in appNamespaces") {
		t.Errorf("a stage outside appNamespaces: %v", err)
	}
	files, err := renderServe(t, strings.Replace(staged, "appNamespaces: [shop, web]", "appNamespaces: [shop, shop-prod, web]", 1))
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]bool{}
	for _, obj := range decodeStrict(t, files) {
		if role, ok := obj.(*rbacv1.Role); ok {
			roles[role.Namespace+"/"+role.Name] = true
		}
	}
	for _, want := range []string{"shop/tsys-ci-serve-app-secrets", "shop-prod/tsys-ci-serve-app-secrets"} {
		if !roles[want] {
			t.Errorf("no Role %s; roles: %v", want, slices.Sorted(maps.Keys(roles)))
		}
	}
}
