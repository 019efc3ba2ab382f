package doctor

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

func isSpeakerSet(ds *appsv1.DaemonSet) bool {
	l := ds.Labels
	return l["component"] == "speaker" || l["app.kubernetes.io/component"] == "speaker" ||
		(strings.Contains(ds.Name, "speaker") && (ds.Namespace == "metallb-system" || strings.Contains(ds.Name, "metallb")))
}

// serviceLBPods are pods of k3s's own ServiceLB (klipper-lb), which must be
// disabled where MetalLB runs.
func (a *analysis) serviceLBPods() []corev1.Pod {
	var out []corev1.Pod
	for _, p := range a.s.Pods {
		if _, ok := p.Labels["svccontroller.k3s.cattle.io/svcname"]; ok || strings.HasPrefix(p.Name, "svclb-") {
			out = append(out, p)
		}
	}
	return out
}

func (a *analysis) hasLoadBalancers() bool {
	for _, s := range a.s.Services {
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			return true
		}
	}
	return false
}

func (a *analysis) speakers() {
	svclb := a.serviceLBPods()
	if len(svclb) > 0 {
		a.add(SeverityCritical, CheckServiceLB, "kube-system/"+svclb[0].Name+fmt.Sprintf(" (+%d more)", len(svclb)-1),
			"k3s's own ServiceLB (klipper-lb) is running beside MetalLB",
			"both controllers rewrite every LoadBalancer Service's address, so addresses flap and svclb pods hold the Service ports on the nodes (k3s#269, #1969).",
			"Add `disable: [servicelb]` to /etc/rancher/k3s/config.yaml on every server (it is a critical value: all servers must match) and restart them one at a time.")
	}
	var sets []*appsv1.DaemonSet
	for i := range a.s.DaemonSets {
		if isSpeakerSet(&a.s.DaemonSets[i]) {
			sets = append(sets, &a.s.DaemonSets[i])
		}
	}
	if len(sets) == 0 {
		if a.hasLoadBalancers() {
			a.add(SeverityCritical, CheckSpeakers, "metallb-system", "LoadBalancer Services exist but no MetalLB speaker DaemonSet",
				"without speakers no node answers ARP for the Services' addresses: the HAProxy edge cannot reach any app.",
				"Install MetalLB in L2 mode with the values from `tsys-ci platform render` and apply manifests/metallb-pools.yaml.")
		}
		return
	}
	for _, ds := range sets {
		a.speakerSet(ds, len(svclb) > 0)
	}
}

func (a *analysis) speakerSet(ds *appsv1.DaemonSet, serviceLB bool) {
	pods := a.podsMatching(ds.Namespace, ds.Spec.Selector)
	byNode := map[string]*corev1.Pod{}
	for i := range pods {
		byNode[pods[i].Spec.NodeName] = &pods[i]
	}
	nodes := map[string]*corev1.Node{}
	var healthy []string
	for i := range a.s.Nodes {
		n := &a.s.Nodes[i]
		nodes[n.Name] = n
		p, ok := byNode[n.Name]
		switch {
		case !ok:
			a.missingSpeaker(ds, n)
		case speakerHealthy(p):
			healthy = append(healthy, n.Name)
		default:
			a.brokenSpeaker(p, n, serviceLB)
		}
	}
	sort.Strings(healthy)
	if len(healthy) < len(a.s.Nodes) && len(healthy) < 2 {
		a.add(SeverityCritical, CheckSpeakers, "daemonset/"+ds.Namespace+"/"+ds.Name,
			fmt.Sprintf("only %d healthy speaker(s) (%s)", len(healthy), strings.Join(healthy, ", ")),
			"L2 failover moves an address to another healthy speaker; with fewer than 2 there is nowhere to move it.",
			"Fix the speakers reported above.")
	}
}

func speakerHealthy(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if !c.Ready {
			return false
		}
	}
	return len(p.Status.ContainerStatuses) > 0
}

