package addons

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tsys-group/tsys-ci/test/addons/manifests"
)

// Options tune Install. Images is required: BuildImages' result.
type Options struct {
	// Images are the add-on tarballs (BuildImages).
	Images []ImageTarball
	// ManifestDir keeps the rendered manifests (e.g. .lab/addons); empty
	// means a temporary directory removed afterwards.
	ManifestDir string
	// SharedPath and LocalPath default to manifests.DefaultSharedPath and
	// manifests.DefaultLocalPath.
	SharedPath, LocalPath string
	// Kubectl is the kubectl program (default "kubectl" on PATH).
	Kubectl string
	// Timeout bounds each wait for a component to be ready (default 3 min).
	Timeout time.Duration
	// Upstreams are where CoreDNS forwards names outside the cluster, e.g.
	// []string{"/etc/resolv.conf"} where the lab gives pods with dnsPolicy
	// Default a resolv.conf naming reachable servers; none means such names
	// fail (SERVFAIL) fast.
	Upstreams []string
	// Progress receives one line per step (default io.Discard).
	Progress io.Writer
}

// RegistryPort is the lab registry's port on its MetalLB address.
const RegistryPort = 5000

// Result says where the installed services are.
type Result struct {
	// Registry is HOST:PORT of the lab registry, reachable from the host and
	// from every node's containerd (plain HTTP).
	Registry string
	// PoolFirst and PoolLast bound the MetalLB pool.
	PoolFirst, PoolLast netip.Addr
	// Gluster is the replicated volume, for Heal after a node drill.
	Gluster Gluster
}

// Params derives the manifests' parameters from the cluster.
func Params(c Cluster, o Options) manifests.Params {
	p := manifests.Params{
		Subnet:     c.Subnet(),
		ClusterDNS: c.ClusterDNS(),
		SharedPath: o.SharedPath,
		LocalPath:  o.LocalPath,
		Upstreams:  o.Upstreams,
	}
	p.PoolFirst, p.PoolLast = c.LoadBalancerPool()
	for _, n := range c.Nodes() {
		p.Hosts = append(p.Hosts, manifests.Host{Name: n.Name, IP: n.Address})
	}
	return p
}

