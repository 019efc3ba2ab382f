package rollout

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func TestExpandQuery(t *testing.T) {
	q := `sum(rate(http_errors_total{namespace="{{namespace}}",app="{{ app }}",color="{{ color }}"}[{{ window }}]))`
	got := expandQuery(q, queryVars{namespace: "shop", app: "web", color: "green", window: 27*time.Second + 900*time.Millisecond})
	want := `sum(rate(http_errors_total{namespace="shop",app="web",color="green"}[27s]))`
	if got != want {
		t.Fatalf("expanded\n %s\nwant\n %s", got, want)
	}
	if bad := unknownPlaceholders(q + "{{ pod }}{{image}}"); strings.Join(bad, " ") != "{{ pod }} {{image}}" {
		t.Fatalf("unknown placeholders %v", bad)
	}
}

func TestWorstOfAnAnswer(t *testing.T) {
	vec := model.Vector{{Value: 0.2}, {Value: model.SampleValue(math.NaN())}, {Value: 0.7}, {Value: 0.1}}
	cases := []struct {
		name  string
		v     model.Value
		value float64
		found bool
		err   string
	}{
		{"vector: the largest series", vec, 0.7, true, ""},
		{"empty vector: no data", model.Vector{}, 0, false, ""},
		{"NaN only (0/0): no data", model.Vector{{Value: model.SampleValue(math.NaN())}}, 0, false, ""},
		{"scalar", &model.Scalar{Value: 3}, 3, true, ""},
		{"range vector refused", model.Matrix{}, 0, false, "write an instant query"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			value, found, err := worst(c.v)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || value != c.value || found != c.found {
				t.Fatalf("worst = %v, %v, %v; want %v, %v", value, found, err, c.value, c.found)
			}
		})
	}
}

// TestExamplePrometheusAnalysisParses: the commented analysis.prometheus
// block of templates/app/tsys-ci.yaml, uncommented, is a valid spec.
func TestExamplePrometheusAnalysisParses(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "templates", "app", "tsys-ci.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "  # prometheus:"):
			in = true
		case in && !strings.HasPrefix(l, "  #   "):
			in = false
		}
		if in {
			l = strings.Replace(l, "# ", "", 1)
		}
		lines = append(lines, l)
	}
	spec, err := ParseSpec([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	p := spec.Analysis.Prometheus
	if p == nil || p.Address != "http://prometheus.monitoring:9090" || *p.Threshold != 0.01 || !strings.Contains(p.Query, "{{ window }}") {
		t.Fatalf("the example's analysis.prometheus decoded as %+v", p)
	}
}
