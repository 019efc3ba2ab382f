package doctor

import (
	"strings"
	"testing"
)

// Issue 26: doctor --rendered judges the gateway's HelmChartConfig: render's
// own passes; one replica is critical; no budget or no spread, warnings.
func TestRenderedGateway(t *testing.T) {
	const object = "helmchartconfig/kube-system/traefik"
	spec := examplePlatform(t)
	if got := analyzeRendered(t, spec, nil); hasObject(got, object) {
		t.Fatalf("render's gateway flagged: %v", keys(got))
	}
	cases := []struct {
		name     string
		edit     func()
		sev      Severity
		problem  string
		fragment string
	}{
		{"one replica", func() { spec.Gateway.Replicas = 1 }, SeverityCritical, "gateway (Traefik): 1 replica", "gateway.replicas"},
		{"no budget", func() {
			spec.Gateway.Values = map[string]any{"podDisruptionBudget": map[string]any{"enabled": false}}
		}, SeverityWarning, "no PodDisruptionBudget", "podDisruptionBudget"},
		{"no spread", func() {
			spec.Gateway.Values = map[string]any{"topologySpreadConstraints": []any{}}
		}, SeverityWarning, "nothing keeping them on different nodes", "anti-affinity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec = examplePlatform(t)
			tc.edit()
			got := analyzeRendered(t, spec, nil)
			for _, f := range got {
				if f.Object == object && f.Severity == tc.sev && strings.Contains(f.Problem, tc.problem) && strings.Contains(f.Fix, tc.fragment) {
					return
				}
			}
			t.Fatalf("no %s finding %q on %s in:\n%s", tc.sev, tc.problem, object, strings.Join(keys(got), "\n"))
		})
	}
	// Without a gateway, k3s's Traefik keeps render's cluster-services
	// HelmChartConfig (3 replicas, a budget): nothing to flag either.
	spec = examplePlatform(t)
	spec.Gateway = nil
	if got := analyzeRendered(t, spec, nil); hasObject(got, object) {
		t.Fatalf("cluster-services' Traefik flagged: %v", keys(got))
	}
}

func hasObject(fs []Finding, object string) bool {
	for _, f := range fs {
		if f.Object == object {
			return true
		}
	}
	return false
}
