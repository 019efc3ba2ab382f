// Package addons installs the lab's cluster services on a running lab:
// CoreDNS, MetalLB (L2), local-path-provisioner with the `replicated` class
// over a GlusterFS replica-3 volume on db1-3, and the lab's OCI registry.
//
// It knows nothing of how the lab's nodes are made: the lab hands it a
// Cluster, a small interface over the node containers and the API server.
// The images come from scripts/addon-images.sh (see BuildImages); the
// manifests from the manifests package. Wiring it to test/lab:
//
//	type labCluster struct{ *lab.Lab }
//
//	func (labCluster) Nodes() []addons.Node {
//		var out []addons.Node
//		for _, n := range lab.Nodes {
//			out = append(out, addons.Node{Name: n.Name, Address: netip.MustParseAddr(n.IP), ControlPlane: n.Role == "db"})
//		}
//		return out
//	}
//	func (labCluster) Subnet() netip.Prefix   { return netip.MustParsePrefix(lab.Subnet) }
//	func (labCluster) ClusterDNS() netip.Addr { return netip.MustParseAddr(lab.ClusterDNS) }
//	func (labCluster) LoadBalancerPool() (netip.Addr, netip.Addr) {
//		first, last, _ := strings.Cut(lab.MetalLBRange, "-")
//		return netip.MustParseAddr(first), netip.MustParseAddr(last)
//	}
//	func (c labCluster) ContainerdCertsDir() string { return filepath.Join(c.StateDir(), "containerd-certs.d") }
//
//	images, err := addons.BuildImages(ctx, root, os.Stderr)
//	kubectl, err := l.Kubectl(ctx)
//	res, err := addons.Install(ctx, labCluster{l}, addons.Options{Images: images, Kubectl: kubectl,
//		ManifestDir: filepath.Join(l.StateDir(), "addons"), Upstreams: []string{"/etc/resolv.conf"}, Progress: os.Stderr})
//	// after a node drill: addons.Heal(ctx, labCluster{l}, res.Gluster, 3*time.Minute, os.Stderr)
package addons

import (
	"context"
	"net/netip"
)

// Cluster is what Install needs from the lab. ImportImage, Exec, Apply and
// Kubeconfig have the signatures of test/lab's *lab.Lab, so an adapter
// embedding it only adds the four address methods.
type Cluster interface {
	// Nodes lists every node, control-plane (db1-3) and workers (www1-3).
	Nodes() []Node
	// Subnet is the lab's Docker network.
	Subnet() netip.Prefix
	// LoadBalancerPool is the range kept free for MetalLB inside Subnet
	// (lab.MetalLBRange); two zero addresses mean the upper quarter of Subnet.
	LoadBalancerPool() (first, last netip.Addr)
	// ClusterDNS is the kube-dns Service address the kubelets are configured with.
	ClusterDNS() netip.Addr
	// Kubeconfig is the path of an admin kubeconfig for the lab's stable API address.
	Kubeconfig() string
	// ContainerdCertsDir is the host folder every node mounts as
	// /etc/containerd/certs.d (containerd's registry config_path), where the
	// registry's hosts.toml goes; "" means writing it into each node by Exec.
	ContainerdCertsDir() string
	// ImportImage loads a `docker save` tarball on the host into every node's
	// containerd (k8s.io namespace), now and whenever a node boots again.
	ImportImage(ctx context.Context, tarPath string) error
	// Exec runs argv in the node as root and returns its combined output; a
	// non-zero exit is an error.
	Exec(ctx context.Context, node string, argv ...string) ([]byte, error)
	// Apply applies a manifest file on the host to the cluster (kubectl apply).
	Apply(ctx context.Context, manifestPath string) ([]byte, error)
}

// Node is one lab node.
type Node struct {
	// Name is the node's Kubernetes name and hostname (db1 ... www3).
	Name string
	// Address is its fixed address on the lab network.
	Address netip.Addr
	// ControlPlane marks db1-3: etcd, API servers, GlusterFS servers.
	ControlPlane bool
}

// controlPlane returns the control-plane nodes in the order given.
func controlPlane(nodes []Node) []Node {
	var out []Node
	for _, n := range nodes {
		if n.ControlPlane {
			out = append(out, n)
		}
	}
	return out
}
