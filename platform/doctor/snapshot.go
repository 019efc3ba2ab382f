package doctor

import (
	"bytes"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
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
		return decodeInto(into, &s.Nodes)
	case group == "" && kind == "Pod":
		return decodeInto(into, &s.Pods)
	case group == "" && kind == "Service":
		return decodeInto(into, &s.Services)
	case group == "" && kind == "Secret":
		var sec corev1.Secret
		if err := into(&sec); err != nil {
			return err
		}
		if sec.Type == helmReleaseType {
			return s.addReleaseSecret(&sec)
		}
	case group == "" && kind == "PersistentVolumeClaim":
		return decodeInto(into, &s.PVCs)
	case group == "apps" && kind == "Deployment":
		return decodeInto(into, &s.Deployments)
	case group == "apps" && kind == "StatefulSet":
		return decodeInto(into, &s.StatefulSets)
	case group == "apps" && kind == "DaemonSet":
		return decodeInto(into, &s.DaemonSets)
	case group == "policy" && kind == "PodDisruptionBudget":
		return decodeInto(into, &s.PDBs)
	case group == "storage.k8s.io" && kind == "StorageClass":
		return decodeInto(into, &s.StorageClasses)
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

// decodeInto converts the object into a T and appends it to list; a list
// of each kind the snapshot keeps, one function for all of them.
func decodeInto[T any](into func(any) error, list *[]T) error {
	var v T
	if err := into(&v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}
