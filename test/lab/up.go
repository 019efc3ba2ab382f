package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Labels on everything the lab makes in Docker.
const (
	labelLab   = "tsys-ci.lab"
	labelSpec  = "tsys-ci.lab.spec"
	labelState = "tsys-ci.lab.state"
)

// Up makes the lab, or finishes making it: built things come from caches,
// running nodes that match the wanted spec are left alone, stopped ones are
// started, and a lab made from different inputs is replaced. It returns
// once six nodes are Ready.
func Up(ctx context.Context, opts Options) (*Lab, error) {
	l, err := Open(opts)
	if err != nil {
		return nil, err
	}
	return l, l.Up(ctx)
}

// BuildNodeImage makes the node image (cached by its inputs) without touching
// the cluster, so that its slow first build, mostly downloads and unpacking,
// can overlap CPU-bound work: scripts/test.sh runs it in the background.
func (l *Lab) BuildNodeImage(ctx context.Context) error {
	unlock, err := l.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	return l.step("node image "+NodeImage(), "node-image", func(log io.Writer) error { return l.ensureNodeImage(ctx, log) })
}

// Up is the method form of the package's Up.
func (l *Lab) Up(ctx context.Context) error {
	unlock, err := l.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	start := time.Now()
	if err := l.step("checking Docker", "up", func(log io.Writer) error {
		if err := run(ctx, log, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
			return fmt.Errorf("the Docker engine does not answer (scripts/deps.sh starts it): %w", err)
		}
		return l.checkOwner(ctx)
	}); err != nil {
		return err
	}
	if filepath.Dir(l.state) != l.root {
		l.logf("using the lab kept in %s (one lab per machine; %s overrides)", l.state, StateDirEnv)
	}
	if err := l.step("node image "+NodeImage(), "node-image", func(log io.Writer) error { return l.ensureNodeImage(ctx, log) }); err != nil {
		return err
	}
	if err := l.step("sandbox image "+PauseImage(), "pause-image", func(log io.Writer) error { return l.ensurePauseImage(ctx, log) }); err != nil {
		return err
	}
	var bin string
	if err := l.step("Kubernetes binaries (scripts/k8s-bins.sh)", "k8s-bins", func(log io.Writer) error {
		var err error
		bin, err = l.k8sBins(ctx, log)
		return err
	}); err != nil {
		return err
	}
	if err := l.step("keys and configuration in "+l.state, "up", func(io.Writer) error { return l.writeConfig() }); err != nil {
		return err
	}
	spec, err := l.spec(bin)
	if err != nil {
		return err
	}
	if err := l.step("Docker network "+Network, "up", func(log io.Writer) error { return ensureNetwork(ctx, log) }); err != nil {
		return err
	}
	// Nodes count as Ready only once they renewed their lease after this:
	// a node just started still shows the Ready of its previous life.
	since := time.Now()
	if err := l.step("containers", "up", func(log io.Writer) error { return l.ensureContainers(ctx, log, spec, bin) }); err != nil {
		return err
	}
	if err := l.step("API server ready at "+l.apiURL(), "up", func(log io.Writer) error { return l.waitAPI(ctx, log, 4*time.Minute) }); err != nil {
		return err
	}
	if err := l.step("six nodes Ready", "up", func(log io.Writer) error { return l.WaitNodesReadySince(ctx, since, 4*time.Minute, nodeNames()...) }); err != nil {
		return err
	}
	l.logf("lab up in %s", time.Since(start).Round(time.Second))
	if err := l.Status(ctx, l.progress); err != nil {
		return err
	}
	fmt.Fprintf(l.progress, "\nUse it:  export KUBECONFIG=%s; kubectl get nodes\n", l.Kubeconfig())
	fmt.Fprintf(l.progress, "Logs:    %s/<node>/<program>.log   Remove: make lab-down\n", l.LogDir())
	return nil
}

func nodeNames() []string {
	var out []string
	for _, n := range Nodes {
		out = append(out, n.Name)
	}
	return out
}

func (l *Lab) apiURL() string { return fmt.Sprintf("https://%s:%d", APIAddress, APIPort) }

// k8sBins runs scripts/k8s-bins.sh, its progress shown as it goes.
func (l *Lab) k8sBins(ctx context.Context, log io.Writer) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(l.root, "scripts", "k8s-bins.sh"))
	cmd.Dir = l.root
	cmd.Stderr = io.MultiWriter(log, l.progress)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/k8s-bins.sh: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// containerRecipe names the shape of the containers' other arguments
