// Package addons installs the lab's cluster services on a running lab:
// CoreDNS, MetalLB (L2), local-path-provisioner with the `replicated` class
// over a GlusterFS replica-3 volume on db1-3, and the lab's OCI registry.
//
// It knows nothing of how the lab's nodes are made: the lab hands it a
// Cluster, a small interface over the node containers and the API server.
// The images come from scripts/addon-images.sh (see BuildImages); the
// manifests from the manifests package.
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
