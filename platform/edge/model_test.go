package edge

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/internal/contract"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestBuildModel(t *testing.T) {
	shop := lbService("shop", "web", `[{"port":"http","hosts":["shop.company.example","www.company.example"]},{"port":"ssh","tcpFrontendPort":2222}]`,
		map[string]int32{"http": 8080, "ssh": 22, "metrics": 9090}, "10.0.0.21")
	blog := lbService("blog", "blog", `[{"port":"http","hosts":["blog.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.22", "10.0.0.20")
	pending := lbService("blog", "new", `[{"port":"http","hosts":["new.company.example"]}]`, map[string]int32{"http": 80})
	unmanaged := lbService("x", "other", `[{"port":"http","hosts":["blog.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.9")
	unmanaged.Labels[contract.LabelManagedBy] = "helm"
	noEdge := lbService("x", "internal", `[]`, map[string]int32{"http": 80}, "10.0.0.8")
	delete(noEdge.Annotations, contract.AnnotationEdge)

	m, err := Build([]corev1.Service{shop, unmanaged, blog, noEdge, pending}, nil, DefaultOptions())
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	want := &Model{
		Backends: []Backend{
			{Name: "tsys-ci.blog.blog.http", App: "blog/blog", PortName: "http", Mode: "http", Hosts: []string{"blog.company.example"},
				Servers: []Server{{"lb0", netip.MustParseAddr("10.0.0.20"), 80}, {"lb1", netip.MustParseAddr("10.0.0.22"), 80}}},
			{Name: "tsys-ci.blog.new.http", App: "blog/new", PortName: "http", Mode: "http", Hosts: []string{"new.company.example"}},
			{Name: "tsys-ci.shop.web.http", App: "shop/web", PortName: "http", Mode: "http", Hosts: []string{"shop.company.example", "www.company.example"},
				Servers: []Server{{"lb0", netip.MustParseAddr("10.0.0.21"), 8080}}},
			{Name: "tsys-ci.shop.web.ssh", App: "shop/web", PortName: "ssh", Mode: "tcp",
				Servers: []Server{{"lb0", netip.MustParseAddr("10.0.0.21"), 22}}},
		},
		Routes: []Route{
			{"blog.company.example", "tsys-ci.blog.blog.http"},
			{"new.company.example", "tsys-ci.blog.new.http"},
			{"shop.company.example", "tsys-ci.shop.web.http"},
			{"www.company.example", "tsys-ci.shop.web.http"},
		},
		TCPFrontends: []TCPFrontend{{Port: 2222, Backend: "tsys-ci.shop.web.ssh", App: "shop/web"}},
		Pending:      []string{"blog/new (port http)"},
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("Build model:\n got %+v\nwant %+v", m, want)
	}
}

func TestBuildRejectsBadWiring(t *testing.T) {
	opts := DefaultOptions()
	opts.ReservedPorts = []int{80, 443, 8404}
	tests := []struct {
		name     string
		services []corev1.Service
		want     []string // substrings of one problem each
	}{
		{"invalid host", []corev1.Service{
			lbService("a", "one", `[{"port":"http","hosts":["Bad_Host.example"]}]`, map[string]int32{"http": 80}, "10.0.0.1"),
		}, []string{"app a/one", "Bad_Host.example"}},
		{"two apps claim one host", []corev1.Service{
			lbService("a", "one", `[{"port":"http","hosts":["x.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.1"),
			lbService("b", "two", `[{"port":"web","hosts":["x.company.example"]}]`, map[string]int32{"web": 80}, "10.0.0.2"),
		}, []string{`host "x.company.example" is claimed by a/one (port http) and b/two (port web)`}},
		{"tcp port twice", []corev1.Service{
			lbService("a", "one", `[{"port":"ssh","tcpFrontendPort":2222}]`, map[string]int32{"ssh": 22}, "10.0.0.1"),
			lbService("b", "two", `[{"port":"git","tcpFrontendPort":2222}]`, map[string]int32{"git": 22}, "10.0.0.2"),
		}, []string{"TCP frontend port 2222 is claimed by a/one (port ssh) and b/two (port git)"}},
		{"tcp port is the edge's own", []corev1.Service{
			lbService("a", "one", `[{"port":"stats","tcpFrontendPort":8404}]`, map[string]int32{"stats": 8404}, "10.0.0.1"),
		}, []string{"a/one (port stats) asks for TCP frontend port 8404, which the edge itself uses"}},
		{"unknown port name", []corev1.Service{
			lbService("a", "one", `[{"port":"htp","hosts":["one.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.1"),
		}, []string{`app a/one: annotation tsys-ci.io/edge names port "htp", but Service a/one has ports "http"`}},
		{"not a load balancer", []corev1.Service{
			func() corev1.Service {
				s := lbService("a", "one", `[{"port":"http","hosts":["one.company.example"]}]`, map[string]int32{"http": 80})
				s.Spec.Type = corev1.ServiceTypeClusterIP
				return s
			}(),
		}, []string{`app a/one: Service a/one is of type "ClusterIP"`}},
		{"broken json", []corev1.Service{
			lbService("a", "one", `[{"port":"http","hosts":"one.company.example"}]`, map[string]int32{"http": 80}, "10.0.0.1"),
		}, []string{"app a/one (Service a/one): annotation tsys-ci.io/edge is not a JSON list"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Build(tt.services, nil, opts)
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("Build = %+v, %v; want an *InputError", m, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "left out, everything else is applied") {
				t.Errorf("error %q does not say what was left out", err)
			}
		})
	}
}

func TestBuildCollectsEveryProblem(t *testing.T) {
	_, err := Build([]corev1.Service{
		lbService("a", "one", `[{"port":"http","hosts":["x.company.example"]},{"port":"ssh","tcpFrontendPort":443}]`, map[string]int32{"http": 80, "ssh": 22}, "10.0.0.1"),
		lbService("b", "two", `[{"port":"http","hosts":["x.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.2"),
	}, nil, DefaultOptions())
	var ie *InputError
	if !errors.As(err, &ie) || len(ie.Problems) != 2 {
		t.Fatalf("Build error = %v; want two problems (host claimed twice, reserved port)", err)
	}
}

func TestValidateHost(t *testing.T) {
	good := []string{"app.company.example", "a.b", "x-1.company.example", strings.Repeat("a", 63) + ".example"}
	for _, h := range good {
		if err := ValidateHost(h); err != nil {
			t.Errorf("ValidateHost(%q) = %v, want nil", h, err)
		}
	}
	bad := map[string]string{
		"":                                "empty",
		"app":                             "not fully qualified",
		"App.company.example":             "capital letters",
		"*.company.example":               "only a-z",
		"a..example":                      "empty label",
		"-a.example":                      "hyphen",
		"a_b.example":                     "only a-z",
		"10.0.0.1":                        "IP address",
		"app.company.example.":            "empty label",
		strings.Repeat("a", 64) + ".ex":   "longer than 63",
		strings.Repeat("a.", 127) + "abc": "253",
	}
	for h, want := range bad {
		err := ValidateHost(h)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateHost(%q) = %v, want an error mentioning %q", h, err, want)
		}
	}
}

// TestOneBadClaimDoesNotStopTheOthers (issue 17, finding 6): a duplicate
// host, a duplicate TCP port and a broken annotation each leave out only
// that claim; every other app is in the Model, and the older Service keeps
// a host or port two apps claim.
func TestOneBadClaimDoesNotStopTheOthers(t *testing.T) {
	shop := lbService("shop", "web", `[{"port":"http","hosts":["shop.company.example"]},{"port":"ssh","tcpFrontendPort":2222}]`,
		map[string]int32{"http": 80, "ssh": 22}, "10.0.0.1")
	shop.CreationTimestamp = metav1.NewTime(time.Unix(1000, 0))
	blog := lbService("blog", "blog", `[{"port":"http","hosts":["blog.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.2")
	// Newer, in a namespace sorting first: claims shop's host and port.
	thief := lbService("aaa", "thief", `[{"port":"http","hosts":["shop.company.example","thief.company.example"]},{"port":"ssh","tcpFrontendPort":2222}]`,
		map[string]int32{"http": 80, "ssh": 22}, "10.0.0.3")
	thief.CreationTimestamp = metav1.NewTime(time.Unix(2000, 0))
	broken := lbService("zzz", "broken", `[{"port":"http","hosts":"x"}]`, map[string]int32{"http": 80}, "10.0.0.4")

	m, err := Build([]corev1.Service{thief, shop, blog, broken}, nil, DefaultOptions())
	var ie *InputError
	if !errors.As(err, &ie) || len(ie.Problems) != 3 {
		t.Fatalf("Build error = %v; want three problems (host, port, annotation)", err)
	}
	if m == nil {
		t.Fatal("Build returned no Model: one app's bad claim stopped every other app")
	}
	routes := map[string]string{}
	for _, r := range m.Routes {
		routes[r.Host] = r.Backend
	}
	want := map[string]string{
		"shop.company.example":  "tsys-ci.shop.web.http",  // the older claim keeps it
		"blog.company.example":  "tsys-ci.blog.blog.http", // untouched by the others' problems
		"thief.company.example": "tsys-ci.aaa.thief.http", // the thief's own good claim stays
	}
	if !reflect.DeepEqual(routes, want) {
		t.Errorf("routes %v, want %v", routes, want)
	}
	if len(m.TCPFrontends) != 1 || m.TCPFrontends[0].Backend != "tsys-ci.shop.web.ssh" {
		t.Errorf("TCP frontends %+v, want 2222 for shop/web only", m.TCPFrontends)
	}
	for _, b := range m.Backends {
		if b.Name == "tsys-ci.aaa.thief.ssh" || strings.HasPrefix(b.Name, "tsys-ci.zzz.") {
			t.Errorf("backend %s of a left-out claim is rendered", b.Name)
		}
	}
	for _, w := range []string{
		`host "shop.company.example" is claimed by shop/web (port http) and aaa/thief (port http); shop/web (port http), the older claim, keeps it`,
		"TCP frontend port 2222 is claimed by shop/web (port ssh) and aaa/thief (port ssh)",
		"app zzz/broken",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error\n%v\ndoes not contain %q", err, w)
		}
	}
}

// TestOwnersRefuseClaimsOutsideTheirRule (issue 17, finding 6): with an
// owners file, a namespace claims only the hosts and ports it lists; a
// claim outside it is left out with a message naming the claim and the rule.
func TestOwnersRefuseClaimsOutsideTheirRule(t *testing.T) {
	owners, err := ParseOwners([]byte(`
namespaces:
  shop:
    hosts: [shop.company.example, "*.shop.company.example"]
    tcpPorts: [2222]
  web: {hosts: ["*.web.company.example"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	owners.Source = "/etc/haproxy/tsys-ci-owners.yaml"
	opts := DefaultOptions()
	opts.Owners = owners
	m, err := Build([]corev1.Service{
		lbService("shop", "web", `[{"port":"http","hosts":["shop.company.example","api.shop.company.example","sso.company.example"]},{"port":"ssh","tcpFrontendPort":2222},{"port":"db","tcpFrontendPort":5432}]`,
			map[string]int32{"http": 80, "ssh": 22, "db": 5432}, "10.0.0.1"),
		lbService("evil", "x", `[{"port":"http","hosts":["sso.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.2"),
		lbService("web", "blog", `[{"port":"http","hosts":["blog.web.company.example","web.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.3"),
	}, nil, opts)
	var ie *InputError
	if !errors.As(err, &ie) || m == nil {
		t.Fatalf("Build = %v, %v; want the Model and an *InputError", m, err)
	}
	var hosts []string
	for _, r := range m.Routes {
		hosts = append(hosts, r.Host)
	}
	if want := []string{"api.shop.company.example", "blog.web.company.example", "shop.company.example"}; !reflect.DeepEqual(hosts, want) {
		t.Errorf("routed hosts %v, want %v", hosts, want)
	}
	if len(m.TCPFrontends) != 1 || m.TCPFrontends[0].Port != 2222 {
		t.Errorf("TCP frontends %+v, want 2222 only", m.TCPFrontends)
	}
	for _, w := range []string{
		`host "sso.company.example" claimed by evil/x (port http) is refused: namespace evil is not listed in the edge owners file /etc/haproxy/tsys-ci-owners.yaml`,
		`host "sso.company.example" claimed by shop/web (port http) is refused: the edge owners file /etc/haproxy/tsys-ci-owners.yaml gives namespace shop only the hosts shop.company.example, *.shop.company.example`,
		`host "web.company.example" claimed by web/blog (port http) is refused: the edge owners file /etc/haproxy/tsys-ci-owners.yaml gives namespace web only the hosts *.web.company.example`,
		`TCP frontend port 5432 claimed by shop/web (port db) is refused: the edge owners file /etc/haproxy/tsys-ci-owners.yaml gives namespace shop only the TCP ports 2222`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error\n%v\ndoes not contain %q", err, w)
		}
	}
	if len(ie.Problems) != 4 {
		t.Errorf("%d problems, want 4:\n%v", len(ie.Problems), err)
	}
}

func TestParseOwnersRefusesBadFiles(t *testing.T) {
	for in, want := range map[string]string{
		``: "lists no namespaces",
		`namespaces: {shop: {host: [a.example]}}`:      "unknown field",
		`namespaces: {shop: {hosts: ["*"]}}`:           `host "*"`,
		`namespaces: {shop: {hosts: [Shop.example]}}`:  "capital letters",
		`namespaces: {shop: {tcpPorts: [70000]}}`:      "not in 1-65535",
		`namespaces: {shop: {hosts: ["a.*.example"]}}`: `host "a.*.example"`,
	} {
		if _, err := ParseOwners([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseOwners(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

func FuzzParseOwners(f *testing.F) {
	f.Add([]byte("namespaces: {shop: {hosts: [shop.company.example, \"*.shop.company.example\"], tcpPorts: [2222]}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseOwners(data)
		if err != nil {
			return
		}
		for ns := range o.Namespaces {
			o.hostRule(ns, "x.company.example")
			o.portRule(ns, 2222)
		}
	})
}
