package doctor

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Analyze finds every single point of failure in a snapshot. It is pure:
// the same snapshot gives the same findings, most severe first.
func Analyze(s *Snapshot, opts Options) []Finding {
	a := &analysis{s: s, opts: opts}
	a.servers()
	a.nodesReady()
	a.clusterServices()
	a.speakers()
	a.storage()
	a.workloads()
	a.nodeConcentration()
	a.versions()
	a.expected()
	sort.SliceStable(a.findings, func(i, j int) bool {
		fi, fj := a.findings[i], a.findings[j]
		if fi.Severity != fj.Severity {
			return fi.Severity > fj.Severity
		}
		if fi.Check != fj.Check {
			return fi.Check < fj.Check
		}
		return fi.Object < fj.Object
	})
	return a.findings
}

type analysis struct {
	s        *Snapshot
	opts     Options
	findings []Finding
}

func (a *analysis) add(sev Severity, check, object, problem, why, fix string) {
	a.findings = append(a.findings, Finding{sev, check, object, problem, why, fix})
}

// isServer reports whether a node runs the control plane (k3s labels its
// servers control-plane and master; kubeadm-style clusters control-plane).
func isServer(n *corev1.Node) bool {
	for _, l := range []string{"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master", "node-role.kubernetes.io/etcd"} {
		if _, ok := n.Labels[l]; ok {
			return true
		}
	}
	return false
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func internalIP(n *corev1.Node) string {
	for _, ad := range n.Status.Addresses {
		if ad.Type == corev1.NodeInternalIP {
			return ad.Address
		}
	}
	return ""
}

func (a *analysis) servers() {
	var names []string
	for i := range a.s.Nodes {
		if isServer(&a.s.Nodes[i]) {
			names = append(names, a.s.Nodes[i].Name)
		}
	}
	n := len(names)
	object := "cluster (servers: " + strings.Join(names, ", ") + ")"
	switch {
	case n < 3:
		a.add(SeverityCritical, CheckServers, object,
			fmt.Sprintf("%d control-plane server(s); embedded etcd needs 3 to survive losing one", n),
			"etcd keeps the cluster state and needs a quorum of (n/2)+1 members: with 1 server any failure stops the API, with 2 the loss of either one does (no fault tolerance).",
			"Join servers until there are 3 (db1-3): render their config with `tsys-ci platform render` and start k3s on them one at a time.")
	case n%2 == 0:
		a.add(SeverityWarning, CheckServers, object,
			fmt.Sprintf("%d servers: an even number tolerates no more failures than %d", n, n-1),
			"etcd's quorum is (n/2)+1; an even member adds load and one more machine that can fail without adding tolerance.",
			"Run an odd number of servers (3 for this platform).")
	}
}

func (a *analysis) nodesReady() {
	for i := range a.s.Nodes {
		n := &a.s.Nodes[i]
		if !nodeReady(n) {
			a.add(SeverityCritical, CheckNodeReady, "node/"+n.Name, "node is not Ready",
				"its pods are evicted after 5 minutes and its share of replicas is missing until then; one more failure may take a service down.",
				"Check the machine and k3s on it (journalctl -u k3s / k3s-agent); if it is gone for good, remove it: kubectl delete node "+n.Name+".")
		}
	}
}

// podsMatching returns the pods in ns that a label selector selects.
func (a *analysis) podsMatching(ns string, sel *metav1.LabelSelector) []corev1.Pod {
	if sel == nil {
		return nil
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || selector.Empty() {
		return nil
	}
	var out []corev1.Pod
	for _, p := range a.s.Pods {
		if p.Namespace == ns && selector.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

// nodesOf lists the distinct nodes of running pods, sorted.
func nodesOf(pods []corev1.Pod) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range pods {
		if p.Spec.NodeName != "" && p.Status.Phase == corev1.PodRunning && !seen[p.Spec.NodeName] {
			seen[p.Spec.NodeName] = true
			out = append(out, p.Spec.NodeName)
		}
	}
	sort.Strings(out)
	return out
}

// hasPDB reports whether a PodDisruptionBudget in ns selects pods with
// these labels.
func (a *analysis) hasPDB(ns string, podLabels map[string]string) bool {
	for _, p := range a.s.PDBs {
		if p.Namespace != ns || p.Spec.Selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(podLabels)) {
			return true
		}
	}
	return false
}

// spreadsOverNodes reports whether a pod template keeps replicas apart:
// anti-affinity or a topology spread on the host name.
func spreadsOverNodes(spec *corev1.PodSpec) bool {
	for _, c := range spec.TopologySpreadConstraints {
		if c.TopologyKey == "kubernetes.io/hostname" {
			return true
		}
	}
	if aff := spec.Affinity; aff != nil && aff.PodAntiAffinity != nil {
		for _, t := range aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			if t.TopologyKey == "kubernetes.io/hostname" {
				return true
			}
		}
		for _, t := range aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			if t.PodAffinityTerm.TopologyKey == "kubernetes.io/hostname" {
				return true
			}
		}
	}
	return false
}

func replicasOf(r *int32) int {
	if r == nil {
		return 1
	}
	return int(*r)
}
