package edge

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// versionOptions are the default options of an edge serving by version
// (--by-version).
func versionOptions() Options {
	o := DefaultOptions()
	o.ByVersion = true
	return o
}

var twoNodes = []corev1.Node{node("www1", "10.1.0.11"), node("www2", "10.1.0.12")}

func shopWeb(color, weights string) corev1.Service {
	return withVersions(lbService("shop", "web", `[{"port":"http","hosts":["shop.company.example"]}]`, map[string]int32{"http": 8080}, "10.0.0.21"), color, weights)
}

// weightsOf is the pools' weights of the one backend ("blue 95%, green
// 5%"), "" when it keeps the one-level shape.
func weightsOf(t *testing.T, m *Model) string {
	t.Helper()
	if len(m.Backends) != 1 {
		t.Fatalf("%d backends, want 1", len(m.Backends))
	}
	var parts []string
	for _, p := range m.Backends[0].Pools {
		parts = append(parts, fmt.Sprintf("%s %d%%", p.Color, p.Weight))
	}
	return strings.Join(parts, ", ")
}

func TestPoolsWeights(t *testing.T) {
	blue := colorService("shop", "web", "blue", map[string]int32{"http": 30080})
	green := colorService("shop", "web", "green", map[string]int32{"http": 30081})
	tests := []struct {
		name     string
		services []corev1.Service
		want     string // pools' weights; "" is the one-level shape
		problem  string // "" for none
	}{
		{"no color Service: the load-balancer address", []corev1.Service{shopWeb("blue", "")}, "", ""},
		{"annotation", []corev1.Service{shopWeb("blue", `{"blue":95,"green":5}`), blue, green}, "blue 95%, green 5%", ""},
		{"no annotation: the selected color", []corev1.Service{shopWeb("green", ""), blue, green}, "blue 0%, green 100%", ""},
		{"no annotation, both selected: equal", []corev1.Service{shopWeb("", ""), blue, green}, "blue 50%, green 50%", ""},
		{"a color with 0 % needs no Service", []corev1.Service{shopWeb("blue", `{"blue":100,"green":0}`), blue}, "blue 100%", ""},
		{"bad annotation: the selected color, reported", []corev1.Service{shopWeb("blue", `{"blue":90}`), blue, green}, "blue 100%, green 0%", "sum to 90"},
		{"unknown color: reported", []corev1.Service{shopWeb("blue", `{"blue":90,"red":10}`), blue, green}, "blue 100%, green 0%", `color "red"`},
		{"weight for a color without Service: reported, the selected color", []corev1.Service{shopWeb("blue", `{"blue":90,"green":10}`), blue}, "blue 100%", "no Service shop/web-green"},
		{"selected color without Service yet: the load-balancer address", []corev1.Service{shopWeb("blue", ""), green}, "", ""},
		{"a color Service of another app does not count", []corev1.Service{shopWeb("blue", ""), colorService("shop", "other", "blue", map[string]int32{"http": 30080})}, "", ""},
		{"a color Service without the port does not count", []corev1.Service{shopWeb("blue", ""), colorService("shop", "web", "blue", map[string]int32{"metrics": 30080})}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Build(tt.services, twoNodes, versionOptions())
			var ie *InputError
			switch {
			case tt.problem == "" && err != nil:
				t.Fatalf("Build: %v", err)
			case tt.problem != "" && (!errors.As(err, &ie) || !strings.Contains(err.Error(), tt.problem) || !strings.Contains(err.Error(), "app shop/web") || !strings.Contains(err.Error(), "default weights")):
				t.Fatalf("Build error %v; want a problem of app shop/web mentioning %q and the default weights", err, tt.problem)
			}
			if got := weightsOf(t, m); got != tt.want {
				t.Fatalf("pools %q, want %q", got, tt.want)
			}
			b := m.Backends[0]
			if tt.want == "" && (len(b.Servers) != 1 || b.Servers[0].Name != "lb0") {
				t.Fatalf("one-level backend has servers %+v, want lb0 at the address", b.Servers)
			}
			for _, p := range b.Pools {
				if len(p.Servers) != 2 || p.Servers[0].Name != "www1" || p.Servers[1].Addr.String() != "10.1.0.12" || p.Name != b.Name+"."+p.Color {
					t.Fatalf("pool %+v, want one server per node", p)
				}
			}
		})
	}
}

