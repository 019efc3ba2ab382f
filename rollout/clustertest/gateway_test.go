package clustertest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/apiserver"
)

var (
	ingressRoutes = schema.GroupVersionResource{Group: "traefik.io", Version: "v1alpha1", Resource: "ingressroutes"}
	middlewares   = schema.GroupVersionResource{Group: "traefik.io", Version: "v1alpha1", Resource: "middlewares"}
)

// traefikCRDs are Traefik's own CRDs (testdata/crds, from the traefik/v3
// module), as k3s's Traefik chart installs them.
var traefikCRDs = []string{"testdata/crds/traefik.io_ingressroutes.yaml", "testdata/crds/traefik.io_middlewares.yaml"}

const authURL = "http://oauth2-proxy.kube-system.svc.cluster.local:4180/oauth2/auth"

func shopAPI() *rollout.API {
	return &rollout.API{Port: "http", Hosts: []string{"api.shop.example"}, Routes: []rollout.APIRoute{
		{Name: "orders", PathPrefix: "/api/orders", Methods: []string{"GET", "POST"}, Groups: []string{"shop-api-users"},
			RateLimit: &rollout.RateLimit{Average: 50, Burst: 100}, IPAllowList: []string{"10.251.0.0/16"}},
		{Name: "health", PathPrefix: "/api/health"},
	}}
}

