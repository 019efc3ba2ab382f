package edge

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/internal/contract"
	corev1 "k8s.io/api/core/v1"
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

	m, err := Build([]corev1.Service{shop, unmanaged, blog, noEdge, pending}, DefaultOptions())
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
			m, err := Build(tt.services, opts)
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("Build = %+v, %v; want an *InputError", m, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "nothing was applied") {
				t.Errorf("error %q does not say nothing was applied", err)
			}
		})
	}
}

func TestBuildCollectsEveryProblem(t *testing.T) {
	_, err := Build([]corev1.Service{
		lbService("a", "one", `[{"port":"http","hosts":["x.company.example"]},{"port":"ssh","tcpFrontendPort":443}]`, map[string]int32{"http": 80, "ssh": 22}, "10.0.0.1"),
		lbService("b", "two", `[{"port":"http","hosts":["x.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.2"),
	}, DefaultOptions())
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
