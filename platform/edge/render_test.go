package edge

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/platform/edge/edgetest"
	"github.com/tsys-group/tsys-ci/test/testenv"
	corev1 "k8s.io/api/core/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from the current output")

type renderCase struct {
	services []corev1.Service
	nodes    []corev1.Node
}

// renderCases are the cluster states whose rendering is pinned by golden files.
func renderCases() map[string]renderCase {
	return map[string]renderCase{
		"empty": {},
		"apps": {services: []corev1.Service{
			lbService("shop", "web", `[{"port":"http","hosts":["www.company.example","shop.company.example"]},{"port":"ssh","tcpFrontendPort":2222}]`,
				map[string]int32{"http": 8080, "ssh": 22, "metrics": 9090}, "10.0.0.21"),
			lbService("blog", "blog", `[{"port":"http","hosts":["blog.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.22", "10.0.0.20"),
			lbService("blog", "new", `[{"port":"http","hosts":["new.company.example"]}]`, map[string]int32{"http": 80}),
			lbService("git", "forge", `[{"port":"ssh","tcpFrontendPort":2022},{"port":"https","hosts":["git.company.example"]}]`,
				map[string]int32{"ssh": 22, "https": 443}, "fd00::10"),
		}},
		// Apps with color Services: the two-level shape (pools.go).
		"versions": {
			services: []corev1.Service{
				withVersions(lbService("shop", "web", `[{"port":"http","hosts":["shop.company.example"]},{"port":"ssh","tcpFrontendPort":2222}]`,
					map[string]int32{"http": 8080, "ssh": 22}, "10.0.0.21"), "", `{"blue":95,"green":5}`),
				colorService("shop", "web", "blue", map[string]int32{"http": 30080}),
				colorService("shop", "web", "green", map[string]int32{"http": 30081}),
				// One color so far, no weights yet: the selected color gets 100.
				withVersions(lbService("blog", "blog", `[{"port":"http","hosts":["blog.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.22"), "blue", ""),
				colorService("blog", "blog", "blue", map[string]int32{"http": 31000}),
			},
			nodes: []corev1.Node{
				node("www2", "10.1.0.12"),
				node("www1", "10.1.0.11"),
				node("cp1", "10.1.0.1", corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}),
				node("www3", "10.1.0.13", corev1.Taint{Key: "node.kubernetes.io/unreachable", Effect: corev1.TaintEffectNoExecute}),
				node("joining", ""),
			},
		},
	}
}

func TestRenderGolden(t *testing.T) {
	haproxy := testenv.LookPath(t, "haproxy")
	for name, rc := range renderCases() {
		t.Run(name, func(t *testing.T) {
			services := rc.services
			m, err := Build(services, rc.nodes, versionOptions())
			if err != nil {
				t.Fatal(err)
			}
			files := Render(m, versionOptions())
			for _, f := range files.byName() {
				golden := filepath.Join("testdata", name+"."+f.name+".golden")
				if *update {
					if err := os.WriteFile(golden, f.data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -run TestRenderGolden -update to create it)", err)
				}
				if !bytes.Equal(f.data, want) {
					t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", f.name, golden, f.data, want)
				}
			}
			// The same state in another order renders the same bytes.
			reversed := append([]corev1.Service(nil), services...)
			for i, j := 0, len(reversed)-1; i < j; i, j = i+1, j-1 {
				reversed[i], reversed[j] = reversed[j], reversed[i]
			}
			nodes := slices.Clone(rc.nodes)
			slices.Reverse(nodes)
			m2, err := Build(reversed, nodes, versionOptions())
			if err != nil {
				t.Fatal(err)
			}
			if again := Render(m2, versionOptions()); !bytes.Equal(again.Config, files.Config) || !bytes.Equal(again.HostMap, files.HostMap) {
				t.Errorf("rendering the same Services in another order gave different bytes")
			}
			checkWithHAProxy(t, haproxy, m)
		})
	}
}

// checkWithHAProxy renders m with certificates that exist (the golden
// files name the production certificate directory) and has the real
// HAProxy check the result together with the company's configuration.
func checkWithHAProxy(t *testing.T, haproxy string, m *Model) {
	dir := t.TempDir()
	opts := DefaultOptions()
	opts.CertDir = filepath.Join(dir, "certs")
	if err := os.Mkdir(opts.CertDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, r := range m.Routes {
		edgetest.WriteCert(t, CertPath(opts, r.Host), r.Host)
	}
	edgeDir := filepath.Join(dir, "edge")
	files := Render(m, opts)
	if err := files.Write(edgeDir); err != nil {
		t.Fatal(err)
	}
	golden := Render(m, DefaultOptions())
	if got := strings.ReplaceAll(string(files.CrtList), opts.CertDir, DefaultOptions().CertDir); got != string(golden.CrtList) {
		t.Fatalf("crt-list with another certificate directory differs beyond the directory:\n%s", got)
	}
	edgetest.Check(t, haproxy, edgetest.WriteCompany(t, edgetest.Company{Dir: dir, EdgeDir: edgeDir}), edgeDir)
}

func TestSkeletonBlanksOnlyAddresses(t *testing.T) {
	a := lbService("a", "one", `[{"port":"http","hosts":["one.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.1")
	b := lbService("a", "one", `[{"port":"http","hosts":["one.company.example"]}]`, map[string]int32{"http": 8080}, "10.0.0.2")
	c := lbService("a", "one", `[{"port":"http","hosts":["two.company.example"]}]`, map[string]int32{"http": 80}, "10.0.0.1")
	render := func(s corev1.Service) []byte {
		m, err := Build([]corev1.Service{s}, nil, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		return Render(m, DefaultOptions()).Config
	}
	if Skeleton(render(a)) != Skeleton(render(b)) {
		t.Errorf("a changed address and port changed the skeleton")
	}
	if Skeleton(render(a)) == Skeleton(render(c)) {
		t.Errorf("a changed host name left the skeleton alone")
	}
	if !strings.Contains(Skeleton(render(a)), "server lb0 ADDR check") {
		t.Errorf("skeleton does not blank the server address:\n%s", Skeleton(render(a)))
	}
}

// The harness spells the edge's file and variable names itself (it cannot
// import this package); they must agree.
func TestHarnessAgreesOnNames(t *testing.T) {
	if edgetest.Fragment != FileConfig || edgetest.EnvEdgeDir != EnvEdgeDir {
		t.Fatalf("edgetest uses %q and %q, the edge %q and %q", edgetest.Fragment, edgetest.EnvEdgeDir, FileConfig, EnvEdgeDir)
	}
}
