package edge

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Node is a cluster node the edge sends a color's traffic to, on that
// color's NodePort.
type Node struct {
	Name string // the Node's name; HAProxy's server name in each color pool
	Addr netip.Addr
}

// EdgeNodes picks the nodes that get one server in every color pool: those
// ordinary pods can run on, at their InternalIP, sorted by name.
//
// A node with a NoSchedule or NoExecute taint (a control-plane node, a
// dedicated storage node) runs none of an app's pods, so its NodePort
// (externalTrafficPolicy Local) never answers and its server would only
// ever be DOWN. The transient node.kubernetes.io/* taints (not-ready,
// unreachable, unschedulable for a cordon, pressure) do not count: they
// come and go with the node's health, which the pools' health checks
// already follow in seconds, and following them here would turn every
// node hiccup into a reload. A node without an InternalIP cannot be
// reached and is left out.
func EdgeNodes(nodes []corev1.Node) []Node {
	var out []Node
	for i := range nodes {
		n := &nodes[i]
		if n.DeletionTimestamp != nil || !schedulable(n) {
			continue
		}
		if a, ok := internalIP(n); ok {
			out = append(out, Node{Name: n.Name, Addr: a})
		}
	}
	slices.SortFunc(out, func(x, y Node) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

func schedulable(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if strings.HasPrefix(t.Key, "node.kubernetes.io/") {
			continue
		}
		return false
	}
	return true
}

// internalIP is the node's first InternalIP, IPv4 before IPv6 (the
// address kubelet registers and NodePorts listen on).
func internalIP(n *corev1.Node) (netip.Addr, bool) {
	var best netip.Addr
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		if !best.IsValid() || ip.Is4() && !best.Is4() {
			best = ip
		}
	}
	return best, best.IsValid()
}
