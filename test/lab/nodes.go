package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StopMode says how a node dies in a drill.
type StopMode string

const (
	// Freeze is the honest power loss: every process of the node (its pods
	// too) is frozen and its network cut, so peers hear nothing and wait on
	// their own timeouts, as with a VM that loses power.
	Freeze StopMode = "freeze"
	// Kill ends every process at once (docker kill). The kernel closes
	// their sockets, so peers notice within milliseconds: recovery looks
	// faster than a real crash.
	Kill StopMode = "kill"
)

// StopNode makes a node die on purpose, its pods with it.
func (l *Lab) StopNode(ctx context.Context, name string, mode StopMode) error {
	n, err := NodeByName(name)
	if err != nil {
		return err
	}
	switch mode {
	case Kill:
		return run(ctx, nil, "docker", "kill", n.Container())
	case Freeze:
		// Pods live in the node's own cgroup root, outside the container's
		// cgroup: docker pause alone would leave them running.
		if err := setFreezer(n, "FROZEN"); err != nil {
			return err
		}
		if err := run(ctx, nil, "docker", "pause", n.Container()); err != nil {
			return err
		}
		return run(ctx, nil, "docker", "network", "disconnect", Network, n.Container())
	default:
		return fmt.Errorf("stop mode %q: want %q or %q", mode, Freeze, Kill)
	}
}

// StartNode brings a stopped or frozen node back. It returns once the
// node's programs run; WaitNodesReady waits for the node to be Ready.
func (l *Lab) StartNode(ctx context.Context, name string) error {
	n, err := NodeByName(name)
	if err != nil {
		return err
	}
	return l.startContainer(ctx, nil, n.Container())
}

func (l *Lab) startContainer(ctx context.Context, log io.Writer, container string) error {
	st, err := inspectContainer(ctx, container)
	if err != nil {
		return err
	}
	if !st.Exists {
		return fmt.Errorf("container %s does not exist: make lab-up", container)
	}
	var node *Node
	for _, n := range Nodes {
		if n.Container() == container {
			node = &n
		}
	}
	switch st.Status {
	case "running":
		return nil
	case "paused":
		if node == nil {
			return run(ctx, log, "docker", "unpause", container)
		}
		if !attached(ctx, container) {
			if err := run(ctx, log, "docker", "network", "connect", "--ip", node.IP, Network, container); err != nil {
				return err
			}
		}
		if err := run(ctx, log, "docker", "unpause", container); err != nil {
			return err
		}
		if err := setFreezer(*node, "THAWED"); err != nil {
			return err
		}
		// The disconnect removed eth0 and every route through it.
		if err := run(ctx, log, "docker", "exec", container, "/lab/common/routes.sh"); err != nil {
			return err
		}
		// A node whose power comes back boots with new connections. A
		// resumed one still holds its old connections to the API address,
		// and the load balancer's side of them sits in TCP retransmission
		// backoff: kube-proxy's watch then stayed stale for up to ~50 s
		// (a Service made meanwhile was unreachable from the node). Reset
		// them, as a reboot would.
		return run(ctx, log, "docker", "exec", container, "ss", "-K", "-t", "dst", APIAddress, "dport", "=", fmt.Sprint(APIPort))
	default:
		if node != nil {
			if err := setFreezer(*node, "THAWED"); err != nil {
				return err
			}
			if !attached(ctx, container) {
				if err := run(ctx, log, "docker", "network", "connect", "--ip", node.IP, Network, container); err != nil {
					return err
				}
			}
		}
		return run(ctx, log, "docker", "start", container)
	}
}

func attached(ctx context.Context, container string) bool {
	out, err := runOut(ctx, nil, nil, "docker", "inspect", container, "--format",
		`{{with index .NetworkSettings.Networks "`+Network+`"}}yes{{end}}`)
	return err == nil && strings.TrimSpace(string(out)) == "yes"
}

// setFreezer freezes or thaws the node's cgroup root (its pods) in the v1
// freezer controller; absent folders are fine.
func setFreezer(n Node, state string) error {
	p := filepath.Join("/sys/fs/cgroup/freezer", n.CgroupRoot(), "freezer.state")
	if _, err := os.Stat(p); err != nil {
		if state == "FROZEN" {
			return fmt.Errorf("no freezer cgroup %s: is %s running? (%w)", p, n.Name, err)
		}
		return nil
	}
	if err := os.WriteFile(p, []byte(state), 0o644); err != nil {
		return fmt.Errorf("writing %s to %s: %w", state, p, err)
	}
	return nil
}

