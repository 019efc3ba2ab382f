package doctor

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/platform"
	storagev1 "k8s.io/api/storage/v1"
)

const defaultClassAnnotation = "storageclass.kubernetes.io/is-default-class"

// replicates reports whether volumes of a class survive losing a node.
func (a *analysis) replicates(sc *storagev1.StorageClass) bool {
	if slices.Contains(a.opts.ReplicatedClasses, sc.Name) || sc.Annotations[contract.AnnotationReplicated] == "true" {
		return true
	}
	if sc.Provisioner == "driver.longhorn.io" {
		return longhornClassReplicas(sc) >= 2
	}
	return false
}

func longhornClassReplicas(sc *storagev1.StorageClass) int {
	n, err := strconv.Atoi(sc.Parameters["numberOfReplicas"])
	if err != nil {
		return platform.DefaultReplicaCount
	}
	return n
}

func (a *analysis) storage() {
	classes := map[string]*storagev1.StorageClass{}
	var defaults []*storagev1.StorageClass
	anyReplicated := false
	for i := range a.s.StorageClasses {
		sc := &a.s.StorageClasses[i]
		classes[sc.Name] = sc
		if sc.Annotations[defaultClassAnnotation] == "true" {
			defaults = append(defaults, sc)
		}
		if a.replicates(sc) {
			anyReplicated = true
		}
		if sc.Provisioner == "driver.longhorn.io" && longhornClassReplicas(sc) < platform.DefaultReplicaCount {
			a.add(SeverityWarning, CheckStorageClass, "storageclass/"+sc.Name,
				fmt.Sprintf("Longhorn class with numberOfReplicas %d", longhornClassReplicas(sc)),
				"with fewer than 3 replicas on db1-3, one failed disk or node leaves volumes with no redundancy at all while it rebuilds.",
				"Create volumes on a class with numberOfReplicas: \"3\" (the Longhorn chart's persistence.defaultClassReplicaCount).")
		}
	}
	if !anyReplicated {
		a.add(SeverityCritical, CheckStorageClass, "cluster", "no storage class replicates its volumes",
			"a volume that lives on one node's disk is lost (or unreachable) with that node: every stateful app is a single point of failure.",
			"Install Longhorn with the values from `tsys-ci platform render` (3 replicas on db1-3) and make its class the default.")
	}
	switch {
	case len(defaults) == 0 && len(a.s.PVCs) > 0:
		a.add(SeverityWarning, CheckStorageClass, "cluster", "no default storage class",
			"claims without a class stay Pending, so an app installed without storage settings does not start.",
			"Mark the replicated class default: kubectl annotate storageclass longhorn "+defaultClassAnnotation+"=true.")
	case len(defaults) > 0:
		for _, d := range defaults {
			if !a.replicates(d) {
				a.add(SeverityCritical, CheckStorageClass, "storageclass/"+d.Name,
					fmt.Sprintf("the default class %s (%s) does not replicate", d.Name, d.Provisioner),
					"every claim that names no class lands on one node's disk and dies with it.",
					"Make the replicated class the default and remove the mark from this one: kubectl annotate storageclass "+d.Name+" "+defaultClassAnnotation+"- ; kubectl annotate storageclass longhorn "+defaultClassAnnotation+"=true")
			}
		}
	}
	for i := range a.s.PVCs {
		pvc := &a.s.PVCs[i]
		name := ""
		if pvc.Spec.StorageClassName != nil {
			name = *pvc.Spec.StorageClassName
		} else if len(defaults) > 0 {
			name = defaults[0].Name
		}
		sc, ok := classes[name]
		if !ok || a.replicates(sc) {
			continue
		}
		sev := SeverityWarning
		if pvc.Labels[contract.LabelManagedBy] == contract.ManagedBy {
			sev = SeverityCritical
		}
		a.add(sev, CheckVolumeClass, "pvc/"+pvc.Namespace+"/"+pvc.Name,
			fmt.Sprintf("volume on class %s, which does not replicate", name),
			"its data lives on one node: the pod using it cannot move when that node fails, and the data is lost with the disk.",
			"Move the data to a claim on the replicated class (Longhorn): create a new claim, copy, switch the workload.")
	}
	a.longhorn()
}

func (a *analysis) longhorn() {
	lh := a.s.Longhorn
	if lh == nil {
		return
	}
	policy := lh.Settings["node-down-pod-deletion-policy"]
	if policy == "" || policy == "do-nothing" {
		if policy == "" {
			policy = "do-nothing (default)"
		}
		a.add(SeverityWarning, CheckLonghorn, "setting/node-down-pod-deletion-policy", "node-down pod deletion policy is "+policy,
			"when a node dies, pods with Longhorn volumes stay Terminating: StatefulSets never get a replacement and Deployments wait for a 6-minute force-detach (12-15 minutes to recover).",
			"Set defaultSettings.nodeDownPodDeletionPolicy: delete-both-statefulset-and-deployment-pod (the values from `tsys-ci platform render` do).")
	}
	for _, v := range lh.Volumes {
		if v.NumberOfReplicas < platform.DefaultReplicaCount {
			a.add(SeverityWarning, CheckLonghorn, "volume/"+v.Name, fmt.Sprintf("%d replica(s)", v.NumberOfReplicas),
				"one failed disk or node leaves the volume without redundancy (or without data with 1 replica).",
				"kubectl -n longhorn-system patch volumes.longhorn.io "+v.Name+" --type merge -p '{\"spec\":{\"numberOfReplicas\":3}}'")
		}
		switch v.Robustness {
		case "degraded":
			a.add(SeverityWarning, CheckLonghorn, "volume/"+v.Name, "volume is degraded",
				"a replica is missing: one more failure may lose the volume.", "Check Longhorn's UI for the failed replica and the node's disk; Longhorn rebuilds when a storage node is schedulable.")
		case "faulted":
			a.add(SeverityCritical, CheckLonghorn, "volume/"+v.Name, "volume is faulted",
				"no healthy replica: the volume cannot attach.", "See Longhorn's docs on salvaging a faulted volume; restore from backup if salvage fails.")
		}
	}
}
