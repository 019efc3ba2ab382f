package lab

import "fmt"

// The lab's fixed names and addresses. Other areas (add-ons, drills) build
// on these, so they are exported and documented in docs/lab.md.
const (
	// Network is the Docker network every lab container is on.
	Network = "tsys-lab"
	// Subnet of Network: outside Docker's default address pools, so no
	// network another engineer creates takes it.
	Subnet = "10.213.0.0/24"
	// Gateway is the host's address on Network.
	Gateway = "10.213.0.1"
	// DynamicRange is where Docker puts containers joined to Network
	// without a fixed address (a registry, a client): clear of the nodes
	// and of MetalLBRange.
	DynamicRange = "10.213.0.64/26"
	// MetalLBRange is kept free for MetalLB's address pool (add-ons).
	MetalLBRange = "10.213.0.200-10.213.0.250"
	// APIAddress is the stable API address: HAProxy over the three API
	// servers, used by every kubelet and by the kubeconfig.
	APIAddress = "10.213.0.10"
	// APIPort is the API servers' and the load balancer's port.
	APIPort = 6443
	// ClusterCIDR holds every pod address; each node has a /24 of it.
	ClusterCIDR = "10.244.0.0/16"
	// ServiceCIDR holds ClusterIPs; the first is the kubernetes Service.
	ServiceCIDR = "10.96.0.0/16"
	// ClusterDNS is the ClusterIP the kubelets give pods as their resolver;
	// CoreDNS (add-ons) must use it.
	ClusterDNS = "10.96.0.10"
	// Prefix names every container, volume and image the lab makes.
	Prefix = "lab-"
	// LBName is the API load balancer's container.
	LBName = "lab-apilb"
)

// Node is one lab machine.
type Node struct {
	Name    string // host name and Kubernetes node name: db1 .. www3
	Role    string // "db" (control plane, etcd) or "www" (worker)
	IP      string // fixed address on Network
	PodCIDR string // this node's share of ClusterCIDR
}

// Container is the node's Docker container name.
func (n Node) Container() string { return Prefix + n.Name }

// CgroupRoot is the node's own cgroup folder in every v1 controller.
func (n Node) CgroupRoot() string { return "/" + Prefix + n.Name }

// Nodes is the lab, control plane first.
var Nodes = []Node{
	{"db1", "db", "10.213.0.11", "10.244.1.0/24"},
	{"db2", "db", "10.213.0.12", "10.244.2.0/24"},
	{"db3", "db", "10.213.0.13", "10.244.3.0/24"},
	{"www1", "www", "10.213.0.21", "10.244.4.0/24"},
	{"www2", "www", "10.213.0.22", "10.244.5.0/24"},
	{"www3", "www", "10.213.0.23", "10.244.6.0/24"},
}

// NodeByName finds a node or says which names exist.
func NodeByName(name string) (Node, error) {
	for _, n := range Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("no lab node %q (nodes: db1 db2 db3 www1 www2 www3)", name)
}

func dbNodes() []Node {
	var out []Node
	for _, n := range Nodes {
		if n.Role == "db" {
			out = append(out, n)
		}
	}
	return out
}