// removeCgroups removes the node's cgroup folders in every controller,
// deepest first; the kernel removes a folder only once its processes are
// gone, so it retries for a while after the container is removed.
func removeCgroups(ctx context.Context, n Node) error {
	roots, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", strings.TrimPrefix(n.CgroupRoot(), "/")))
	deadline := time.Now().Add(20 * time.Second)
	for _, root := range roots {
		for {
			var dirs []string
			_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
			var last error
			for _, d := range dirs {
				if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
					last = err
				}
			}
			if last == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("removing cgroup %s: %w", root, last)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}

// Exec runs argv on a node and returns its combined output.
func (l *Lab) Exec(ctx context.Context, node string, argv ...string) ([]byte, error) {
	n, err := NodeByName(node)
	if err != nil {
		return nil, err
	}
	return runOut(ctx, nil, nil, "docker", append([]string{"exec", n.Container()}, argv...)...)
}

// ImportImage loads an image archive (docker save or OCI layout tar) into
// every node's containerd, now and at every later boot of a node. For the
// add-ons: images the nodes cannot pull. The archive is kept under the name
// of its folder and file (the add-on caches all call theirs image.tar), and
// an archive already imported into every node, unchanged since, is skipped,
// so a second lab-up does not import it again.
func (l *Lab) ImportImage(ctx context.Context, tarPath string) error {
	dir := filepath.Join(l.state, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fi, err := os.Stat(tarPath)
	if err != nil {
		return fmt.Errorf("importing an image into the lab: %w", err)
	}
	dst := filepath.Join(dir, importName(tarPath))
	stamp := fmt.Sprintf("%s %d %d\n", tarPath, fi.Size(), fi.ModTime().UnixNano())
	done := dst + ".imported"
	if b, err := os.ReadFile(done); err == nil && string(b) == stamp {
		if _, err := os.Stat(dst); err == nil {
			return nil
		}
	}
	os.Remove(done)
	if err := copyFile(tarPath, dst); err != nil {
		return err
	}
	var errs []error
	for _, n := range Nodes {
		if _, err := l.Exec(ctx, n.Name, "ctr", "-n", "k8s.io", "images", "import", "/lab/images/"+filepath.Base(dst)); err != nil {
			errs = append(errs, fmt.Errorf("importing %s into %s: %w", tarPath, n.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return os.WriteFile(done, []byte(stamp), 0o644)
}

// ForgetImage stops the lab from importing tarPath (given to ImportImage)
// at later boots; the nodes keep the image they have.
func (l *Lab) ForgetImage(tarPath string) error {
	dst := filepath.Join(l.state, "images", importName(tarPath))
	for _, p := range []string{dst, dst + ".imported"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// importName is the name an archive is kept under in the lab's images
// folder: its folder's name and its own, so archives all named image.tar in
// folders of their own do not overwrite each other.
func importName(tarPath string) string {
	parent := filepath.Base(filepath.Dir(tarPath))
	if parent == "." || parent == "/" || parent == "" {
		return filepath.Base(tarPath)
	}
	return parent + "-" + filepath.Base(tarPath)
}

// Kubectl returns the path of the kubectl built with the lab's components.
func (l *Lab) Kubectl(ctx context.Context) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kubectl != "" {
		return l.kubectl, nil
	}
	bin, err := l.k8sBins(ctx, io.Discard)
	if err != nil {
		return "", err
	}
	l.kubectl = filepath.Join(bin, "kubectl")
	return l.kubectl, nil
}

// Apply applies a manifest file or folder to the lab with server-side apply
// (kubectl from the lab's own build).
func (l *Lab) Apply(ctx context.Context, manifestPath string) ([]byte, error) {
	kubectl, err := l.Kubectl(ctx)
	if err != nil {
		return nil, err
	}
	return runOut(ctx, nil, nil, kubectl, "--kubeconfig", l.Kubeconfig(),
		"apply", "--server-side", "--force-conflicts", "--field-manager=tsys-ci-lab", "-f", manifestPath)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// Status writes a table of the lab: each container's state, each node's
// Kubernetes condition, and on db nodes the health of etcd and the API
// server asked directly.
func (l *Lab) Status(ctx context.Context, w io.Writer) error {
	ready := map[string]string{}
	if c, err := l.Client(); err == nil {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		list, err := c.CoreV1().Nodes().List(qctx, metav1.ListOptions{})
		cancel()
		if err == nil {
			for _, n := range list.Items {
				ready[n.Name] = "NotReady"
				if nodeReady(&n) {
					ready[n.Name] = "Ready"
				}
			}
		}
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	probe := func(url string) string {
		resp, err := hc.Get(url)
		if err != nil {
			return "down"
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return "ok"
		}
		return fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	pool := x509.NewCertPool()
	if ca, err := os.ReadFile(filepath.Join(l.state, "common", "ca.crt")); err == nil {
		pool.AppendCertsFromPEM(ca)
	}
	tc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer tc.CloseIdleConnections()
	probeTLS := func(ip string) string {
		// /readyz is open to anonymous clients (RBAC's bootstrap roles).
		resp, err := tc.Get(fmt.Sprintf("https://%s:%d/readyz", ip, APIPort))
		if err != nil {
			return "down"
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return "ok"
		}
		return fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tADDRESS\tCONTAINER\tNODE\tCOMPONENTS")
	st, _ := inspectContainer(ctx, LBName)
	fmt.Fprintf(tw, "apilb\tapi-lb\t%s:%d\t%s\t-\thaproxy over db1-db3\n", APIAddress, APIPort, orNone(st))
	for _, n := range Nodes {
		st, _ := inspectContainer(ctx, n.Container())
		comps := "kubelet, kube-proxy"
		if n.Role == "db" && st.Status == "running" {
			comps = fmt.Sprintf("etcd %s, apiserver %s, cm, sched, kubelet, kube-proxy",
				probe("http://"+n.IP+":2379/health"), probeTLS(n.IP))
		}
		node := ready[n.Name]
		if node == "" {
			node = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Role, n.IP, orNone(st), node, comps)
	}
	return tw.Flush()
}

func orNone(st containerState) string {
	if !st.Exists {
		return "absent"
	}
	return st.Status
}

// StopNodes stops several nodes at once, as one outage hitting them
// together (the demo's and the drills' failures); every node's error is
// returned.
func (l *Lab) StopNodes(ctx context.Context, names []string, mode StopMode) error {
	return eachNode(names, func(n string) error { return l.StopNode(ctx, n, mode) })
}

// StartNodes starts several stopped nodes at once.
func (l *Lab) StartNodes(ctx context.Context, names []string) error {
	return eachNode(names, func(n string) error { return l.StartNode(ctx, n) })
}

// eachNode runs fn on every node at once and joins their errors.
func eachNode(names []string, fn func(string) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, n := range names {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn(n) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}
