package doctor

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tsys-group/tsys-ci/platform"
	corev1 "k8s.io/api/core/v1"
)

// expected compares the cluster with platform.yaml (Options.Expected):
// what it should be, not only what it is. A live cluster can look healthy
// and still miss a host, run a server as an agent, or run a component at
// another version than the one pinned and tested.
func (a *analysis) expected() {
	spec := a.opts.Expected
	if spec == nil {
		return
	}
	a.expectedHosts(spec)
	a.expectedVersion(spec)
	a.expectedComponents(spec)
}

func (a *analysis) expectedHosts(spec *platform.Spec) {
	nodes := map[string]*corev1.Node{}
	for i := range a.s.Nodes {
		nodes[a.s.Nodes[i].Name] = &a.s.Nodes[i]
	}
	var agents, agentsUp int
	for _, h := range spec.Hosts {
		if h.Role == platform.RoleAgent {
			agents++
		}
		n, ok := nodes[h.Name]
		delete(nodes, h.Name)
		object := "node/" + h.Name
		if !ok {
			sev, why := SeverityWarning, "the workloads have one machine less to spread over: one more failure takes a larger share of every app's replicas."
			if h.Role == platform.RoleServer {
				sev, why = SeverityCritical, "an etcd member is missing: with 3 servers planned and 2 running, losing one more stops the API."
			}
			a.add(sev, CheckExpected, object, fmt.Sprintf("platform.yaml's %s %s (%s) is not a node of the cluster", h.Role, h.Name, h.Address),
				why, "Join it: `tsys-ci platform render -f platform.yaml` writes its k3s configuration (hosts/"+h.Name+"/); start k3s on it, or remove it from platform.yaml if it is gone for good.")
			continue
		}
		if h.Role == platform.RoleAgent {
			agentsUp++
		}
		if ip := internalIP(n); ip != "" && ip != h.Address {
			a.add(SeverityWarning, CheckExpected, object, fmt.Sprintf("node IP is %s; platform.yaml says %s", ip, h.Address),
				"k3s chose another interface than the one planned: MetalLB's memberlist and flannel then talk over the wrong network (the speakers' crash loop in the seed cluster had this cause).",
				"Set node-ip as rendered by `tsys-ci platform render` (hosts/"+h.Name+"/config.yaml) and restart k3s on "+h.Name+", or correct the address in platform.yaml.")
		}
		switch server := isServer(n); {
		case h.Role == platform.RoleServer && !server:
			a.add(SeverityCritical, CheckExpected, object, "platform.yaml makes it a server, but it runs as an agent (no control-plane role)",
				"the cluster has one etcd member and API server fewer than planned, so it tolerates fewer failures.",
				"Reinstall k3s on it as a server with the rendered configuration (drain it first: kubectl drain "+h.Name+" --ignore-daemonsets).")
		case h.Role == platform.RoleAgent && server:
			a.add(SeverityWarning, CheckExpected, object, "platform.yaml makes it an agent, but it runs the control plane",
				"an extra etcd member on a worker makes the quorum even or larger than planned and puts the control plane next to the apps' load.",
				"Correct platform.yaml, or remove the member (k3s etcd member removal) and reinstall the node as an agent.")
		}
		for _, k := range slices.Sorted(maps.Keys(h.Labels)) {
			if got, ok := n.Labels[k]; !ok || got != h.Labels[k] {
				a.add(SeverityWarning, CheckExpected, object, fmt.Sprintf("label %s=%s from platform.yaml is missing (node has %q)", k, h.Labels[k], got),
					"workloads placed by this label miss the node or land elsewhere.",
					fmt.Sprintf("kubectl label node %s %s=%s --overwrite (k3s: node-label in the rendered config keeps it).", h.Name, k, h.Labels[k]))
			}
		}
		if h.Role == platform.RoleServer {
			for _, t := range spec.K3s.ServerTaints {
				if !hasTaint(n, t) {
					a.add(SeverityWarning, CheckExpected, object, "server taint "+t+" from platform.yaml is missing",
						"app pods can then be scheduled on the servers, next to etcd, and a busy app can slow the control plane of the whole cluster.",
						"kubectl taint node "+h.Name+" "+t+" (k3s: node-taint in the rendered server config keeps it).")
				}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(nodes)) {
		a.add(SeverityInfo, CheckExpected, "node/"+name, "node is not in platform.yaml",
			"platform.yaml is the record of what the platform is; a node it does not list is not rendered, planned or checked.",
			"Add it to platform.yaml's hosts, or remove it: kubectl drain "+name+" --ignore-daemonsets && kubectl delete node "+name+".")
	}
	if agents > 0 && agentsUp < agents {
		a.add(SeverityWarning, CheckExpected, "cluster", fmt.Sprintf("%d of %d workers from platform.yaml are nodes", agentsUp, agents),
			"apps spread their replicas over fewer machines than planned; losing one takes a larger share.",
			"Join the missing workers (see their findings).")
	}
}

// hasTaint reports whether n carries a taint written as KEY[=VALUE]:EFFECT.
func hasTaint(n *corev1.Node, taint string) bool {
	kv, effect, _ := strings.Cut(taint, ":")
	key, value, _ := strings.Cut(kv, "=")
	for _, t := range n.Spec.Taints {
		if t.Key == key && t.Value == value && string(t.Effect) == effect {
			return true
		}
	}
	return false
}

func (a *analysis) expectedVersion(spec *platform.Spec) {
	want := spec.K3s.Version
	if want == "" {
		return
	}
	a.supported("platform.yaml k3s.version", want, a.opts.now())
	var other []string
	for i := range a.s.Nodes {
		n := &a.s.Nodes[i]
		if v := n.Status.NodeInfo.KubeletVersion; v != "" && v != want {
			other = append(other, n.Name+" "+v)
		}
	}
	if len(other) > 0 {
		slices.Sort(other)
		a.add(SeverityWarning, CheckExpected, "cluster", fmt.Sprintf("platform.yaml pins k3s %s; nodes run another: %s", want, strings.Join(other, ", ")),
			"the pinned version is the one rendered and tested; nodes at another version run untested combinations with the charts.",
			"Upgrade (or downgrade) the nodes to k3s "+want+", servers first, or pin what runs in platform.yaml.")
	}
}

func (a *analysis) expectedComponents(spec *platform.Spec) {
	if !a.s.ReleasesRead {
		why := "the snapshot has no Helm release Secrets (type " + helmReleaseType + ")"
		if a.s.ReleasesUnreadable != "" {
			why = a.s.ReleasesUnreadable
		}
		a.add(SeverityInfo, CheckExpected, "components", "installed components not checked: "+why,
			"doctor reads what is installed from Helm's release records.",
			"Run doctor with an account that may list Secrets, or add `kubectl get secrets -A -l owner=helm -o yaml` to the snapshot.")
		return
	}
	for _, name := range platform.ComponentOrder {
		if !spec.Enabled(name) {
			continue
		}
		c := spec.Components[name]
		object := "component/" + name
		var rel *Release
		for i := range a.s.Releases {
			if r := &a.s.Releases[i]; r.Name == name && r.Namespace == c.Namespace {
				rel = r
			}
		}
		switch {
		case rel == nil:
			a.add(SeverityWarning, CheckExpected, object, fmt.Sprintf("not installed (no Helm release %s in namespace %s)", name, c.Namespace),
				"platform.yaml plans it; whatever depends on it (logins, images, addresses) is missing.",
				"tsys-ci platform plan -f platform.yaml, then tsys-ci platform apply -f platform.yaml.")
		case rel.Status != "deployed":
			a.add(SeverityCritical, CheckExpected, object, fmt.Sprintf("Helm release %s/%s is %s (revision %d)", c.Namespace, name, rel.Status, rel.Revision),
				"a release that is not deployed is half installed or half upgraded: its objects may mix two versions.",
				"helm history "+name+" -n "+c.Namespace+"; then tsys-ci platform apply -f platform.yaml (it upgrades, or rolls back a failed upgrade).")
		case c.Version != "" && rel.ChartVersion != c.Version:
			a.add(SeverityWarning, CheckExpected, object, fmt.Sprintf("chart %s %s is installed; platform.yaml pins %s", rel.Chart, rel.ChartVersion, c.Version),
				"the pinned version is the one rendered and tested with these values.",
				"tsys-ci platform plan -f platform.yaml shows the change; apply it, or pin the running version.")
		}
	}
}
