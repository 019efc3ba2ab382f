// Package labaddons puts test/addons on test/lab: the lab's cluster services
// (CoreDNS, MetalLB, local-path-provisioner with the `replicated` class over
// GlusterFS, the lab registry) and the load-balancer pool `tsys-ci promote`
// allocates from. `make lab-up` and the e2e tests call Up.
//
// The two packages stay apart (the lab knows nothing of the add-ons, the
// add-ons nothing of how nodes are made); Cluster is the adapter between them.
package labaddons

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/addons"
	"github.com/tsys-group/tsys-ci/test/lab"
)

// ReservedAddresses is how many addresses at the start of the MetalLB range
// stay with the lab's own services (the registry takes the first); the rest
// is the pool `tsys-ci promote` hands out.
const ReservedAddresses = 10

// PromotePorts is the port range promote hands out on the pool's addresses.
var PromotePorts = rollout.PortRange{Min: 8000, Max: 8999}

// Cluster adapts a *lab.Lab to addons.Cluster: the lab's methods ImportImage,
// Exec, Apply and Kubeconfig as they are, plus its addresses.
type Cluster struct{ *lab.Lab }

var _ addons.Cluster = Cluster{}

// Nodes lists the lab's six nodes; db1-3 are the control plane.
func (Cluster) Nodes() []addons.Node {
	var out []addons.Node
	for _, n := range lab.Nodes {
		out = append(out, addons.Node{Name: n.Name, Address: netip.MustParseAddr(n.IP), ControlPlane: n.Role == "db"})
	}
	return out
}

// Subnet is the lab network's.
func (Cluster) Subnet() netip.Prefix { return netip.MustParsePrefix(lab.Subnet) }

// ClusterDNS is the kube-dns address the kubelets give pods.
func (Cluster) ClusterDNS() netip.Addr { return netip.MustParseAddr(lab.ClusterDNS) }

// LoadBalancerPool is lab.MetalLBRange.
func (Cluster) LoadBalancerPool() (netip.Addr, netip.Addr) {
	first, last, err := MetalLBRange()
	if err != nil {
		panic(err) // a constant of package lab; its tests check it parses
	}
	return first, last
}

// ContainerdCertsDir is the state folder every node mounts as
// /etc/containerd/certs.d.
func (c Cluster) ContainerdCertsDir() string {
	return filepath.Join(c.StateDir(), "containerd-certs.d")
}

// MetalLBRange parses lab.MetalLBRange.
func MetalLBRange() (first, last netip.Addr, err error) {
	a, b, ok := strings.Cut(lab.MetalLBRange, "-")
	first, err1 := netip.ParseAddr(a)
	last, err2 := netip.ParseAddr(b)
	if !ok || err1 != nil || err2 != nil || last.Less(first) {
		return first, last, fmt.Errorf("lab.MetalLBRange %q is not FIRST-LAST", lab.MetalLBRange)
	}
	return first, last, nil
}

// PromotePool is the pool `tsys-ci promote` allocates from in the lab: the
// MetalLB range less its first ReservedAddresses.
func PromotePool(first, last netip.Addr) (rollout.Pool, error) {
	start := first
	for i := 0; i < ReservedAddresses; i++ {
		if start == last {
			return rollout.Pool{}, fmt.Errorf("the MetalLB range %s-%s has no more than %d addresses; promote needs some past the %d the lab keeps", first, last, ReservedAddresses, ReservedAddresses)
		}
		start = start.Next()
	}
	p := rollout.Pool{Addresses: []string{start.String() + "-" + last.String()}, Ports: PromotePorts}
	return p, p.Validate()
}

// Options tune Up.
type Options struct {
	// Lab are the lab's options (state folder, progress).
	Lab lab.Options
	// Progress receives one line per step (default os.Stderr).
	Progress io.Writer
}

// Result is a lab with its add-ons.
type Result struct {
	Lab    *lab.Lab
	Addons addons.Result
	// Pool is what promote allocates from (ConfigMap tsys-ci-system/tsys-ci-lb).
	Pool rollout.Pool
	// Took is how long the add-ons' part took.
	Took time.Duration
}

// Up brings the lab up (lab.Up), then installs the add-ons and writes the
// promote pool. Like both, it is idempotent and quick on a lab already up.
func Up(ctx context.Context, o Options) (*Result, error) {
	if o.Progress == nil {
		o.Progress = os.Stderr
	}
	if o.Lab.Progress == nil {
		o.Lab.Progress = o.Progress
	}
	l, err := lab.Up(ctx, o.Lab)
	if err != nil {
		return nil, err
	}
	// Test binaries of several checkouts may bring the shared lab up at
	// once; their add-on installs take turns like lab.Up does.
	unlock, err := l.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return Install(ctx, l, o.Progress)
}

