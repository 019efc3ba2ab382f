package rollout

import (
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const apiBase = "name: shop\nports: [{name: http, containerPort: 8080}, {name: ssh, containerPort: 22, protocol: tcp}]\n"

// Issue 26: the api: section's mistakes, each named by field path with what
// to write instead.
func TestAPISpecErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"no hosts or routes", apiBase + "api: {}\n", []string{"api.hosts: missing; list the host names", "api.routes: missing; list at least one route"}},
		{"unknown port", apiBase + "api: {port: web, hosts: [api.shop.example], routes: [{name: a, pathPrefix: /a}]}\n",
			[]string{`api.port: "web" is not one of the app's ports; write one of: http, ssh`}},
		{"tcp port", apiBase + "api: {port: ssh, hosts: [api.shop.example], routes: [{name: a, pathPrefix: /a}]}\n",
			[]string{`api.port: "ssh" is a tcp port; the gateway routes HTTP: name an http port`}},
		{"several http ports", "name: shop\nports: [{name: a, containerPort: 80}, {name: b, containerPort: 81}]\napi: {hosts: [api.shop.example], routes: [{name: a, pathPrefix: /a}]}\n",
			[]string{"api.port: missing; the app has several http ports (a, b): name the one the API is on"}},
		{"bad host", apiBase + "api: {hosts: [API_shop], routes: [{name: a, pathPrefix: /a}]}\n",
			[]string{`api.hosts[0]: "API_shop" is not a host name`}},
		{"route mistakes", apiBase + `api:
  hosts: [api.shop.example]
  routes:
    - {name: Orders, pathPrefix: orders, methods: [get, POST, POST], groups: ["a,b"], rateLimit: {average: 0, burst: -1}, ipAllowList: [10.0.0.0/33, "x"]}
    - {name: b, pathPrefix: "/b?x=1"}
    - {name: b, pathPrefix: /c}
`, []string{
			`api.routes[0].name: "Orders" is not a valid name`,
			`api.routes[0].pathPrefix: "orders" does not start with /; write e.g. /orders`,
			`api.routes[0].methods[0]: "get" is not a method the gateway routes; write one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (upper case)`,
			`api.routes[0].methods[2]: "POST" is listed twice`,
			`api.routes[0].groups[0]: "a,b" is not a directory group name; write the group's cn`,
			"api.routes[0].rateLimit.average: is 0; give the requests per second",
			"api.routes[0].rateLimit.burst: is -1; give at least average",
			`api.routes[0].ipAllowList[0]: "10.0.0.0/33" is neither an address nor a CIDR; write e.g. 10.251.0.0/16`,
			`api.routes[0].ipAllowList[1]: "x" is neither`,
			`api.routes[1].pathPrefix: "/b?x=1" holds a character a path prefix cannot`,
			`api.routes[2].name: "b" is used by another route`,
		}},
		{"same prefix twice", apiBase + "api: {hosts: [api.shop.example], routes: [{name: a, pathPrefix: /a}, {name: b, pathPrefix: /a}]}\n",
			[]string{"api.routes[1].pathPrefix: /a with the same methods is also route a"}},
		{"burst under average", apiBase + "api: {hosts: [api.shop.example], routes: [{name: a, pathPrefix: /a, rateLimit: {average: 10, burst: 5}}]}\n",
			[]string{"api.routes[0].rateLimit.burst: is 5; give at least average (10)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	// The same prefix for other methods is two routes, not a mistake.
	if _, err := ParseSpec([]byte(apiBase + "api: {hosts: [api.shop.example], routes: [{name: a, pathPrefix: /a, methods: [GET]}, {name: b, pathPrefix: /a, methods: [POST]}]}\n")); err != nil {
		t.Fatal(err)
	}
}

const apiSpec = apiBase + `api:
  hosts: [api.shop.example, shop.example]
  routes:
    - name: orders
      pathPrefix: /api/orders
      methods: [GET, POST]
      groups: [shop-api-users, shop-admins]
      rateLimit: {average: 50, burst: 100}
      ipAllowList: [10.251.0.0/16]
    - name: health
      pathPrefix: /api/health
`

// TestRenderAPI: the IngressRoute and Middlewares promote applies for the
// api: section: rule, service port, middlewares in order, labels and owner.
func TestRenderAPI(t *testing.T) {
	spec, err := ParseSpec([]byte(apiSpec))
	if err != nil {
		t.Fatal(err)
	}
	owner := &metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: StateName("shop"), UID: "u-1"}
	gw := &GatewayConfig{AuthURL: "http://oauth2-proxy.kube-system.svc.cluster.local:4180/oauth2/auth"}
	objs, err := RenderAPI(spec, gw, owner)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		md := o["metadata"].(map[string]any)
		names = append(names, o["kind"].(string)+"/"+md["name"].(string))
		if md["namespace"] != "shop" || md["labels"].(map[string]any)["app.kubernetes.io/name"] != "shop" ||
			md["labels"].(map[string]any)["app.kubernetes.io/managed-by"] != "tsys-ci" ||
			md["ownerReferences"].([]any)[0].(map[string]any)["uid"] != "u-1" {
			t.Errorf("%s/%s metadata %v", o["kind"], md["name"], md)
		}
	}
	if got, want := strings.Join(names, " "), "Middleware/shop-orders-allow Middleware/shop-orders-ratelimit Middleware/shop-orders-auth IngressRoute/shop-api"; got != want {
		t.Fatalf("objects %s, want %s", got, want)
	}
	body, _ := json.Marshal(objs)
	for _, want := range []string{
		`"match":"(Host(` + "`api.shop.example`) || Host(`shop.example`)) \\u0026\\u0026 PathPrefix(`/api/orders`) \\u0026\\u0026 (Method(`GET`) || Method(`POST`))" + `"`,
		`"match":"(Host(` + "`api.shop.example`) || Host(`shop.example`)) \\u0026\\u0026 PathPrefix(`/api/health`)" + `"`,
		`"middlewares":[{"name":"shop-orders-allow"},{"name":"shop-orders-ratelimit"},{"name":"shop-orders-auth"}]`,
		`"services":[{"name":"shop","port":"http"}]`,
		`"ipAllowList":{"ipStrategy":{"depth":1},"sourceRange":["10.251.0.0/16"]}`,
		`"rateLimit":{"average":50,"burst":100,"period":"1s"`,
		`"address":"http://oauth2-proxy.kube-system.svc.cluster.local:4180/oauth2/auth?allowed_groups=shop-api-users%2Cshop-admins"`,
		`"authResponseHeaders":["X-Auth-Request-User"`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("rendered objects lack %s:\n%s", want, body)
		}
	}

	// Groups without an auth service: refused, saying what to set.
	_, err = RenderAPI(spec, nil, owner)
	if err == nil || !strings.Contains(err.Error(), "api.routes orders names groups (shop-api-users, shop-admins), but the gateway has no auth service to check them: set gateway.authURL in platform.yaml") {
		t.Fatalf("groups without an auth service: %v", err)
	}
	// No api section: nothing.
	spec.API = nil
	if objs, err := RenderAPI(spec, gw, owner); objs != nil || err != nil {
		t.Fatalf("without api: %v, %v", objs, err)
	}
}
