package platform

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"
)

// effectiveValueChanges lists how the values a release runs with would
// change, chart defaults included: a value the chart defaults and
// platform.yaml now sets shows as `old default -> new`, not as added. If the
// effective values are the same (a default now set explicitly), it lists
// the difference of the values given.
func effectiveValueChanges(oldChart *chart.Chart, old map[string]any, newChart *chart.Chart, next map[string]any) []string {
	a, errA := chartutil.CoalesceValues(oldChart, old)
	b, errB := chartutil.CoalesceValues(newChart, next)
	if errA == nil && errB == nil {
		if c := valueChanges(a, b); len(c) > 0 {
			return c
		}
	}
	return valueChanges(old, next)
}

// valueChanges lists, one line per leaf, how the values of a release would
// change: `path: old -> new`, `path: added new`, `path: removed (was old)`.
// Lists are compared whole. Values are shown as JSON so strings and
// numbers stay apart.
func valueChanges(old, next map[string]any) []string {
	asMap := func(m map[string]any) any {
		if n, ok := jsonNormal(m).(map[string]any); ok {
			return n
		}
		return map[string]any{}
	}
	var out []string
	diffValues("", asMap(old), asMap(next), &out)
	return out
}

func diffValues(path string, a, b any, out *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := slices.Sorted(maps.Keys(am))
		for k := range bm {
			if _, ok := am[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range slices.Compact(keys) {
			diffValues(joinPath(path, k), am[k], bm[k], out)
		}
		return
	}
	if reflect.DeepEqual(a, b) {
		return
	}
	switch {
	case a == nil:
		*out = append(*out, fmt.Sprintf("%s: added %s", path, shortJSON(b)))
	case b == nil:
		*out = append(*out, fmt.Sprintf("%s: removed (was %s)", path, shortJSON(a)))
	default:
		*out = append(*out, fmt.Sprintf("%s: %s -> %s", path, shortJSON(a), shortJSON(b)))
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// shortJSON shows a value on one line, cut at 200 characters (an image
// reference by digest fits).
func shortJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 200 {
		return string(b[:197]) + "..."
	}
	return string(b)
}

// manifestChanges lists the objects a release's rendered manifests would
// add, remove or change, as "+ Kind/name", "- Kind/name", "~ Kind/name".
func manifestChanges(old, next string) []string {
	a, b := manifestObjects(old), manifestObjects(next)
	var out []string
	for _, key := range slices.Sorted(maps.Keys(b)) {
		before, ok := a[key]
		switch {
		case !ok:
			out = append(out, "+ "+key)
		case before != b[key]:
			out = append(out, "~ "+key)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(a)) {
		if _, ok := b[key]; !ok {
			out = append(out, "- "+key)
		}
	}
	return out
}

// manifestObjects splits a release manifest into its objects by Kind/name
// (namespace-qualified when the object names one).
func manifestObjects(manifest string) map[string]string {
	objs := map[string]string{}
	for _, doc := range releaseutil.SplitManifests(manifest) {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil || head.Kind == "" {
			head.Kind, head.Metadata.Name = "document", fmt.Sprintf("%.40q", strings.TrimSpace(doc))
		}
		key := head.Kind + "/" + head.Metadata.Name
		if head.Metadata.Namespace != "" {
			key = head.Kind + "/" + head.Metadata.Namespace + "/" + head.Metadata.Name
		}
		objs[key] = strings.TrimSpace(doc)
	}
	return objs
}