// Install puts the add-ons and the promote pool on a lab that is up.
func Install(ctx context.Context, l *lab.Lab, progress io.Writer) (*Result, error) {
	start := time.Now()
	images, err := addons.BuildImages(ctx, l.RepoRoot(), progress)
	if err != nil {
		return nil, err
	}
	kubectl, err := l.Kubectl(ctx)
	if err != nil {
		return nil, err
	}
	res, err := addons.Install(ctx, Cluster{l}, addons.Options{
		Images:      images,
		Kubectl:     kubectl,
		ManifestDir: filepath.Join(l.StateDir(), "addons"),
		Upstreams:   []string{"/etc/resolv.conf"},
		Progress:    progress,
	})
	if err != nil {
		return nil, fmt.Errorf("%w (the cluster itself is up: export KUBECONFIG=%s)", err, l.Kubeconfig())
	}
	pool, err := PromotePool(res.PoolFirst, res.PoolLast)
	if err != nil {
		return nil, err
	}
	c, err := l.Client()
	if err != nil {
		return nil, err
	}
	if err := WritePromotePool(ctx, c, pool); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "add-ons: promote pool %s ports %d-%d in ConfigMap %s/%s\n",
		strings.Join(pool.Addresses, ","), pool.Ports.Min, pool.Ports.Max, rollout.DefaultAllocNamespace, rollout.DefaultAllocName)
	return &Result{Lab: l, Addons: res, Pool: pool, Took: time.Since(start)}, nil
}

// WritePromotePool creates or updates the pool key of promote's allocation
// ConfigMap, leaving the allocations already made alone.
func WritePromotePool(ctx context.Context, c kubernetes.Interface, pool rollout.Pool) error {
	data, err := json.Marshal(pool)
	if err != nil {
		return err
	}
	ns, name := rollout.DefaultAllocNamespace, rollout.DefaultAllocName
	where := fmt.Sprintf("ConfigMap %s/%s", ns, name)
	_, err = c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s for the promote pool: %w", ns, err)
	}
	for attempt := 0; ; attempt++ {
		cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Data:       map[string]string{rollout.PoolKey: string(data)},
			}, metav1.CreateOptions{})
		} else if err == nil {
			if cm.Data[rollout.PoolKey] == string(data) {
				return nil
			}
			if cm.Data == nil {
				cm.Data = map[string]string{}
			}
			cm.Data[rollout.PoolKey] = string(data)
			_, err = c.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
		}
		if err == nil {
			return nil
		}
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 10 {
			continue
		}
		return fmt.Errorf("writing the promote pool into %s: %w", where, err)
	}
}

// Status writes the add-ons' table: where each service is and whether it runs.
func Status(ctx context.Context, w io.Writer, r *Result) error {
	c, err := r.Lab.Client()
	if err != nil {
		return err
	}
	ready := func(ns, kind, name string) string {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		switch kind {
		case "deployment":
			d, err := c.AppsV1().Deployments(ns).Get(qctx, name, metav1.GetOptions{})
			if err != nil {
				return "absent"
			}
			return fmt.Sprintf("%d/%d ready", d.Status.ReadyReplicas, d.Status.Replicas)
		default:
			d, err := c.AppsV1().DaemonSets(ns).Get(qctx, name, metav1.GetOptions{})
			if err != nil {
				return "absent"
			}
			return fmt.Sprintf("%d/%d ready", d.Status.NumberReady, d.Status.DesiredNumberScheduled)
		}
	}
	classes := "-"
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if list, err := c.StorageV1().StorageClasses().List(qctx, metav1.ListOptions{}); err == nil {
		var names []string
		for _, sc := range list.Items {
			names = append(names, sc.Name+" ("+sc.Provisioner+")")
		}
		classes = strings.Join(names, ", ")
	}
	cancel()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADD-ON\tSTATE\tWHERE")
	fmt.Fprintf(tw, "CoreDNS\t%s\t%s (kube-system/kube-dns)\n", ready("kube-system", "deployment", "coredns"), lab.ClusterDNS)
	fmt.Fprintf(tw, "MetalLB controller\t%s\tL2 pool %s-%s\n", ready("metallb-system", "deployment", "controller"), r.Addons.PoolFirst, r.Addons.PoolLast)
	fmt.Fprintf(tw, "MetalLB speakers\t%s\tevery node\n", ready("metallb-system", "daemonset", "speaker"))
	fmt.Fprintf(tw, "registry\t%s\thttp://%s (push from the host, nodes pull)\n", ready("lab-registry", "deployment", "registry"), r.Addons.Registry)
	fmt.Fprintf(tw, "local-path-provisioner\t%s\tstorage classes: %s\n", ready("local-path-storage", "deployment", "local-path-provisioner"), classes)
	fmt.Fprintf(tw, "GlusterFS\tvolume %s\tbricks on db1-db3, mounted on every node\n", r.Addons.Gluster.Volume)
	fmt.Fprintf(tw, "promote pool\t%s/%s\t%s ports %d-%d\n", rollout.DefaultAllocNamespace, rollout.DefaultAllocName,
		strings.Join(r.Pool.Addresses, ","), r.Pool.Ports.Min, r.Pool.Ports.Max)
	return tw.Flush()
}
