// Package apitest runs the add-ons' manifests and their real binaries against
// a real kube-apiserver (test/apiserver), without nodes: the API server must
// accept every object (CRD schemas included), and each controller must do its
// job with the RBAC the manifests give its ServiceAccount. What needs nodes
// (pods running, ARP, GlusterFS) is the lab's e2e tests' (test/e2e).
package apitest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/addons"
	"github.com/tsys-group/tsys-ci/test/addons/manifests"
	"github.com/tsys-group/tsys-ci/test/apiserver"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

var srv *apiserver.Server

func TestMain(m *testing.M) {
	os.Exit(apiserver.RunTests(m, func(s *apiserver.Server) { srv = s }))
}

// The test API server's service range is 10.0.0.0/24.
var params = manifests.Params{
	Subnet:     netip.MustParsePrefix("10.213.0.0/24"),
	PoolFirst:  netip.MustParseAddr("10.213.0.200"),
	PoolLast:   netip.MustParseAddr("10.213.0.250"),
	ClusterDNS: netip.MustParseAddr("10.0.0.10"),
	Hosts:      []manifests.Host{{Name: "db1", IP: netip.MustParseAddr("10.213.0.11")}},
}

type env struct {
	t       *testing.T
	kubectl string
	k8sBins string
	images  map[string]addons.ImageTarball
	files   map[string]string
}

