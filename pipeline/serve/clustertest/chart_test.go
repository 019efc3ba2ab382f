package clustertest

import (
	"context"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// applyChartRights renders templates/serve as release name in namespace
// ns with values, and creates as admin the ServiceAccount and the rights
// (Roles, ClusterRoles, their bindings, admission policies) of the
// templates named (by file, e.g. "rbac.yaml"). Other kinds in them (a
// webhook, a Service) are not rights and are skipped. It returns serve's
// ServiceAccount as a client: the chart's rights, nothing more.
func applyChartRights(t *testing.T, admin kubernetes.Interface, name, ns, values string, templates ...string) kubernetes.Interface {
	t.Helper()
	ctx := context.Background()
	chrt, err := loader.Load("../../../templates/serve")
	if err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ReadValues([]byte(values))
	if err != nil {
		t.Fatal(err)
	}
	top, err := chartutil.ToRenderValues(chrt, vals, chartutil.ReleaseOptions{Name: name, Namespace: ns, IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(chrt, top)
	if err != nil {
		t.Fatal(err)
	}
	wanted := func(file string) bool {
		for _, w := range append(templates, "serviceaccount.yaml") {
			if strings.HasSuffix(file, "/"+w) {
				return true
			}
		}
		return false
	}
	for file, content := range files {
		if !wanted(file) {
			continue
		}
		for _, doc := range strings.Split(content, "\n---") {
			if strings.TrimSpace(strings.Trim(strings.TrimSpace(doc), "-")) == "" {
				continue
			}
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			switch o := obj.(type) {
			case *corev1.ServiceAccount:
				_, err = admin.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
			case *rbacv1.Role:
				_, err = admin.RbacV1().Roles(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
			case *rbacv1.RoleBinding:
				_, err = admin.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
			case *rbacv1.ClusterRole:
				_, err = admin.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
			case *rbacv1.ClusterRoleBinding:
				_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
			case *admissionv1.ValidatingAdmissionPolicy:
				_, err = admin.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, o, metav1.CreateOptions{})
			case *admissionv1.ValidatingAdmissionPolicyBinding:
				_, err = admin.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, o, metav1.CreateOptions{})
			default:
				continue // a webhook, its Service: not rights
			}
			if err != nil {
				t.Fatalf("creating from %s: %v", file, err)
			}
		}
	}
	sa := rest.CopyConfig(cfg)
	sa.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + name + "-serve"}
	c, err := kubernetes.NewForConfig(sa)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// access is one question to the API server's authorizer: may the client
// do verb on group/resource[/sub] name in ns, and the answer wanted.
type access struct {
	verb, group, resource, sub, ns, name string
	want                                 bool
}

// checkAccess asks the API server each question as c (a
// SelfSubjectAccessReview) and reports every wrong answer.
func checkAccess(t *testing.T, c kubernetes.Interface, questions []access) {
	t.Helper()
	for _, a := range questions {
		r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authv1.ResourceAttributes{Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.sub, Namespace: a.ns, Name: a.name}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Allowed != a.want {
			t.Errorf("%s %s/%s %s in %q: allowed %v, want %v", a.verb, a.resource, a.sub, a.name, a.ns, r.Status.Allowed, a.want)
		}
	}
}