func TestEdgeNodes(t *testing.T) {
	got := EdgeNodes([]corev1.Node{
		node("b", "10.1.0.2"),
		node("a", "10.1.0.1"),
		node("cp", "10.1.0.3", corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}),
		node("storage", "10.1.0.4", corev1.Taint{Key: "dedicated", Value: "storage", Effect: corev1.TaintEffectNoExecute}),
		node("prefer", "10.1.0.5", corev1.Taint{Key: "dedicated", Effect: corev1.TaintEffectPreferNoSchedule}),
		node("cordoned", "10.1.0.6", corev1.Taint{Key: "node.kubernetes.io/unschedulable", Effect: corev1.TaintEffectNoSchedule}),
		node("no-address", ""),
		func() corev1.Node {
			n := node("dual", "fd00::7")
			n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.1.0.7"})
			return n
		}(),
	})
	var s []string
	for _, n := range got {
		s = append(s, n.Name+"="+n.Addr.String())
	}
	if want := "a=10.1.0.1 b=10.1.0.2 cordoned=10.1.0.6 dual=10.1.0.7 prefer=10.1.0.5"; strings.Join(s, " ") != want {
		t.Fatalf("EdgeNodes = %s, want %s", strings.Join(s, " "), want)
	}
}

func TestPoolAddress(t *testing.T) {
	if got := PoolAddress("", "tsys-ci.shop.web.http.blue"); got != "abns@tsys-ci.shop.web.http.blue" {
		t.Errorf("PoolAddress = %s", got)
	}
	if got := PoolAddress("test1", "tsys-ci.shop.web.http.blue"); got != "abns@test1:tsys-ci.shop.web.http.blue" {
		t.Errorf("PoolAddress with a prefix = %s", got)
	}
	long := "tsys-ci." + strings.Repeat("n", 63) + "." + strings.Repeat("s", 63) + ".http.green"
	a, b := PoolAddress("", long), PoolAddress("", strings.Replace(long, "green", "blue", 1))
	if len(a)-len("abns@") > maxABNS || a == b || !strings.HasPrefix(a, "abns@tsys-ci.") {
		t.Errorf("long names give %s and %s; want distinct names of at most %d bytes", a, b, maxABNS)
	}
}

// TestPoolsOnlyByVersion: without --by-version an app with color Services
// keeps the one-level shape on its load-balancer address, so an edge that
// is synced now and then (not kept by --watch) never holds traffic on a
// version promote has already left.
func TestPoolsOnlyByVersion(t *testing.T) {
	services := []corev1.Service{shopWeb("blue", `{"blue":95,"green":5}`),
		colorService("shop", "web", "blue", map[string]int32{"http": 30080}), colorService("shop", "web", "green", map[string]int32{"http": 30081})}
	m, err := Build(services, twoNodes, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if got := weightsOf(t, m); got != "" {
		t.Errorf("without ByVersion: pools %q, want none", got)
	}
	if s := m.Backends[0].Servers; len(s) != 1 || s[0].Addr.String() != "10.0.0.21" {
		t.Errorf("without ByVersion: servers %+v, want lb0 on 10.0.0.21", s)
	}
	m, err = Build(services, twoNodes, versionOptions())
	if err != nil {
		t.Fatal(err)
	}
	if got := weightsOf(t, m); got != "blue 95%, green 5%" {
		t.Errorf("with ByVersion: pools %q, want blue 95%%, green 5%%", got)
	}
}

// TestDescribeOneLevel: an edge not serving by version logs (and syncs
// for) no change of a color Service, a weight or the selected color; one
// serving by version does.
func TestDescribeOneLevel(t *testing.T) {
	blue := colorService("shop", "web", "blue", map[string]int32{"http": 30080})
	before, after := shopWeb("blue", `{"blue":100,"green":0}`), shopWeb("green", `{"blue":0,"green":100}`)
	for _, c := range []struct {
		what       string
		old, new   *corev1.Service
		byVersion  bool
		wantChange bool
	}{
		{"color Service added", nil, &blue, false, false},
		{"color Service added, by version", nil, &blue, true, true},
		{"switch: selector and weights", &before, &after, false, false},
		{"switch: selector and weights, by version", &before, &after, true, true},
	} {
		if _, got := describe(c.old, c.new, c.byVersion); got != c.wantChange {
			t.Errorf("%s: change %v, want %v", c.what, got, c.wantChange)
		}
	}
}
