package doctor

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tsys-group/tsys-ci/internal/contract"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// workload is a Deployment or StatefulSet reduced to what the checks need.
type workload struct {
	kind     string
	meta     *metav1.ObjectMeta
	replicas int
	selector *metav1.LabelSelector
	template *corev1.PodTemplateSpec
}

func (a *analysis) allWorkloads() []workload {
	var out []workload
	for i := range a.s.Deployments {
		d := &a.s.Deployments[i]
		out = append(out, workload{"deployment", &d.ObjectMeta, replicasOf(d.Spec.Replicas), d.Spec.Selector, &d.Spec.Template})
	}
	for i := range a.s.StatefulSets {
		s := &a.s.StatefulSets[i]
		out = append(out, workload{"statefulset", &s.ObjectMeta, replicasOf(s.Spec.Replicas), s.Spec.Selector, &s.Spec.Template})
	}
	return out
}

// isServe reports whether a workload is tsys-ci serve itself.
func isServe(w workload) bool {
	n := w.meta.Labels[contract.LabelAppName]
	return n == "tsys-ci-serve" || n == "tsys-ci" || w.meta.Name == "tsys-ci-serve"
}

func (a *analysis) workloads() {
	for _, w := range a.allWorkloads() {
		if systemNamespaces[w.meta.Namespace] {
			continue
		}
		if w.replicas == 0 {
			// Scaled to zero on purpose (the idle color of a blue/green app,
			// a paused workload): nothing runs, so nothing can fail.
			continue
		}
		object := w.kind + "/" + w.meta.Namespace + "/" + w.meta.Name
		managed := w.meta.Labels[contract.LabelManagedBy] == contract.ManagedBy
		if isServe(w) {
			if w.replicas < 2 {
				a.add(SeverityCritical, CheckServe, object, fmt.Sprintf("%d tsys-ci serve replica", w.replicas),
					"Harbor webhooks and promotes go through serve; with one replica its node failing drops deploys, and no second replica can take over the leader lease to resume a promote.",
					"Run 2 replicas spread over nodes with a PodDisruptionBudget (kubectl -n "+w.meta.Namespace+" scale "+w.kind+" "+w.meta.Name+" --replicas=2).")
			}
			continue
		}
		sev := SeverityWarning
		if managed {
			sev = SeverityCritical
		}
		who := "workload"
		if managed {
			who = "app managed by tsys-ci"
		}
		pods := a.podsMatching(w.meta.Namespace, w.selector)
		nodes := nodesOf(pods)
		switch {
		case w.replicas < 2 && a.singleWriter(w):
			// Two copies cannot share a single-writer volume: one replica is
			// the app's honest shape, and recovery is a reschedule.
			a.add(SeverityWarning, CheckWorkload, object, fmt.Sprintf("%s with 1 replica on a single-writer volume", who),
				"the app cannot run two copies, so when its node fails it is down until the pod is rescheduled on another node (in the lab about 35 s); its data survives only if the volume is on a replicated class.",
				"Keep the volume on the replicated class and the node-failure timings short; to remove the outage, change the app to share its state (a database, or a ReadWriteMany volume it can write from two copies).")
			continue
		case w.replicas < 2:
			a.add(sev, CheckWorkload, object, fmt.Sprintf("%s with %d replica", who, w.replicas),
				"one pod is a single point of failure: when its node fails the service is down until the pod is rescheduled (5 minutes or more; longer with a single-writer volume).",
				"Run 2 or more replicas spread over nodes with a PodDisruptionBudget; if the app cannot run two copies (single-writer volume), accept restart-based recovery knowingly and keep its volume on the replicated class.")
			continue
		case len(nodes) == 1 && len(pods) > 1:
			a.add(sev, CheckWorkload, object, fmt.Sprintf("all %d running replicas are on %s", len(pods), nodes[0]),
				"replicas on one node fail together.",
				"Add a topology spread constraint on kubernetes.io/hostname (or pod anti-affinity) and let the pods reschedule.")
		case !spreadsOverNodes(&w.template.Spec):
			a.add(SeverityWarning, CheckWorkload, object, fmt.Sprintf("%d replicas with nothing keeping them on different nodes", w.replicas),
				"the scheduler may place every replica on one node, which then fails them all together.",
				"Add topologySpreadConstraints on kubernetes.io/hostname (or preferred pod anti-affinity).")
		}
		if !a.hasPDB(w.meta.Namespace, w.template.Labels) {
			pdbSev := SeverityInfo
			if managed {
				pdbSev = SeverityWarning
			}
			a.add(pdbSev, CheckWorkload, object, "no PodDisruptionBudget",
				"a node drain (k3s upgrade, maintenance) may evict every replica at once.",
				"Add a PodDisruptionBudget with maxUnavailable: 1 selecting "+selectorString(w.selector)+".")
		}
	}
}

// singleWriter reports whether a workload mounts a claim that only one node
// can write (ReadWriteOnce or ReadWriteOncePod), so it cannot run two copies
// spread over nodes.
func (a *analysis) singleWriter(w workload) bool {
	for _, v := range w.template.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		for i := range a.s.PVCs {
			c := &a.s.PVCs[i]
			if c.Namespace != w.meta.Namespace || c.Name != v.PersistentVolumeClaim.ClaimName {
				continue
			}
			for _, m := range c.Spec.AccessModes {
				if m == corev1.ReadWriteOnce || m == corev1.ReadWriteOncePod {
					return true
				}
			}
		}
	}
	return false
}

func selectorString(sel *metav1.LabelSelector) string {
	if sel == nil {
		return "its pods"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(sel.MatchLabels)) {
		parts = append(parts, k+"="+sel.MatchLabels[k])
	}
	return strings.Join(parts, ",")
}
