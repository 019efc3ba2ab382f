package doctor

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
)

// systemNamespaces hold the cluster's own services rather than apps.
var systemNamespaces = map[string]bool{
	"kube-system": true, "metallb-system": true, "ingress-nginx": true, "longhorn-system": true,
	"cattle-system": true, "cert-manager": true, "kube-public": true, "kube-node-lease": true,
	"local-path-storage": true,
}

// clusterServiceInfo says why a known cluster service matters and how to
// make it redundant.
type clusterServiceInfo struct {
	severity Severity
	why, fix string
	// pdbSeverity is how a missing PodDisruptionBudget is reported
	// (SeverityInfo, the zero value, unless set): a warning for the
	// gateway, through which every API passes.
	pdbSeverity Severity
}

const renderHint = " `tsys-ci platform render` writes the patch and PodDisruptionBudget (cluster-services/, manifests/cluster-services.yaml)."

func knownClusterService(d *appsv1.Deployment) clusterServiceInfo {
	name := d.Name
	switch {
	case name == "coredns":
		return clusterServiceInfo{SeverityCritical,
			"every name lookup in the cluster goes through CoreDNS; with one replica, losing its node stops DNS for every pod until it is rescheduled (3-5 minutes seen with k3s).",
			"kubectl -n kube-system scale deployment coredns --replicas=3 (k3s keeps the count across restarts), spread it over nodes and add a PodDisruptionBudget." + renderHint, SeverityInfo}
	case name == "traefik" || strings.Contains(name, "ingress"):
		return clusterServiceInfo{SeverityCritical,
			"all HTTP traffic from the HAProxy edge, and every API behind the gateway, enters through the ingress controller; with one replica its node is a single point of failure for every web service.",
			"Run at least 2 replicas spread over the workers with a PodDisruptionBudget (Traefik, the gateway: platform.yaml gateway, applied by `tsys-ci platform apply` as the HelmChartConfig manifests/gateway.yaml; ingress-nginx: controller.replicaCount and controller.podDisruptionBudget).",
			SeverityWarning}
	case name == "metrics-server":
		return clusterServiceInfo{SeverityWarning,
			"kubectl top, the Rancher dashboard and autoscalers lose metrics while its only node is down.",
			"Scale it to 2 with a PodDisruptionBudget." + renderHint, SeverityInfo}
	case name == "local-path-provisioner":
		return clusterServiceInfo{SeverityWarning,
			"no local-path volume can be created while its only node is down.",
			"Scale it to 2 (it elects a leader) with a PodDisruptionBudget, and keep stateful apps on the replicated class." + renderHint, SeverityInfo}
	case d.Namespace == "metallb-system" || strings.Contains(name, "metallb"):
		return clusterServiceInfo{SeverityWarning,
			"the MetalLB controller assigns addresses: while its only replica is down no new LoadBalancer Service gets one (speakers keep announcing existing addresses).",
			"MetalLB runs one controller by design: let it move fast (tolerationSeconds: 30 for node.kubernetes.io/unreachable and not-ready) and keep it off the node the speakers crash on.", SeverityInfo}
	}
	return clusterServiceInfo{SeverityWarning,
		"a cluster service with one replica stops while its node is down.",
		"Scale it to 2 or more, spread over nodes, with a PodDisruptionBudget.", SeverityInfo}
}

func (a *analysis) clusterServices() {
	for i := range a.s.Deployments {
		d := &a.s.Deployments[i]
		if !systemNamespaces[d.Namespace] {
			continue
		}
		info := knownClusterService(d)
		object := "deployment/" + d.Namespace + "/" + d.Name
		pods := a.podsMatching(d.Namespace, d.Spec.Selector)
		nodes := nodesOf(pods)
		replicas := replicasOf(d.Spec.Replicas)
		where := ""
		if len(nodes) > 0 {
			where = " (on " + strings.Join(nodes, ", ") + ")"
		}
		switch {
		case replicas < 2:
			a.add(info.severity, CheckClusterService, object, fmt.Sprintf("%d replica%s", replicas, where), info.why, info.fix)
		case len(nodes) == 1 && len(pods) > 1:
			a.add(info.severity, CheckClusterService, object,
				fmt.Sprintf("all %d running replicas are on %s", len(pods), nodes[0]),
				"replicas on one node fail together; "+info.why,
				"Add a topology spread constraint on kubernetes.io/hostname (or pod anti-affinity) and let the pods reschedule.")
		case !a.hasPDB(d.Namespace, d.Spec.Template.Labels):
			a.add(info.pdbSeverity, CheckClusterService, object, fmt.Sprintf("%d replicas but no PodDisruptionBudget", replicas),
				"a node drain during an upgrade may evict every replica at once.",
				"Add a PodDisruptionBudget with maxUnavailable: 1."+renderHint)
		}
	}
}
