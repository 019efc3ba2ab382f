package doctor

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/tsys-group/tsys-ci/platform"
)

// CheckRendered: a single point of failure in the objects a platform would
// install (platform doctor --rendered), found before anything is installed.
const CheckRendered = "rendered"

// knownDesign is a component's workload that runs one instance by design:
// reported as a warning with the reason and what recovery takes, not hidden.
type knownDesign struct {
	component, kind, nameSuffix string
	why, fix                    string
}

var knownDesigns = []knownDesign{
	{"jenkins", "statefulset", "", "Jenkins' controller runs one instance by design: its state (JENKINS_HOME) is one volume only one controller may write. " +
		"When its node fails it is down until the node is declared lost (k3s.nodeFailure: about 31 s with render's timings), the pod is started on another node with its Longhorn volume reattached, and Jenkins has started (minutes, growing with JENKINS_HOME); running builds are lost.",
		"Accept it knowingly: keep JENKINS_HOME on the replicated class, the node-failure timings short, and builds retryable; the agents are what scales."},
	{"metallb", "deployment", "controller", "MetalLB runs one controller by design: it assigns addresses; while it is down no new LoadBalancer Service gets one, but the speakers on every node keep announcing existing addresses (recovery: the pod is rescheduled, about 31 s with render's node-failure timings).",
		"Nothing to add: keep the node-failure timings short."},
	{"longhorn", "deployment", "driver-deployer", "Longhorn's driver deployer only installs the CSI driver when it starts (the attacher, provisioner, resizer and snapshotter Deployments, 3 replicas each with render's values, and the plugin DaemonSet); while it is down those keep running, so volumes keep attaching and working (recovery: the pod is rescheduled, about 31 s with render's node-failure timings).",
		"Nothing to add."},
}

func (k knownDesign) matches(component, kind, name string) bool {
	return k.component == component && k.kind == kind && strings.HasSuffix(name, k.nameSuffix)
}

// internalStore names a component's built-in single-instance store and the
// dataServices key that replaces it.
func internalStore(component, kind, name string) (what, key string, ok bool) {
	if component != "harbor" || kind != "statefulset" {
		return "", "", false
	}
	switch {
	case strings.HasSuffix(name, "-database"):
		return "Harbor's internal PostgreSQL", "dataServices.postgres.databases.harbor", true
	case strings.HasSuffix(name, "-redis"):
		return "Harbor's internal Redis", "dataServices.redis.accounts.harbor", true
	}
	return "", "", false
}

// AnalyzeRendered applies the rules doctor applies to a live cluster to
// the objects a platform would install: each chart rendered with its values
// (platform.TemplateCharts) and render's own manifests (extra: the
// PodDisruptionBudgets of manifests/). With no pods, nodes or live storage
// classes it judges what the objects ask for: replicas, a
// PodDisruptionBudget, something spreading the replicas over nodes, and
// the storage class of every claim (Longhorn's class, which render makes
// the default, replicates). Every workload of a component counts as the
// platform's own, so one replica is critical unless it is a known
// single-instance design (a warning saying why).
func AnalyzeRendered(spec *platform.Spec, charts []platform.ChartObjects, extra []byte, opts Options) ([]Finding, error) {
	s := &Snapshot{}
	owner := map[string]string{} // namespace/name of a workload -> component
	for _, c := range charts {
		for i, doc := range splitYAML([]byte(c.Manifest)) {
			var obj map[string]any
			if err := yaml.Unmarshal(doc, &obj); err != nil {
				return nil, fmt.Errorf("%s's rendered chart, document %d: %w", c.Component, i+1, err)
			}
			if obj == nil {
				continue
			}
			md, _ := obj["metadata"].(map[string]any)
			if md == nil {
				md = map[string]any{}
				obj["metadata"] = md
			}
			if ns, _ := md["namespace"].(string); ns == "" {
				md["namespace"] = c.Namespace
			}
			name, _ := md["name"].(string)
			owner[fmt.Sprint(md["namespace"])+"/"+name] = c.Component
			if err := s.add(obj); err != nil {
				return nil, fmt.Errorf("%s's rendered chart: %w", c.Component, err)
			}
		}
	}
	if len(extra) > 0 {
		more, err := ParseSnapshot(extra)
		if err != nil {
			return nil, fmt.Errorf("render's manifests: %w", err)
		}
		s.PDBs = append(s.PDBs, more.PDBs...)
	}
	a := &analysis{s: s, opts: opts}
	if err := a.renderedGateway(extra); err != nil {
		return nil, err
	}
	classes := renderedClasses(spec, s)
	for _, w := range a.allWorkloads() {
		component := owner[w.meta.Namespace+"/"+w.meta.Name]
		a.renderedWorkload(component, w)
		a.renderedClaims(component, w, classes)
	}
	for i := range s.PVCs {
		pvc := &s.PVCs[i]
		a.renderedClaim(owner[pvc.Namespace+"/"+pvc.Name], "pvc/"+pvc.Namespace+"/"+pvc.Name, pvc.Spec.StorageClassName, classes)
	}
	sort.SliceStable(a.findings, func(i, j int) bool {
		fi, fj := a.findings[i], a.findings[j]
		if fi.Severity != fj.Severity {
			return fi.Severity > fj.Severity
		}
		return fi.Object < fj.Object
	})
	return a.findings, nil
}

