package doctor

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Longhorn's custom resources doctor reads.
var (
	longhornSettings = schema.GroupVersionResource{Group: "longhorn.io", Version: "v1beta2", Resource: "settings"}
	longhornVolumes  = schema.GroupVersionResource{Group: "longhorn.io", Version: "v1beta2", Resource: "volumes"}
)

// CollectSnapshot reads, with plain list calls, everything Analyze looks
// at. dyn may be nil; then Longhorn is not read.
func CollectSnapshot(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface) (*Snapshot, error) {
	s := &Snapshot{}
	all := metav1.ListOptions{}
	wrap := func(what string, err error) error {
		return fmt.Errorf("listing %s: %w (doctor needs cluster-wide read access)", what, err)
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, all)
	if err != nil {
		return nil, wrap("nodes", err)
	}
	s.Nodes = nodes.Items
	pods, err := cs.CoreV1().Pods("").List(ctx, all)
	if err != nil {
		return nil, wrap("pods", err)
	}
	s.Pods = pods.Items
	svcs, err := cs.CoreV1().Services("").List(ctx, all)
	if err != nil {
		return nil, wrap("services", err)
	}
	s.Services = svcs.Items
	pvcs, err := cs.CoreV1().PersistentVolumeClaims("").List(ctx, all)
	if err != nil {
		return nil, wrap("persistent volume claims", err)
	}
	s.PVCs = pvcs.Items
	deps, err := cs.AppsV1().Deployments("").List(ctx, all)
	if err != nil {
		return nil, wrap("deployments", err)
	}
	s.Deployments = deps.Items
	sts, err := cs.AppsV1().StatefulSets("").List(ctx, all)
	if err != nil {
		return nil, wrap("statefulsets", err)
	}
	s.StatefulSets = sts.Items
	dss, err := cs.AppsV1().DaemonSets("").List(ctx, all)
	if err != nil {
		return nil, wrap("daemonsets", err)
	}
	s.DaemonSets = dss.Items
	pdbs, err := cs.PolicyV1().PodDisruptionBudgets("").List(ctx, all)
	if err != nil {
		return nil, wrap("pod disruption budgets", err)
	}
	s.PDBs = pdbs.Items
	scs, err := cs.StorageV1().StorageClasses().List(ctx, all)
	if err != nil {
		return nil, wrap("storage classes", err)
	}
	s.StorageClasses = scs.Items
	if err := collectReleases(ctx, cs, s); err != nil {
		return nil, err
	}
	if dyn != nil {
		if err := collectLonghorn(ctx, dyn, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func collectLonghorn(ctx context.Context, dyn dynamic.Interface, s *Snapshot) error {
	settings, err := dyn.Resource(longhornSettings).Namespace("").List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return nil // Longhorn is not installed
	}
	if err != nil {
		return fmt.Errorf("listing Longhorn settings: %w", err)
	}
	for _, it := range settings.Items {
		if err := s.add(it.Object); err != nil {
			return err
		}
	}
	s.longhorn()
	vols, err := dyn.Resource(longhornVolumes).Namespace("").List(ctx, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("listing Longhorn volumes: %w", err)
	}
	if vols != nil {
		for _, it := range vols.Items {
			if err := s.add(it.Object); err != nil {
				return err
			}
		}
	}
	return nil
}
