package clustertest

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/prometheus"
)

// versionMetrics is the app's /metrics as its pods would write them, one
// series per color whose Deployment runs: every scrape counts 100 more
// requests, and a version whose image names "sour" answers half of them
// with errors. It passes every probe: only its metrics tell.
type versionMetrics struct {
	a        *app
	mu       sync.Mutex
	requests map[string]int
	errors   map[string]int
}

func (m *versionMetrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintln(w, "# TYPE shop_requests_total counter")
	var errLines []string
	for _, color := range []string{rollout.ColorBlue, rollout.ColorGreen} {
		d, err := m.a.cs.AppsV1().Deployments(m.a.ns).Get(r.Context(), rollout.DeploymentName(m.a.spec.Name, color), metav1.GetOptions{})
		if err != nil || d.Spec.Replicas == nil || *d.Spec.Replicas == 0 {
			continue
		}
		m.requests[color] += 100
		if strings.Contains(d.Spec.Template.Annotations[rollout.AnnotationImage], "sour") {
			m.errors[color] += 50
		}
		fmt.Fprintf(w, "shop_requests_total{color=%q} %d\n", color, m.requests[color])
		errLines = append(errLines, fmt.Sprintf("shop_errors_total{color=%q} %d", color, m.errors[color]))
	}
	fmt.Fprintln(w, "# TYPE shop_errors_total counter")
	fmt.Fprintln(w, strings.Join(errLines, "\n"))
}

// promApp is an app whose analysis asks a real Prometheus scraping its
// metrics every 250 ms for the share of errors of the judged color.
func promApp(t *testing.T, mod func(*rollout.AppSpec)) *app {
	a := newApp(t, mod)
	m := &versionMetrics{a: a, requests: map[string]int{}, errors: map[string]int{}}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	prom := prometheus.Start(t, prometheus.Job{Name: "shop", Targets: []string{strings.TrimPrefix(srv.URL, "http://")}, Interval: 250 * time.Millisecond})
	threshold := 0.05
	a.spec.Analysis.Prometheus = &rollout.PrometheusAnalysis{
		Address:   prom.URL,
		Query:     `sum(rate(shop_errors_total{color="{{ color }}"}[{{ window }}])) / sum(rate(shop_requests_total{color="{{ color }}"}[{{ window }}]))`,
		Threshold: &threshold,
	}
	if err := a.spec.Validate(); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestPrometheusJudgesBlueGreen: a version that passes its
// probes but whose own metrics show errors, judged by a real Prometheus
// during the blue/green watch, is rolled back; a healthy one stays.
func TestPrometheusJudgesBlueGreen(t *testing.T) {
	a := promApp(t, nil)
	mustPromote(t, a, "reg/shop@sha256:v1")
	first := a.serviceColor()

	// The watch lasts until the scale-down delay ends: long enough for
	// Prometheus to scrape the new color a few times (a deadline, not a
	// measurement: a breach ends it at once).
	a.spec.Strategy.BlueGreen.ScaleDownDelay = rollout.Duration{Duration: 60 * time.Second}
	_, err := a.promote("reg/shop@sha256:sour2")
	var failed *rollout.ProbeFailedError
	if !errors.As(err, &failed) || !strings.Contains(failed.Reason, "above analysis.prometheus.threshold 0.05") || !strings.Contains(failed.Reason, `color="`+otherColor(first)+`"`) {
		t.Fatalf("want a rollback naming the query and its threshold, got %v\n%s", err, a.out)
	}
	if c := a.serviceColor(); c != first {
		t.Fatalf("service on %s after the rollback, want %s", c, first)
	}
	if s := a.state(); s.Active == nil || s.Active.Image != "reg/shop@sha256:v1" {
		t.Fatalf("active after the rollback: %+v", s.Active)
	}

	// The next version lands on the same color seconds after the sour
	// one left it: {{ window }} keeps the sour pods' errors out of its
	// judgement (with a fixed range the query would still see them).
	a.spec.Strategy.BlueGreen.ScaleDownDelay = rollout.Duration{Duration: 3 * time.Second}
	a.out.Reset()
	mustPromote(t, a, "reg/shop@sha256:v3")
	if c := a.serviceColor(); c != otherColor(first) {
		t.Fatalf("v3 on %s, want it on the color the sour version left (%s)", c, otherColor(first))
	}
	if want := "judging " + otherColor(first) + " by Prometheus query"; !strings.Contains(a.out.String(), want) {
		t.Fatalf("the watch did not judge v3 by the query (%q):\n%s", want, a.out)
	}
	t.Logf("v3's promote:\n%s", a.out)
}

// TestPrometheusJudgesCanary: the same judge during a canary
// step's pause puts everything back on the stable version.
func TestPrometheusJudgesCanary(t *testing.T) {
	a := promApp(t, func(s *rollout.AppSpec) { s.Strategy.Type = rollout.StrategyCanary })
	mustPromote(t, a, "reg/shop@sha256:v1")
	stable := a.serviceColor()
	a.spec.Strategy.Canary.StepPause = rollout.Duration{Duration: 60 * time.Second}
	_, err := a.promote("reg/shop@sha256:sour2")
	var failed *rollout.ProbeFailedError
	if !errors.As(err, &failed) || !strings.Contains(failed.Reason, "Prometheus query") {
		t.Fatalf("want the canary rolled back by the query, got %v\n%s", err, a.out)
	}
	if c := a.serviceColor(); c != stable {
		t.Fatalf("service on %s after the rollback, want %s", c, stable)
	}
	if n := a.replicas(otherColor(stable)); n > 0 {
		t.Fatalf("the canary's color still has %d replicas", n)
	}
}

func otherColor(c string) string {
	if c == rollout.ColorBlue {
		return rollout.ColorGreen
	}
	return rollout.ColorBlue
}