// gatewayObjects lists the app's IngressRoutes and Middlewares as
// Kind/name, sorted.
func gatewayObjects(t *testing.T, dyn dynamic.Interface, ns string) []string {
	t.Helper()
	var out []string
	for kind, gvr := range map[string]schema.GroupVersionResource{"IngressRoute": ingressRoutes, "Middleware": middlewares} {
		l, err := dyn.Resource(gvr).Namespace(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range l.Items {
			out = append(out, kind+"/"+o.GetName())
		}
	}
	slices.Sort(out)
	return out
}

func traefikServed(t *testing.T) bool {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dc.ServerResourcesForGroupVersion("traefik.io/v1alpha1")
	return err == nil
}

// Issue 26: promote puts an app's api: section behind the gateway as
// Traefik's own objects (real CRDs from Traefik v3.7.13), changes them with
// the section, removes them when it is removed and when the app is
// deleted; on a cluster without the CRDs only an app with api: is refused,
// saying how to install the gateway.
func TestGatewayAPI(t *testing.T) {
	a := newApp(t, func(s *rollout.AppSpec) { s.API = shopAPI() })
	ctx := context.Background()
	poolConfigMap(t, a.cs, a.ns, rollout.Pool{Addresses: []string{"10.89.0.240"}, Ports: rollout.PortRange{Min: 30000, Max: 30099},
		Gateway: &rollout.GatewayConfig{AuthURL: authURL}})
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	promote := func(image string) (*rollout.Result, error) {
		p := a.promoter("test")
		p.Dynamic = dyn
		return p.Promote(ctx, rollout.Request{Spec: a.spec, Image: image})
	}

	if !traefikServed(t) {
		withAPI := a.spec.API
		a.spec.API = nil
		if _, err := promote("reg/shop@sha256:v1"); err != nil {
			t.Fatalf("an app without api: on a cluster without Traefik's CRDs: %v\n%s", err, a.out)
		}
		a.spec.API = withAPI
		_, err := promote("reg/shop@sha256:v1")
		var missing *rollout.GatewayMissingError
		if !errors.As(err, &missing) || !strings.Contains(err.Error(), "Traefik's CRDs (ingressroutes.traefik.io, middlewares.traefik.io) are missing") ||
			!strings.Contains(err.Error(), "run `tsys-ci platform apply -f platform.yaml`") {
			t.Fatalf("an app with api: on a cluster without the gateway: %v, want a GatewayMissingError saying how to install it", err)
		}
	} else {
		t.Log("Traefik's CRDs were already installed (a repeated run): the part without them is not run")
	}
	apiserver.InstallCRDs(t, traefikCRDs...)

	mustPromoteWith := func(image string) {
		t.Helper()
		if _, err := promote(image); err != nil {
			t.Fatalf("promote %s: %v\n%s", image, err, a.out)
		}
	}
	mustPromoteWith("reg/shop@sha256:v1")
	want := []string{"IngressRoute/shop-api", "Middleware/shop-orders-allow", "Middleware/shop-orders-auth", "Middleware/shop-orders-ratelimit"}
	if got := gatewayObjects(t, dyn, a.ns); !slices.Equal(got, want) {
		t.Fatalf("gateway objects %v, want %v\n%s", got, want, a.out)
	}
	state, err := a.cs.CoreV1().ConfigMaps(a.ns).Get(ctx, rollout.StateName("shop"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ir, err := dyn.Resource(ingressRoutes).Namespace(a.ns).Get(ctx, "shop-api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if refs := ir.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != state.UID || ir.GetLabels()["app.kubernetes.io/managed-by"] != "tsys-ci" ||
		ir.GetManagedFields()[0].Manager != "tsys-ci" || ir.GetManagedFields()[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Errorf("IngressRoute metadata: owners %v labels %v managed %v", refs, ir.GetLabels(), ir.GetManagedFields())
	}
	routes, _, _ := unstructured.NestedSlice(ir.Object, "spec", "routes")
	if len(routes) != 2 {
		t.Fatalf("routes %v", routes)
	}
	first := routes[0].(map[string]any)
	if first["match"] != "Host(`api.shop.example`) && PathPrefix(`/api/orders`) && (Method(`GET`) || Method(`POST`))" {
		t.Errorf("first route's match %v", first["match"])
	}
	// The API server kept the port as the Service's port name (Traefik's
	// CRD: int or string).
	if svc := first["services"].([]any)[0].(map[string]any); svc["name"] != "shop" || svc["port"] != "http" {
		t.Errorf("first route's service %v", svc)
	}
	auth, err := dyn.Resource(middlewares).Namespace(a.ns).Get(ctx, "shop-orders-auth", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if address, _, _ := unstructured.NestedString(auth.Object, "spec", "forwardAuth", "address"); address != authURL+"?allowed_groups=shop-api-users" {
		t.Errorf("forwardAuth address %q", address)
	}
	rl, err := dyn.Resource(middlewares).Namespace(a.ns).Get(ctx, "shop-orders-ratelimit", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if avg, _, _ := unstructured.NestedInt64(rl.Object, "spec", "rateLimit", "average"); avg != 50 {
		t.Errorf("rateLimit %v", rl.Object["spec"])
	}

	// A changed section, with a new version: the orders route loses its
	// rate limit and groups, a route is added; what is gone is removed.
	a.spec.API.Routes[0].RateLimit, a.spec.API.Routes[0].Groups = nil, nil
	a.spec.API.Routes = append(a.spec.API.Routes, rollout.APIRoute{Name: "admin", PathPrefix: "/api/admin", Groups: []string{"shop-admins"}})
	mustPromoteWith("reg/shop@sha256:v2")
	want = []string{"IngressRoute/shop-api", "Middleware/shop-admin-auth", "Middleware/shop-orders-allow"}
	if got := gatewayObjects(t, dyn, a.ns); !slices.Equal(got, want) {
		t.Fatalf("after the change: %v, want %v\n%s", got, want, a.out)
	}
	ir, err = dyn.Resource(ingressRoutes).Namespace(a.ns).Get(ctx, "shop-api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if routes, _, _ := unstructured.NestedSlice(ir.Object, "spec", "routes"); len(routes) != 3 {
		t.Errorf("after the change, routes %v", routes)
	}

	// The section removed: the same version again, and nothing is left.
	a.spec.API = nil
	mustPromoteWith("reg/shop@sha256:v2")
	if got := gatewayObjects(t, dyn, a.ns); len(got) != 0 {
		t.Fatalf("after the api: section was removed: %v left\n%s", got, a.out)
	}

	// Back, then the app deleted: its gateway objects go with it.
	a.spec.API = shopAPI()
	mustPromoteWith("reg/shop@sha256:v3")
	if got := gatewayObjects(t, dyn, a.ns); len(got) != 4 {
		t.Fatalf("api: back: %v", got)
	}
	p := a.promoter("test")
	p.Dynamic = dyn
	res, err := p.Delete(ctx, a.ns, "shop", rollout.DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if deleted := strings.Join(res.Deleted, " "); !strings.Contains(deleted, "IngressRoute/shop-api") || !strings.Contains(deleted, "Middleware/shop-orders-auth") {
		t.Errorf("delete reports %s", deleted)
	}
	if got := gatewayObjects(t, dyn, a.ns); len(got) != 0 {
		t.Fatalf("after delete: %v left", got)
	}
}
