package doctor

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// nodeConcentration reports a node that alone carries several single
// points of failure: a workload whose running pods are all on that node.
// Each is reported on its own too; together they say what one machine's
// loss takes down at once (the seed cluster's db3 held CoreDNS, the
// ingress controller and MetalLB's controller), which is what an operator
// must know to decide what to move first.
func (a *analysis) nodeConcentration() {
	carried := map[string][]string{} // node -> workloads only it runs
	for _, w := range a.allWorkloads() {
		if w.replicas == 0 {
			continue
		}
		nodes := nodesOf(a.podsMatching(w.meta.Namespace, w.selector))
		if len(nodes) != 1 {
			continue
		}
		carried[nodes[0]] = append(carried[nodes[0]], w.kind+"/"+w.meta.Namespace+"/"+w.meta.Name)
	}
	for _, node := range slices.Sorted(maps.Keys(carried)) {
		ws := carried[node]
		if len(ws) < 2 {
			continue
		}
		slices.Sort(ws)
		a.add(a.worstOf(ws), CheckNodeConcentration, "node/"+node,
			fmt.Sprintf("%d single points of failure run only on %s: %s", len(ws), node, strings.Join(ws, ", ")),
			"losing this one machine stops all of them together, so a failure there is several outages at once (e.g. no DNS and no ingress while the pods are rescheduled).",
			"Fix the most critical first: give each 2 or more replicas spread over nodes (topologySpreadConstraints on kubernetes.io/hostname) with a PodDisruptionBudget; for what must stay single (MetalLB's controller), keep it off the node that carries the others.")
	}
}

// worstOf is the highest severity already found for any of objects: two
// warnings on one node stay a warning, one critical makes it critical.
func (a *analysis) worstOf(objects []string) Severity {
	worst := SeverityWarning
	for _, f := range a.findings {
		if slices.Contains(objects, f.Object) && f.Severity > worst {
			worst = f.Severity
		}
	}
	return worst
}
