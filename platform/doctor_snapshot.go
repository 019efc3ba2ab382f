package platform

import (
	"bytes"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// ParseSnapshot reads objects written by `kubectl get -o yaml` (a List, or
// several documents separated by ---) into a Snapshot, so doctor can
// analyse a cluster it cannot reach. Kinds doctor does not read are skipped.
func ParseSnapshot(data []byte) (*Snapshot, error) {
	s := &Snapshot{}
	for i, doc := range splitYAML(data) {
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if obj == nil {
			continue
		}
		if err := s.add(obj); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
	}
	return s, nil
}

func splitYAML(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), data...), []byte("\n---")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

// add adds one object (or every item of a List) given as unstructured JSON.
func (s *Snapshot) add(obj map[string]any) error {
	kind, _ := obj["kind"].(string)
	apiVersion, _ := obj["apiVersion"].(string)
	group, _, _ := strings.Cut(apiVersion, "/")
	if !strings.Contains(apiVersion, "/") {
		group = ""
	}
	name := ""
	if md, ok := obj["metadata"].(map[string]any); ok {
		name, _ = md["name"].(string)
	}
	into := func(v any) error {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, v); err != nil {
			return fmt.Errorf("%s %q: %w", kind, name, err)
		}
		return nil
	}
	switch {
	case kind == "List" || strings.HasSuffix(kind, "List"):
		items, _ := obj["items"].([]any)
		for _, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: an item is not an object", kind)
			}
			if err := s.add(m); err != nil {
				return err
			}
		}
	case group == "" && kind == "Node":
		var v corev1.Node
		err := into(&v)
		s.Nodes = append(s.Nodes, v)
		return err
	case group == "" && kind == "Pod":
		var v corev1.Pod
		err := into(&v)
		s.Pods = append(s.Pods, v)
		return err
	case group == "" && kind == "Service":
		var v corev1.Service
		err := into(&v)
		s.Services = append(s.Services, v)
		return err
	case group == "" && kind == "PersistentVolumeClaim":
		var v corev1.PersistentVolumeClaim
		err := into(&v)
		s.PVCs = append(s.PVCs, v)
		return err
	case group == "apps" && kind == "Deployment":
		var v appsv1.Deployment
		err := into(&v)
		s.Deployments = append(s.Deployments, v)
		return err
	case group == "apps" && kind == "StatefulSet":
		var v appsv1.StatefulSet
		err := into(&v)
		s.StatefulSets = append(s.StatefulSets, v)
		return err
	case group == "apps" && kind == "DaemonSet":
		var v appsv1.DaemonSet
		err := into(&v)
		s.DaemonSets = append(s.DaemonSets, v)
		return err
	case group == "policy" && kind == "PodDisruptionBudget":
		var v policyv1.PodDisruptionBudget
		err := into(&v)
		s.PDBs = append(s.PDBs, v)
		return err
	case group == "storage.k8s.io" && kind == "StorageClass":
		var v storagev1.StorageClass
		err := into(&v)
		s.StorageClasses = append(s.StorageClasses, v)
		return err
	case group == "longhorn.io" && kind == "Setting":
		s.longhorn().Settings[name] = fmt.Sprint(obj["value"])
	case group == "longhorn.io" && kind == "Volume":
		s.longhorn().Volumes = append(s.longhorn().Volumes, longhornVolume(name, obj))
	}
	return nil
}

func (s *Snapshot) longhorn() *LonghornState {
	if s.Longhorn == nil {
		s.Longhorn = &LonghornState{Settings: map[string]string{}}
	}
	return s.Longhorn
}

func longhornVolume(name string, obj map[string]any) LonghornVolume {
	v := LonghornVolume{Name: name}
	if spec, ok := obj["spec"].(map[string]any); ok {
		switch n := spec["numberOfReplicas"].(type) {
		case int64:
			v.NumberOfReplicas = int(n)
		case float64:
			v.NumberOfReplicas = int(n)
		}
	}
	if st, ok := obj["status"].(map[string]any); ok {
		v.Robustness, _ = st["robustness"].(string)
	}
	return v
}