// renderedClasses: the storage classes the platform will have, by name
// ("" is the default), and whether each replicates. Longhorn's chart
// creates its class from a ConfigMap, so it is described here from
// platform.yaml.
func renderedClasses(spec *platform.Spec, s *Snapshot) map[string]bool {
	out := map[string]bool{}
	a := &analysis{opts: Options{}}
	for i := range s.StorageClasses {
		out[s.StorageClasses[i].Name] = a.replicates(&s.StorageClasses[i])
	}
	if spec.Enabled("longhorn") {
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: platform.LonghornStorageClass},
			Provisioner: "driver.longhorn.io", Parameters: map[string]string{"numberOfReplicas": strconv.Itoa(spec.Storage.ReplicaCount)}}
		out[sc.Name] = a.replicates(sc)
		out[""] = out[sc.Name]
	}
	return out
}

func (a *analysis) renderedWorkload(component string, w workload) {
	if w.replicas == 0 {
		return
	}
	object := w.kind + "/" + w.meta.Namespace + "/" + w.meta.Name
	who := component
	if who == "" {
		who = "render's manifests"
	}
	if what, key, ok := internalStore(component, w.kind, w.meta.Name); ok {
		a.add(SeverityCritical, CheckRendered, object, fmt.Sprintf("%s: %s, %d replica", who, what, w.replicas),
			"the chart starts its own single-instance store: when its node fails, the component stops until the pod is rescheduled, and its data lives on one volume instead of the company's HA data services.",
			"Add "+key+" to platform.yaml (docs/platform.md, \"Data services\") and render again.")
		return
	}
	for _, k := range knownDesigns {
		if k.matches(component, w.kind, w.meta.Name) && w.replicas < 2 {
			a.add(SeverityWarning, CheckRendered, object, fmt.Sprintf("%s: %d replica (one instance by design)", who, w.replicas), k.why, k.fix)
			return
		}
	}
	if w.replicas < 2 {
		a.add(SeverityCritical, CheckRendered, object, fmt.Sprintf("%s: %d replica", who, w.replicas),
			"one pod is a single point of failure: when its node fails the component is down until the pod is rescheduled.",
			"Set the chart's replica count to 2 or more in templates/platform/values/"+component+".yaml.tmpl (or components."+component+".values), spread over nodes, with a PodDisruptionBudget.")
		return
	}
	if !spreadsOverNodes(&w.template.Spec) {
		a.add(SeverityWarning, CheckRendered, object, fmt.Sprintf("%s: %d replicas with nothing keeping them on different nodes", who, w.replicas),
			"the scheduler may place every replica on one node, which then fails them all together.",
			"Give the pods topologySpreadConstraints on kubernetes.io/hostname (or pod anti-affinity) through the chart's values.")
	}
	if !a.hasPDB(w.meta.Namespace, w.template.Labels) {
		a.add(SeverityWarning, CheckRendered, object, fmt.Sprintf("%s: no PodDisruptionBudget", who),
			"a node drain (k3s upgrade, maintenance) may evict every replica at once.",
			"Add a PodDisruptionBudget with maxUnavailable: 1 selecting "+selectorString(w.selector)+" (the chart's values, or render's manifests/).")
	}
}

// renderedClaims checks a StatefulSet's volume claim templates.
func (a *analysis) renderedClaims(component string, w workload, classes map[string]bool) {
	if w.kind != "statefulset" {
		return
	}
	for i := range a.s.StatefulSets {
		ss := &a.s.StatefulSets[i]
		if ss.Namespace != w.meta.Namespace || ss.Name != w.meta.Name {
			continue
		}
		for _, t := range ss.Spec.VolumeClaimTemplates {
			a.renderedClaim(component, "statefulset/"+ss.Namespace+"/"+ss.Name+" volume "+t.Name, t.Spec.StorageClassName, classes)
		}
	}
}

func (a *analysis) renderedClaim(component, object string, class *string, classes map[string]bool) {
	name := ""
	if class != nil {
		name = *class
	}
	replicated, known := classes[name]
	if known && replicated {
		return
	}
	for _, c := range a.opts.ReplicatedClasses {
		if c == name {
			return
		}
	}
	shown := name
	if shown == "" {
		shown = "the default class"
	}
	if !known {
		shown += " (not one the platform creates)"
	}
	who := component
	if who == "" {
		who = "render's manifests"
	}
	a.add(SeverityCritical, CheckRendered, object, fmt.Sprintf("%s: volume on %s, which is not known to replicate", who, shown),
		"its data would live on one node: the pod using it cannot move when that node fails, and the data is lost with the disk.",
		"Put the claim on the Longhorn class ("+platform.LonghornStorageClass+") through the chart's values, or name a class that replicates with --replicated-class.")
}