func setup(t *testing.T) *env {
	t.Helper()
	testenv.LookPath(t, "docker")
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), filepath.Join(root, "scripts", "k8s-bins.sh")).Output()
	if err != nil {
		t.Fatalf("scripts/k8s-bins.sh: %v", err)
	}
	e := &env{t: t, k8sBins: strings.TrimSpace(string(out)), images: map[string]addons.ImageTarball{}, files: map[string]string{}}
	e.kubectl = filepath.Join(e.k8sBins, "kubectl")
	var progress bytes.Buffer
	built, err := addons.BuildImages(t.Context(), root, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	for _, img := range built {
		e.images[img.Image] = img
	}
	files, err := manifests.Render(params)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range files {
		e.files[f.Name] = filepath.Join(dir, f.Name)
		if err := os.WriteFile(e.files[f.Name], f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *env) k(args ...string) string {
	e.t.Helper()
	out, err := exec.CommandContext(e.t.Context(), e.kubectl, append([]string{"--kubeconfig", srv.Kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// saKubeconfig is a kubeconfig acting as a ServiceAccount, as its pod would.
func (e *env) saKubeconfig(namespace, sa string) string {
	e.t.Helper()
	token := strings.TrimSpace(e.k("create", "token", sa, "-n", namespace, "--duration=1h"))
	path := filepath.Join(e.t.TempDir(), sa+".kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: t, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: sa, user: {token: %q}}]
contexts: [{name: t, context: {cluster: t, user: sa, namespace: %s}}]
current-context: t
`, srv.Config.Host, token, namespace)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// run starts a binary until the test ends; its log is shown if the test fails.
func (e *env) run(name string, env []string, bin string, args ...string) {
	e.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("starting %s: %v", name, err)
	}
	e.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if e.t.Failed() {
			e.t.Logf("%s log:\n%s", name, log.String())
		}
	})
}

func (e *env) waitFor(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("waiting for %s: gave up after %s", what, timeout)
		}
		<-tick.C
	}
}

func (e *env) bin(image, name string) string {
	e.t.Helper()
	img, ok := e.images[image]
	if !ok {
		e.t.Fatalf("image %s was not built", image)
	}
	return filepath.Join(img.Dir(), "bin", name)
}

// TestAddonsOnARealAPIServer applies MetalLB's CRDs and every manifest in
// Install's order, then runs the MetalLB controller, CoreDNS and
// local-path-provisioner as their ServiceAccounts.
func TestAddonsOnARealAPIServer(t *testing.T) {
	e := setup(t)
	images := manifests.DefaultImages()
	crds, _ := filepath.Glob(filepath.Join(e.images[images.MetalLBController].Dir(), "crds", "*.yaml"))
	for _, crd := range crds {
		e.k("apply", "--server-side", "-f", crd)
	}
	e.k(addons.CRDsEstablishedArgs(crds, time.Minute)...)
	for _, name := range []string{"coredns.yaml", "metallb.yaml", "metallb-pool.yaml", "local-path.yaml", "registry.yaml"} {
		e.k("apply", "--server-side", "-f", e.files[name])
	}

	t.Run("metallb controller assigns the registry its address", func(t *testing.T) {
		kc := e.saKubeconfig("metallb-system", "controller")
		e.run("metallb controller", []string{"KUBECONFIG=" + kc, "METALLB_ML_SECRET_NAME=memberlist", "METALLB_DEPLOYMENT=controller"},
			e.bin(images.MetalLBController, "controller"), "--namespace=metallb-system", "--port="+strconv.Itoa(testenv.FreePort(t)), "--webhook-mode=disabled")
		e.waitFor("the registry Service to get 10.213.0.200", time.Minute, func() bool {
			out, err := exec.Command(e.kubectl, "--kubeconfig", srv.Kubeconfig, "-n", "lab-registry", "get", "svc", "registry",
				"-o", "jsonpath={.status.loadBalancer.ingress[0].ip}").Output()
			return err == nil && string(out) == "10.213.0.200"
		})
		e.waitFor("the memberlist secret the speakers mount", 30*time.Second, func() bool {
			return exec.Command(e.kubectl, "--kubeconfig", srv.Kubeconfig, "-n", "metallb-system", "get", "secret", "memberlist").Run() == nil
		})
	})

	t.Run("coredns answers for services and nodes", func(t *testing.T) {
		kc := e.saKubeconfig("kube-system", "coredns")
		corefile := corefileFor(t, e.files["coredns.yaml"], kc)
		dnsPort := strconv.Itoa(testenv.FreePort(t))
		corefile = strings.Replace(corefile, ".:53 {", ".:"+dnsPort+" {\n    bind 127.0.0.1", 1)
		path := filepath.Join(t.TempDir(), "Corefile")
		if err := os.WriteFile(path, []byte(corefile), 0o644); err != nil {
			t.Fatal(err)
		}
		e.run("coredns", nil, e.bin(images.CoreDNS, "coredns"), "-conf", path)
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "udp", "127.0.0.1:"+dnsPort)
		}}
		for name, want := range map[string]string{"kube-dns.kube-system.svc.cluster.local.": "10.0.0.10", "db1.": "10.213.0.11"} {
			var got []string
			e.waitFor(name+" to resolve to "+want, 30*time.Second, func() bool {
				ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
				defer cancel()
				got, _ = r.LookupHost(ctx, name)
				return len(got) == 1 && got[0] == want
			})
		}
	})

	t.Run("local-path-provisioner starts a helper for the registry's replicated volume", func(t *testing.T) {
		// The PV controller marks claims for their provisioner.
		e.run("kube-controller-manager", nil, filepath.Join(e.k8sBins, "kube-controller-manager"),
			"--kubeconfig="+srv.Kubeconfig, "--controllers=persistentvolume-binder", "--leader-elect=false", "--secure-port=0")
		kc := e.saKubeconfig("local-path-storage", "local-path-provisioner-service-account")
		cfg := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(cfg, []byte(e.k("-n", "local-path-storage", "get", "cm", "local-path-config", "-o", `jsonpath={.data.config\.json}`)), 0o644); err != nil {
			t.Fatal(err)
		}
		e.run("local-path-provisioner", []string{"POD_NAMESPACE=local-path-storage"}, e.bin(images.LocalPath, "local-path-provisioner"),
			"start", "--config", cfg, "--kubeconfig", kc, "--helper-image", images.LocalPath)
		var spec string
		e.waitFor("a helper pod for lab-registry/registry-data", time.Minute, func() bool {
			out, err := exec.Command(e.kubectl, "--kubeconfig", srv.Kubeconfig, "-n", "local-path-storage", "get", "pods", "-o",
				`jsonpath={range .items[*]}{.spec.containers[0].image} {.spec.containers[0].command} {.spec.containers[0].args} {.spec.containers[0].env} {.spec.volumes[0].hostPath.path}{"\n"}{end}`).Output()
			spec = string(out)
			return err == nil && strings.Contains(spec, "registry-data")
		})
		for _, want := range []string{images.LocalPath, `["/local-path-helper"]`, `"-a","create"`, `"-m","Filesystem"`,
			manifests.DefaultSharedPath + "/pvc-", `"name":"LOCAL_PATH_HELPER_REQUIRE_FUSE_UNDER","value":"` + manifests.DefaultSharedPath + `"`} {
			if !strings.Contains(spec, want) {
				t.Errorf("helper pod lacks %s:\n%s", want, spec)
			}
		}
	})
}

// corefileFor takes the Corefile out of the rendered ConfigMap and points it
// at the test API server with free loopback ports for its side listeners.
func corefileFor(t *testing.T, manifest, kubeconfig string) string {
	t.Helper()
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "  Corefile: |\n")
	j := strings.Index(s[i:], "\n---")
	if i < 0 || j < 0 {
		t.Fatal("no Corefile in coredns.yaml")
	}
	var lines []string
	for _, l := range strings.Split(s[i+len("  Corefile: |\n"):i+j], "\n") {
		lines = append(lines, strings.TrimPrefix(l, "    "))
	}
	c := strings.Join(lines, "\n")
	c = strings.Replace(c, "health {", "health 127.0.0.1:"+strconv.Itoa(testenv.FreePort(t))+" {", 1)
	c = strings.Replace(c, "ready\n", "ready 127.0.0.1:"+strconv.Itoa(testenv.FreePort(t))+"\n", 1)
	c = strings.Replace(c, "prometheus :9153", "prometheus 127.0.0.1:"+strconv.Itoa(testenv.FreePort(t)), 1)
	c = strings.Replace(c, "pods insecure", "pods insecure\n        kubeconfig "+kubeconfig+" t", 1)
	return c
}