func (a *analysis) missingSpeaker(ds *appsv1.DaemonSet, n *corev1.Node) {
	var blocking []string
	for _, t := range n.Spec.Taints {
		if (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute) && !tolerates(ds.Spec.Template.Spec.Tolerations, t) {
			blocking = append(blocking, t.ToString())
		}
	}
	problem := "no MetalLB speaker on " + n.Name
	fix := "Check `kubectl -n " + ds.Namespace + " describe daemonset " + ds.Name + "` and the node's events."
	if len(blocking) > 0 {
		problem += " (taint " + strings.Join(blocking, ", ") + " not tolerated)"
		fix = "Add tolerations for " + strings.Join(blocking, ", ") + " to the speakers (chart: speaker.tolerations; speaker.tolerateMaster covers only NoSchedule control-plane taints), or use a NoSchedule taint instead of NoExecute (metallb#933)."
	}
	if _, ok := n.Labels["node.kubernetes.io/exclude-from-external-load-balancers"]; ok {
		problem += "; node is labeled exclude-from-external-load-balancers"
		fix += " Remove the label node.kubernetes.io/exclude-from-external-load-balancers or set speaker.ignoreExcludeLB=true."
	}
	a.add(SeverityWarning, CheckSpeakers, "node/"+n.Name, problem,
		"addresses are announced only from nodes with a speaker; each missing one narrows where an address can fail over to.",
		fix)
}

func tolerates(tols []corev1.Toleration, t corev1.Taint) bool {
	for _, tol := range tols {
		if tol.Effect != "" && tol.Effect != t.Effect {
			continue
		}
		if tol.Key == "" && tol.Operator == corev1.TolerationOpExists {
			return true
		}
		if tol.Key != t.Key {
			continue
		}
		if tol.Operator == corev1.TolerationOpExists || tol.Value == t.Value {
			return true
		}
	}
	return false
}

func (a *analysis) brokenSpeaker(p *corev1.Pod, n *corev1.Node, serviceLB bool) {
	state, restarts, message := "not ready", int32(0), ""
	for _, c := range p.Status.ContainerStatuses {
		restarts += c.RestartCount
		if c.State.Waiting != nil && c.State.Waiting.Reason != "" {
			state = c.State.Waiting.Reason
		}
		if t := c.LastTerminationState.Terminated; t != nil && t.Message != "" {
			message = t.Message
		}
	}
	if p.Status.Phase != corev1.PodRunning && state == "not ready" {
		state = string(p.Status.Phase)
	}
	var causes []string
	if serviceLB {
		causes = append(causes, "k3s's ServiceLB is still enabled (see the k3s-servicelb finding): disable servicelb on every server")
	}
	if strings.Contains(message, "address already in use") || strings.Contains(message, "7946") {
		causes = append(causes, "its last exit says the memberlist port is taken: "+firstLine(message)+"; free 7946 on "+n.Name+" (often Docker Swarm) or move speaker.memberlist.mlBindPort")
	}
	if ip := internalIP(n); p.Status.PodIP != "" && ip != "" && p.Status.PodIP != ip {
		causes = append(causes, fmt.Sprintf("the speaker (host network) has IP %s but the node's InternalIP is %s: k3s picked another NIC; set node-ip (and flannel-iface) in k3s's config", p.Status.PodIP, ip))
	}
	if pub := n.Annotations["flannel.alpha.coreos.com/public-ip"]; pub != "" && pub != internalIP(n) {
		causes = append(causes, fmt.Sprintf("flannel uses %s but the node's InternalIP is %s: wrong NIC; set node-ip and flannel-iface", pub, internalIP(n)))
	}
	known := "Known causes, most likely first: k3s's ServiceLB still enabled (disable servicelb on all servers); port 7946 tcp/udp blocked or taken between nodes (memberlist; open it both ways, free it from Docker Swarm); wrong node IP on a multi-NIC host (set k3s node-ip/flannel-iface, or speaker.memberlist.mlBindAddrOverride); the liveness port 7472 blocked by the host firewall (older MetalLB) ; the memberlist secret missing. Read the reason: kubectl -n " + p.Namespace + " logs " + p.Name + " --previous."
	fix := known
	if len(causes) > 0 {
		fix = "Seen here: " + strings.Join(causes, "; ") + ". " + known
	}
	a.add(SeverityCritical, CheckSpeakers, "pod/"+p.Namespace+"/"+p.Name,
		fmt.Sprintf("MetalLB speaker on %s is %s (%d restarts)", n.Name, state, restarts),
		"a node whose speaker is down cannot announce addresses: if MetalLB elects it for a Service's address (or the address must fail over to it) the Service is unreachable from the HAProxy edge.",
		fix)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