// Install puts the add-ons on a running lab: images into every node, the
// GlusterFS volume on db1-3 mounted on every node, then CoreDNS, MetalLB and
// its pool, local-path-provisioner and the registry, waiting until each runs.
// It is idempotent: on a lab where it ran before it changes nothing.
func Install(ctx context.Context, c Cluster, o Options) (Result, error) {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Kubectl == "" {
		o.Kubectl = "kubectl"
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
	if o.SharedPath == "" {
		o.SharedPath = manifests.DefaultSharedPath
	}
	images := manifests.DefaultImages()
	for _, img := range images.All() {
		if _, err := find(o.Images, img); err != nil {
			return Result{}, err
		}
	}
	controller, _ := find(o.Images, images.MetalLBController)
	crds, err := filepath.Glob(filepath.Join(controller.Dir(), "crds", "*.yaml"))
	if err != nil || len(crds) == 0 {
		return Result{}, fmt.Errorf("no MetalLB CRDs in %s/crds; rebuild with scripts/addon-images.sh", controller.Dir())
	}
	sort.Strings(crds)

	params := Params(c, o)
	files, err := manifests.Render(params)
	if err != nil {
		return Result{}, err
	}
	dir := o.ManifestDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "tsys-lab-addons-"); err != nil {
			return Result{}, fmt.Errorf("making a directory for the add-on manifests: %w", err)
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, fmt.Errorf("making %s: %w", dir, err)
	}
	paths := map[string]string{}
	for _, f := range files {
		paths[f.Name] = filepath.Join(dir, f.Name)
		if err := os.WriteFile(paths[f.Name], f.Data, 0o644); err != nil {
			return Result{}, fmt.Errorf("writing %s: %w", paths[f.Name], err)
		}
	}
	first, last := params.PoolFirst, params.PoolLast
	if !first.IsValid() {
		if first, last, err = manifests.UpperRange(params.Subnet); err != nil {
			return Result{}, err
		}
	}
	res := Result{Registry: fmt.Sprintf("%s:%d", first, RegistryPort), PoolFirst: first, PoolLast: last}

	step := func(what string, f func() error) error {
		start := time.Now()
		fmt.Fprintf(o.Progress, "add-ons: %s\n", what)
		if err := f(); err != nil {
			return fmt.Errorf("lab add-ons, %s: %w", what, err)
		}
		fmt.Fprintf(o.Progress, "add-ons: %s done in %s\n", what, time.Since(start).Round(100*time.Millisecond))
		return nil
	}
	k := kubectl{path: o.Kubectl, kubeconfig: c.Kubeconfig()}

	if err := step("importing images into every node", func() error {
		for _, img := range o.Images {
			if err := c.ImportImage(ctx, img.Path); err != nil {
				return fmt.Errorf("importing %s (%s): %w", img.Image, img.Path, err)
			}
		}
		return nil
	}); err != nil {
		return res, err
	}
	g, err := NewGluster(c.Nodes(), o.SharedPath)
	if err != nil {
		return res, err
	}
	res.Gluster = g
	if err := step("GlusterFS volume "+g.Volume+" on "+serverNames(g.Servers), func() error { return SetupGluster(ctx, c, g, o.Progress) }); err != nil {
		return res, err
	}
	if err := step("registry access for containerd on every node", func() error { return configureRegistryAccess(ctx, c, res.Registry) }); err != nil {
		return res, err
	}
	applyFile := func(path string) error {
		if out, err := c.Apply(ctx, path); err != nil {
			return fmt.Errorf("applying %s: %w (%s)", path, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	apply := func(name string) error { return applyFile(paths[name]) }
	if err := step("CoreDNS", func() error {
		if err := apply("coredns.yaml"); err != nil {
			return err
		}
		return k.run(ctx, RolloutStatusArgs("kube-system", "deployment/coredns", o.Timeout)...)
	}); err != nil {
		return res, err
	}
	if err := step("MetalLB", func() error {
		for _, crd := range crds {
			if err := applyFile(crd); err != nil {
				return err
			}
		}
		if err := k.run(ctx, CRDsEstablishedArgs(crds, o.Timeout)...); err != nil {
			return err
		}
		if err := apply("metallb.yaml"); err != nil {
			return err
		}
		if err := apply("metallb-pool.yaml"); err != nil {
			return err
		}
		if err := k.run(ctx, RolloutStatusArgs("metallb-system", "deployment/controller", o.Timeout)...); err != nil {
			return err
		}
		return k.run(ctx, RolloutStatusArgs("metallb-system", "daemonset/speaker", o.Timeout)...)
	}); err != nil {
		return res, err
	}
	if err := step("local-path-provisioner", func() error {
		if err := apply("local-path.yaml"); err != nil {
			return err
		}
		return k.run(ctx, RolloutStatusArgs("local-path-storage", "deployment/local-path-provisioner", o.Timeout)...)
	}); err != nil {
		return res, err
	}
	if err := step("registry at "+res.Registry, func() error {
		if err := apply("registry.yaml"); err != nil {
			return err
		}
		if err := k.run(ctx, RolloutStatusArgs("lab-registry", "deployment/registry", o.Timeout)...); err != nil {
			return err
		}
		// From the host, as the tests push: MetalLB announces the address,
		// the Service reaches the pod, the pod serves from its replicated volume.
		return WaitRegistry(ctx, res.Registry, o.Timeout)
	}); err != nil {
		return res, err
	}
	return res, nil
}

// WaitRegistry waits until http://registry/v2/ answers 200 from here.
func WaitRegistry(ctx context.Context, registry string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	err := waitFor(ctx, timeout, "the registry at "+registry+" to answer GET /v2/", func() (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+registry+"/v2/", nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("%w (last: %s); check the MetalLB speakers and `kubectl -n lab-registry get svc,pods`", err, last)
	}
	return nil
}

// RegistryHostsToml is containerd's registry host config for the lab
// registry: plain HTTP, so containerd neither tries TLS nor wants a CA.
// containerd reads it when its CRI registry config_path is
// /etc/containerd/certs.d (the node image's containerd config must say so).
func RegistryHostsToml(registry string) string {
	return fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n  skip_verify = true\n",
		"http://"+registry, "http://"+registry)
}

// RegistryHostsCmd writes RegistryHostsToml into a node.
func RegistryHostsCmd(registry string) []string {
	dir := "/etc/containerd/certs.d/" + registry
	return []string{"sh", "-c", `mkdir -p "$1" && printf '%s' "$2" > "$1/hosts.toml"`, "sh", dir, RegistryHostsToml(registry)}
}

func configureRegistryAccess(ctx context.Context, c Cluster, registry string) error {
	if dir := c.ContainerdCertsDir(); dir != "" {
		path := filepath.Join(dir, registry, "hosts.toml")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("making %s: %w", filepath.Dir(path), err)
		}
		if err := os.WriteFile(path, []byte(RegistryHostsToml(registry)), 0o644); err != nil {
			return fmt.Errorf("writing containerd's hosts.toml for %s: %w", registry, err)
		}
		return nil
	}
	for _, n := range c.Nodes() {
		if out, err := c.Exec(ctx, n.Name, RegistryHostsCmd(registry)...); err != nil {
			return fmt.Errorf("writing containerd's hosts.toml for %s on %s: %w (%s)", registry, n.Name, err, firstLine(string(out)))
		}
	}
	return nil
}

// RolloutStatusArgs waits for a Deployment or DaemonSet to be fully rolled out.
func RolloutStatusArgs(namespace, object string, timeout time.Duration) []string {
	return []string{"-n", namespace, "rollout", "status", object, "--timeout=" + timeout.String()}
}

// CRDsEstablishedArgs waits until the API server serves the CRDs in files
// (named <group>_<plural>.yaml, as MetalLB's config/crd/bases are).
func CRDsEstablishedArgs(files []string, timeout time.Duration) []string {
	args := []string{"wait", "--for=condition=Established", "--timeout=" + timeout.String()}
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".yaml")
		group, plural, ok := strings.Cut(base, "_")
		if !ok {
			continue
		}
		args = append(args, "crd/"+plural+"."+group)
	}
	return args
}

type kubectl struct{ path, kubeconfig string }

func (k kubectl) run(ctx context.Context, args ...string) error {
	full := append([]string{"--kubeconfig", k.kubeconfig}, args...)
	cmd := exec.CommandContext(ctx, k.path, full...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