// (volumes, mounts); change it when they change, so labs made before are
// replaced.
const containerRecipe = "2: glusterd state and brick volumes on db nodes"

// spec is a hash of everything the containers are made from: a lab whose
// containers carry another spec is replaced.
func (l *Lab) spec(bin string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "bin=%s\nnode=%s\npause=%s\nflags=%s\nrecipe=%s\n", bin, NodeImage(), PauseImage(), strings.Join(runFlags(), " "), containerRecipe)
	files := []string{"common/boot.sh", "common/routes.sh", "common/ca.crt", "haproxy.cfg"}
	for _, n := range Nodes {
		for _, f := range []string{"env", "kubelet.yaml", "kube-proxy.yaml", "containerd.toml", "cni/10-lab.conflist"} {
			files = append(files, filepath.Join("nodes", n.Name, f))
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(l.state, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %x\n", f, sha256.Sum256(b))
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// checkOwner refuses to touch a lab made from another state folder (another
// worktree): Docker's names are machine-wide.
func (l *Lab) checkOwner(ctx context.Context) error {
	out, err := runOut(ctx, nil, nil, "docker", "ps", "-a", "--filter", "label="+labelLab,
		"--format", `{{.Names}} {{.Label "`+labelState+`"}}`)
	if err != nil {
		return err
	}
	orphaned := false
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		// A lab whose state folder is gone (a deleted clone, such as CI's
		// temporary checkout) cannot be used by anyone: its keys went
		// with the folder. Its containers are removed, not fought.
		if _, err := os.Stat(filepath.Join(f[1], "kubeconfig")); errors.Is(err, os.ErrNotExist) {
			orphaned = true
			continue
		}
		if f[1] != l.state {
			return fmt.Errorf("container %s belongs to the lab kept in %s, not %s: use that lab (%s=%s) or remove it first (make lab-down there)",
				f[0], f[1], l.state, StateDirEnv, f[1])
		}
	}
	if orphaned {
		l.logf("removing the containers of a lab whose state folder is gone")
		return l.removeDocker(ctx, io.Discard)
	}
	return nil
}

func ensureNetwork(ctx context.Context, log io.Writer) error {
	out, err := runOut(ctx, log, nil, "docker", "network", "ls", "--filter", "name=^"+Network+"$", "--format", "{{.Name}}")
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(out)) == Network {
		sub, err := runOut(ctx, log, nil, "docker", "network", "inspect", Network, "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}")
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(string(sub)); got != Subnet {
			return fmt.Errorf("network %s exists with subnet %s, not %s: remove it (make lab-down)", Network, got, Subnet)
		}
		return nil
	}
	return run(ctx, log, "docker", "network", "create", "--driver", "bridge",
		"--subnet", Subnet, "--gateway", Gateway, "--ip-range", DynamicRange,
		"--label", labelLab+"=network", Network)
}

type containerState struct {
	Exists bool
	Status string // running, paused, exited, created
	Spec   string
}

func inspectContainer(ctx context.Context, name string) (containerState, error) {
	out, err := runOut(ctx, nil, nil, "docker", "ps", "-a", "--filter", "name=^"+name+"$",
		"--format", `{{.State}} {{.Label "`+labelSpec+`"}}`)
	if err != nil {
		return containerState{}, err
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return containerState{}, nil
	}
	s := containerState{Exists: true, Status: f[0]}
	if len(f) > 1 {
		s.Spec = f[1]
	}
	return s, nil
}

// runFlags are what every node container needs to run a kubelet here
// without --privileged (which fails: no CAP_SYS_RESOURCE on these hosts).
func runFlags() []string {
	return []string{
		"--cap-add=ALL", "--cap-drop=SYS_RESOURCE",
		"--security-opt", "seccomp=unconfined",
		"--security-opt", "apparmor=unconfined",
		"--security-opt", "systempaths=unconfined",
		"--device", "/dev/kmsg", "--device", "/dev/fuse",
		"-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
		"-v", "/lib/modules:/lib/modules:ro",
		"--tmpfs", "/run:rw,exec,nosuid,size=512m",
		"--tmpfs", "/var/lib/cni:rw,size=16m",
		"--tmpfs", "/tmp:rw,exec,size=256m",
	}
}

func (l *Lab) ensureContainers(ctx context.Context, log io.Writer, spec, bin string) error {
	// A lab made from other inputs is replaced as a whole: its etcd data and
	// keys belong together.
	for _, name := range containerNames() {
		st, err := inspectContainer(ctx, name)
		if err != nil {
			return err
		}
		if st.Exists && st.Spec != spec {
			l.logf("  %s was made from other inputs (spec %s, want %s): replacing the lab", name, st.Spec, spec)
			if err := l.removeDocker(ctx, log); err != nil {
				return err
			}
			break
		}
	}
	hosts := []string{"--add-host", "apilb:" + APIAddress}
	for _, n := range Nodes {
		hosts = append(hosts, "--add-host", n.Name+":"+n.IP)
	}
	common := []string{
		"--label", labelLab + "=node", "--label", labelSpec + "=" + spec, "--label", labelState + "=" + l.state,
		"--network", Network,
	}
	// The load balancer first: the kubelets reach the API through it.
	lb := append([]string{"run", "-d", "--name", LBName, "--hostname", "apilb", "--ip", APIAddress},
		common...)
	lb = append(lb, "-v", filepath.Join(l.state, "haproxy.cfg")+":/lab/haproxy.cfg:ro",
		NodeImage(), "haproxy", "-W", "-db", "-f", "/lab/haproxy.cfg")
	if err := l.ensureContainer(ctx, log, LBName, lb); err != nil {
		return err
	}
	for _, n := range Nodes {
		args := []string{"run", "-d", "--name", n.Container(), "--hostname", n.Name, "--ip", n.IP}
		args = append(args, common...)
		args = append(args, runFlags()...)
		args = append(args, hosts...)
		args = append(args,
			"-v", n.Container()+"-containerd:/var/lib/containerd",
			"-v", filepath.Join(l.state, "common")+":/lab/common:ro",
			"-v", filepath.Join(l.state, "nodes", n.Name)+":/lab/node:ro",
			"-v", filepath.Join(l.state, "images")+":/lab/images:ro",
			"-v", filepath.Join(l.state, "containerd-certs.d")+":/etc/containerd/certs.d:ro",
			"-v", filepath.Join(l.LogDir(), n.Name)+":/lab/log",
			"-v", bin+":/opt/k8s/bin:ro",
		)
		if n.Role == "db" {
			// etcd's data, and GlusterFS' state and brick (test/addons),
			// which must be kept and lost together.
			args = append(args,
				"-v", n.Container()+"-etcd:/var/lib/etcd",
				"-v", n.Container()+"-glusterd:/var/lib/glusterd",
				"-v", n.Container()+"-gluster:/srv/gluster",
			)
		}
		args = append(args, NodeImage())
		if err := l.ensureContainer(ctx, log, n.Container(), args); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) ensureContainer(ctx context.Context, log io.Writer, name string, runArgs []string) error {
	st, err := inspectContainer(ctx, name)
	if err != nil {
		return err
	}
	switch {
	case !st.Exists:
		l.logf("  creating %s", name)
		return run(ctx, log, "docker", runArgs...)
	case st.Status == "running":
		return nil
	case st.Status == "paused":
		l.logf("  %s is frozen: bringing it back", name)
		return l.startContainer(ctx, log, name)
	default:
		l.logf("  starting %s (was %s)", name, st.Status)
		return l.startContainer(ctx, log, name)
	}
}

// waitAPI waits for /readyz through the stable address to answer 200.
func (l *Lab) waitAPI(ctx context.Context, log io.Writer, timeout time.Duration) error {
	cfg, err := l.RESTConfig()
	if err != nil {
		return err
	}
	cfg.Timeout = 5 * time.Second
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last, lastReport := "no answer yet", time.Now()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.apiURL()+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d %s", resp.StatusCode, lastLine(string(body)))
		} else {
			last = err.Error()
		}
		fmt.Fprintln(log, last)
		if time.Since(lastReport) > 15*time.Second {
			l.logf("  still waiting for the API server (%s)", last)
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no ready API server behind %s within %s (last: %s); see %s/db1/kube-apiserver.log and etcd.log",
				l.apiURL(), timeout, last, l.LogDir())
		case <-time.After(time.Second):
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// Client is a clientset on the admin kubeconfig.
func (l *Lab) Client() (*kubernetes.Clientset, error) {
	cfg, err := l.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// WaitNodesReady waits until the named nodes are registered and Ready, and
// gives them their role labels (node-role.kubernetes.io/control-plane or
// worker), which a kubelet may not set on itself.
func (l *Lab) WaitNodesReady(ctx context.Context, timeout time.Duration, names ...string) error {
	return l.WaitNodesReadySince(ctx, time.Time{}, timeout, names...)
}

// WaitNodesReadySince is WaitNodesReady for nodes that were down: a node
// counts only once its kubelet renewed its lease after since, because a
// node restarted quickly still shows its old Ready condition for a while.
func (l *Lab) WaitNodesReadySince(ctx context.Context, since time.Time, timeout time.Duration, names ...string) error {
	c, err := l.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lastReport := time.Now()
	for {
		ready, notReady := map[string]bool{}, []string{}
		list, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, n := range list.Items {
				ready[n.Name] = nodeReady(&n)
			}
			if !since.IsZero() {
				leases, lerr := c.CoordinationV1().Leases(corev1.NamespaceNodeLease).List(ctx, metav1.ListOptions{})
				if lerr != nil {
					err = lerr
				}
				fresh := map[string]bool{}
				if lerr == nil {
					for _, le := range leases.Items {
						if rt := le.Spec.RenewTime; rt != nil && rt.After(since) {
							fresh[le.Name] = true
						}
					}
				}
				for name := range ready {
					ready[name] = ready[name] && fresh[name]
				}
			}
		}
		for _, name := range names {
			if !ready[name] {
				notReady = append(notReady, name)
			}
		}
		if err == nil && len(notReady) == 0 {
			return l.labelRoles(ctx, c, list.Items)
		}
		if time.Since(lastReport) > 15*time.Second {
			l.logf("  waiting for %s to be Ready", strings.Join(notReady, " "))
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes %s not Ready within %s (last error: %v); see %s/<node>/kubelet.log",
				strings.Join(notReady, " "), timeout, err, l.LogDir())
		case <-time.After(time.Second):
		}
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (l *Lab) labelRoles(ctx context.Context, c kubernetes.Interface, nodes []corev1.Node) error {
	for _, n := range nodes {
		ln, err := NodeByName(n.Name)
		if err != nil {
			continue
		}
		key := "node-role.kubernetes.io/worker"
		if ln.Role == "db" {
			key = "node-role.kubernetes.io/control-plane"
		}
		if _, ok := n.Labels[key]; ok {
			continue
		}
		patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:""}}}`, key)
		if _, err := c.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("labelling node %s: %w", n.Name, err)
		}
	}
	return nil
}

func containerNames() []string {
	names := []string{LBName}
	for _, n := range Nodes {
		names = append(names, n.Container())
	}
	return names
}

// Down removes every container, volume and network the lab made, its cgroup
// folders and its state folder. Built images stay cached. Safe to run twice.
func (l *Lab) Down(ctx context.Context) error {
	unlock, err := l.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := l.removeDocker(ctx, io.Discard); err != nil {
		return err
	}
	if _, err := runOut(ctx, nil, nil, "docker", "network", "inspect", Network); err == nil {
		l.logf("removing network %s", Network)
		if err := run(ctx, nil, "docker", "network", "rm", Network); err != nil {
			return fmt.Errorf("removing network %s (is something else attached? docker network inspect %s): %w", Network, Network, err)
		}
	}
	if _, err := os.Stat(l.state); err == nil {
		l.logf("removing %s", l.state)
		if err := os.RemoveAll(l.state); err != nil {
			return err
		}
	}
	l.logf("lab removed (node and sandbox images stay cached: docker images tsys-lab/*)")
	return nil
}

// removeDocker removes the containers, their volumes and cgroup folders.
func (l *Lab) removeDocker(ctx context.Context, log io.Writer) error {
	var present []string
	for _, name := range containerNames() {
		st, err := inspectContainer(ctx, name)
		if err != nil {
			return err
		}
		if st.Exists {
			present = append(present, name)
		}
	}
	// Frozen pods cannot die: thaw first.
	for _, n := range Nodes {
		_ = setFreezer(n, "THAWED")
	}
	if len(present) > 0 {
		l.logf("removing containers %s", strings.Join(present, " "))
		if err := run(ctx, log, "docker", append([]string{"rm", "-f", "-v"}, present...)...); err != nil {
			return err
		}
	}
	out, err := runOut(ctx, nil, nil, "docker", "volume", "ls", "-q", "--filter", "name=^"+Prefix)
	if err != nil {
		return err
	}
	var vols []string
	for _, v := range strings.Fields(string(out)) {
		for _, n := range Nodes {
			switch v {
			case n.Container() + "-containerd", n.Container() + "-etcd", n.Container() + "-glusterd", n.Container() + "-gluster":
				vols = append(vols, v)
			}
		}
	}
	if len(vols) > 0 {
		sort.Strings(vols)
		l.logf("removing volumes %s", strings.Join(vols, " "))
		if err := run(ctx, log, "docker", append([]string{"volume", "rm", "-f"}, vols...)...); err != nil {
			return err
		}
	}
	var errs []error
	for _, n := range Nodes {
		if err := removeCgroups(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
