package clustertest

import (
	"context"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/registry"
	"github.com/tsys-group/tsys-ci/test/apiserver"
)

// TestChartAdmissionRBAC: with admission.enabled the chart lets serve's
// ServiceAccount share verified digests in its one ConfigMap, and no
// other ConfigMap of its namespace; without admission it gets nothing of
// the kind (TestChartRBACIsEnoughAndNoMore).
func TestChartAdmissionRBAC(t *testing.T) {
	admin := apiserver.Client(t)
	ctx := context.Background()
	ns := apiserver.Namespace(t, admin, "serve-adm")
	chrt, err := loader.Load("../../../templates/serve")
	if err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ReadValues([]byte("webhookSecrets: {demo: 'Bearer 0123456789abcdef0123'}\nconfig: {registry: harbor.company.example}\n" +
		"tls: {secretName: serve-tls}\nverifyKey: x\nappNamespaces: [shop]\nadmission: {enabled: true, caBundle: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	top, err := chartutil.ToRenderValues(chrt, vals, chartutil.ReleaseOptions{Name: "tsys-ci", Namespace: ns, IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(chrt, top)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if !strings.HasSuffix(name, "admission.yaml") && !strings.HasSuffix(name, "serviceaccount.yaml") {
			continue
		}
		for _, doc := range strings.Split(content, "\n---") {
			if strings.TrimSpace(strings.Trim(strings.TrimSpace(doc), "-")) == "" {
				continue
			}
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			switch o := obj.(type) {
			case *corev1.ServiceAccount:
				_, err = admin.CoreV1().ServiceAccounts(ns).Create(ctx, o, metav1.CreateOptions{})
			case *rbacv1.Role:
				_, err = admin.RbacV1().Roles(ns).Create(ctx, o, metav1.CreateOptions{})
			case *rbacv1.RoleBinding:
				_, err = admin.RbacV1().RoleBindings(ns).Create(ctx, o, metav1.CreateOptions{})
			default:
				continue // the webhook and its Service: not rights
			}
			if err != nil {
				t.Fatalf("creating from %s: %v", name, err)
			}
		}
	}
	sa := rest.CopyConfig(cfg)
	sa.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":tsys-ci-serve"}
	c, err := kubernetes.NewForConfig(sa)
	if err != nil {
		t.Fatal(err)
	}
	shared := &serve.KubeVerifiedDigests{Client: c, Namespace: ns, Name: serve.DefaultVerifiedDigestsName}
	ref := "harbor.company.example/demo/shop@sha256:" + strings.Repeat("ab", 32)
	for i := 0; i < 2; i++ { // create, then patch
		if err := shared.Add(ctx, ref, registry.SignatureProof{Payload: []byte("{}"), Signature: []byte("sig")}); err != nil {
			t.Fatalf("sharing a digest as the ServiceAccount (round %d): %v", i, err)
		}
	}
	if _, ok, err := shared.Get(ctx, ref); err != nil || !ok {
		t.Fatalf("reading it back as the ServiceAccount: %v, %v", ok, err)
	}
	for _, a := range []struct {
		verb, name string
		want       bool
	}{
		{"get", serve.DefaultVerifiedDigestsName, true},
		{"patch", serve.DefaultVerifiedDigestsName, true},
		{"get", "another-configmap", false},
		{"patch", "another-configmap", false},
		{"delete", serve.DefaultVerifiedDigestsName, false},
	} {
		r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authv1.ResourceAttributes{Verb: a.verb, Resource: "configmaps", Namespace: ns, Name: a.name}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Allowed != a.want {
			t.Errorf("%s configmap %s: allowed %v, want %v", a.verb, a.name, r.Status.Allowed, a.want)
		}
	}
}
