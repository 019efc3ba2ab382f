package rollout

import (
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/platform/edge"
)

func TestEdgeWeights(t *testing.T) {
	w := EdgeWeights{ColorGreen: 5, ColorBlue: 95}
	if got := w.String(); got != `{"blue":95,"green":5}` {
		t.Errorf("String() = %s", got)
	}
	if got := w.Describe(); got != "blue 95%, green 5%" {
		t.Errorf("Describe() = %s", got)
	}
	if err := w.Validate(); err != nil {
		t.Error(err)
	}
	for _, bad := range []struct {
		w    EdgeWeights
		want string
	}{
		{EdgeWeights{ColorBlue: 90, ColorGreen: 5}, "sum 95, want 100"},
		{EdgeWeights{ColorBlue: 110, ColorGreen: -10}, "want 0-100"},
		{EdgeWeights{"red": 100}, `color "red" is not blue or green`},
		{EdgeWeights{}, "sum 0"},
	} {
		if err := bad.w.Validate(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: error %v, want %q", bad.w, err, bad.want)
		}
	}
}

// TestEdgeBackendName: promote reads the edge's stats under the name the
// edge gives its top-level backend.
func TestEdgeBackendName(t *testing.T) {
	if got, want := edgeBackendName("shop", "shop", "http"), edge.BackendName("shop", "shop", "http"); got != want {
		t.Fatalf("rollout reads backend %q, the edge writes %q", got, want)
	}
}

func TestPlanEdgeCanary(t *testing.T) {
	plan, err := PlanEdgeCanary(2, []int{1, 5, 25, 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range plan {
		if !s.AtEdge || s.Note != "" || s.CanaryPods != 2 {
			t.Errorf("step %+v: want exact at the edge, 2 new pods", s)
		}
		got = append(got, s.WeightString())
	}
	if strings.Join(got, " ") != "1% 5% 25% 100%" || plan[2].StablePods != 2 || plan[3].StablePods != 0 {
		t.Fatalf("plan %+v", plan)
	}
	if _, err := PlanEdgeCanary(2, []int{10, 50}); err == nil || !strings.Contains(err.Error(), "do not end at 100%") {
		t.Fatalf("steps without 100: %v", err)
	}
}

func TestPoolEdgeValidate(t *testing.T) {
	base := Pool{Addresses: []string{"10.0.0.240"}, Ports: PortRange{Min: 30000, Max: 30010}}
	for _, c := range []struct {
		url, want string
	}{
		{"http://10.0.0.2:8404/stats;csv", ""},
		{"https://edge.company.example/stats;csv", ""},
		{"10.0.0.2:8404", "pool edge.statsURL: \"10.0.0.2:8404\" is not an http(s) URL"},
		{"ftp://edge/stats", "is not an http(s) URL"},
		{"http://admin:secret@edge:8404/stats;csv", "holds credentials; set TSYS_CI_EDGE_STATS_USER"},
	} {
		p := base
		p.Edge = &EdgeConfig{StatsURL: c.url}
		err := p.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.url, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}
