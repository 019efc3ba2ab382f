//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/prometheus"
)

// meteredNS holds the hello app (moreApp, as appURL expects) of the
// Prometheus test.
const meteredNS = "e2e-prometheus"

// meteredErrorShare is analysis.prometheus' query: the share of the judged
// color's answers of / that were 500, from the hello app's own counter. A
// version that never answered 500 has no such series (client_golang
// exports a label value once used): "or vector(0)" makes its share 0
// rather than no data, which would leave a good version unjudged.
const meteredErrorShare = `(sum(rate(hello_requests_total{namespace="{{ namespace }}",color="{{ color }}",code="500"}[{{ window }}])) or vector(0)) / sum(rate(hello_requests_total{namespace="{{ namespace }}",color="{{ color }}"}[{{ window }}]))`

// meteredSpec is the hello app with no host at the edge (its clients reach
// its MetalLB address, which HAProxy never sees): readiness and probes on
// /healthz, so a version that fails its users on / passes both; judged
// during blue/green's scale-down delay by a Prometheus query alone.
func meteredSpec(promURL string) string {
	return fmt.Sprintf(`name: %s
namespace: %s
replicas: 2
ports:
  - name: http
    containerPort: 8080
    protocol: http
    expose: true
health:
  readiness: {http: /healthz, port: http, period: 1s}
resources:
  requests: {cpu: 10m, memory: 16Mi}
  limits: {memory: 64Mi}
shutdown:
  drain: 5s
  gracePeriod: 10s
strategy:
  type: blueGreen
  blueGreen: {scaleDownDelay: 30s}
probes:
  - name: health
    port: http
    path: /healthz
    expectStatus: 200
    successes: 3
    interval: 1s
    timeout: 20s
analysis:
  window: 10s
  prometheus:
    address: %s
    query: '%s'
    threshold: 0.05
`, moreApp, meteredNS, promURL, meteredErrorShare)
}

// TestPromoteJudgedByPrometheusInTheLab (issue 23, item 3): a real
// Prometheus (Debian's) on the host scrapes the lab app's pods through the
// API server's pod proxy, with the pods' color label kept, as a company's
// Prometheus scrapes its apps (labScrapeConfig says how it finds them).
//
//  1. v1, then v2, both good, by blue/green under load: v2 is judged by the
//     query during the scale-down delay and stays;
//  2. v3 passes its probes and then answers 500 on / (HELLO_FAIL_AFTER):
//     the query crosses its threshold after the switch and promote rolls
//     back to v2 on its own (exit 3, Warning Event AnalysisFailed). The
//     failed requests users saw are counted, not asserted: the version
//     fails them until the query sees it.
func TestPromoteJudgedByPrometheusInTheLab(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := client(t)
	v1, v2 := helloImage(t, "pv1"), helloImage(t, "pv2")
	v3 := helloImage(t, "pv3", "HELLO_FAIL_AFTER=15s")
	prom := prometheus.StartConfig(t, labScrapeConfig(t, c, meteredNS, moreApp))
	dir := specNamespace(ctx, t, c, meteredNS, meteredSpec(prom.URL))

	if code, out := promoteNamed(t, dir, moreApp, "--image", v1); code != 0 {
		t.Fatalf("promote v1: exit %d\n%s", code, out)
	}
	url := appURL(ctx, t, c, meteredNS)
	firstAnswerAfter(ctx, t, url, time.Now())

	// --- 1. a good version judged by Prometheus ---
	l := startAppLoad(t, url)
	start := time.Now()
	code, out := promoteNamed(t, dir, moreApp, "--image", v2)
	took := time.Since(start)
	total, answers, failures := l.finish(t)
	report(t, "v1 -> v2 judged by Prometheus", took, total, answers, failures)
	logPrometheusLines(t, out)
	if code != 0 {
		t.Fatalf("promote v2: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "within analysis.prometheus.threshold") {
		t.Errorf("promote v2 does not say the Prometheus query judged it within the threshold:\n%s", out)
	}
	if n := failedCount(failures); n != 0 {
		t.Errorf("%d requests failed while v2 was promoted", n)
	}

	// --- 2. a version that fails its users after the switch ---
	l = startAppLoad(t, url)
	start = time.Now()
	code, out = promoteNamed(t, dir, moreApp, "--image", v3)
	took = time.Since(start)
	total, answers, failures = l.finish(t)
	logLoad(t, "v2 -> v3 (fails its users 15 s after it starts), judged by Prometheus", total, answers, failures)
	logPrometheusLines(t, out)
	first, last := firstLastFailure(l)
	t.Logf("promote v3 took %s, exit %d; users' failed requests: %d, from %s to %s (%s)", took.Round(100*time.Millisecond), code,
		failedCount(failures), first.UTC().Format("15:04:05.000"), last.UTC().Format("15:04:05.000"), last.Sub(first).Round(10*time.Millisecond))
	if code != 3 {
		t.Fatalf("promote v3: exit %d, want 3 (rolled back by the Prometheus query)\n%s", code, out)
	}
	if !strings.Contains(out, "above analysis.prometheus.threshold") {
		t.Errorf("promote v3's output does not name the Prometheus query as the reason:\n%s", out)
	}
	if answers["pv3"] == 0 {
		t.Errorf("v3 never answered the load (%v): the query had nothing to judge", answers)
	}
	ev := waitEvent(ctx, t, meteredNS, moreApp, rollout.EventAnalysisFailed)
	t.Logf("Event on %s/%s: %s %s: %s", meteredNS, moreApp, ev.Type, ev.Reason, ev.Message)
	if got := sample(t, url, 20); got["pv2"] != 20 {
		t.Errorf("after the rollback 20 requests got %v, want pv2 alone", got)
	}
}

// labScrapeConfig is prometheus.yml for the app's pods in ns, each pod's
// :8080/metrics scraped every second through the API server's pod proxy
// (the host has no route to pod addresses), with the pod's color and
// namespace as labels; the lab's admin client certificate authenticates.
// Debian's Prometheus 2.42 is built without Kubernetes service discovery,
// so the targets come from Prometheus' HTTP service discovery: a loopback
// endpoint of the test that lists the app's running pods from the API
// server on every refresh (each second), as a discovery sidecar would.
func labScrapeConfig(t *testing.T, c kubernetes.Interface, ns, app string) string {
	t.Helper()
	cfg, err := theLab.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	api, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatalf("the lab's API server address %q: %v", cfg.Host, err)
	}
	dir := t.TempDir()
	files := map[string][]byte{"ca.crt": cfg.CAData, "client.crt": cfg.CertData, "client.key": cfg.KeyData}
	for name, data := range files {
		if len(data) == 0 {
			t.Fatalf("the lab's kubeconfig %s has no %s inline; the scrape config needs it", theLab.Kubeconfig(), name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pods, err := c.CoreV1().Pods(ns).List(r.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + app})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		groups := []map[string]any{}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
				continue
			}
			groups = append(groups, map[string]any{"targets": []string{api.Host}, "labels": map[string]string{
				"__metrics_path__": fmt.Sprintf("/api/v1/namespaces/%s/pods/%s:8080/proxy/metrics", ns, p.Name),
				"namespace":        ns, "pod": p.Name, "color": p.Labels[contract.LabelColor],
			}})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(groups)
	}))
	t.Cleanup(sd.Close)
	return fmt.Sprintf(`scrape_configs:
  - job_name: lab-pods
    scrape_interval: 1s
    scrape_timeout: 1s
    scheme: https
    tls_config: {ca_file: %q, cert_file: %q, key_file: %q}
    http_sd_configs:
      - url: %q
        refresh_interval: 1s
`, filepath.Join(dir, "ca.crt"), filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"), sd.URL)
}

// logPrometheusLines logs promote's lines about the Prometheus analysis.
func logPrometheusLines(t *testing.T, out string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "Prometheus") || strings.Contains(line, "roll") {
			t.Logf("  promote: %s", strings.TrimSpace(line))
		}
	}
}
