package edge

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/platform/edge/edgetest"
	"github.com/tsys-group/tsys-ci/test/testenv"
	corev1 "k8s.io/api/core/v1"
)

// getAs sends one GET for host through h, with the canary header when
// canary is set, and returns the answering app's name.
func getAs(t *testing.T, h *haproxyUnderTest, host string, canary bool) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{ServerName: host, InsecureSkipVerify: true}, // the test certificate is self-signed
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://"+h.HTTPSAddr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if canary {
		req.Header.Set(contract.CanaryHeader, contract.CanaryAlways)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s (canary %v): %d %q %v", host, canary, resp.StatusCode, body, err)
	}
	name, _, _ := strings.Cut(string(body), " ")
	return name
}

// TestTestersReachTheCandidate (issue 23 item 4): while promote names a
// candidate, a request with X-Tsys-Canary: always reaches it through the
// real HAProxy even at weight 0, and everyone else stays on the weights;
// once the candidate is gone the header changes nothing.
func TestTestersReachTheCandidate(t *testing.T) {
	haproxy := testenv.LookPath(t, "haproxy")
	opts := poolOptions(t)
	host := "shop.company.example"
	edgetest.WriteCert(t, CertPath(opts, host), host)
	blue, green := edgetest.StartApp(t, "127.0.0.2", "blue"), edgetest.StartApp(t, "127.0.0.2", "green")
	nodes := []corev1.Node{node("n1", "127.0.0.2")}
	cluster := func(candidate string) []corev1.Service {
		app := withVersions(lbService("shop", "web", `[{"port":"http","hosts":["`+host+`"]}]`, map[string]int32{"http": 80}, "127.0.0.9"), "blue", `{"blue":100,"green":0}`)
		if candidate != "" {
			app.Annotations[contract.AnnotationEdgeCandidate] = candidate
		}
		return []corev1.Service{app,
			colorService("shop", "web", "blue", map[string]int32{"http": blue.Port}),
			colorService("shop", "web", "green", map[string]int32{"http": green.Port})}
	}
	h := startHAProxy(t, haproxy, mustBuildCluster(t, opts, cluster("green"), nodes), opts)
	s := h.syncer(t, haproxy, opts)
	mustSync(t, s, mustBuildCluster(t, opts, cluster("green"), nodes), ActionNone)
	h.Reaches(t, host, "blue")
	for i := range 20 {
		if got := getAs(t, h, host, true); got != "green" {
			t.Fatalf("tester's request %d reached %s, want the candidate green at weight 0", i, got)
		}
		if got := getAs(t, h, host, false); got != "blue" {
			t.Fatalf("user's request %d reached %s, want blue (weights 100/0)", i, got)
		}
	}

	// The promote ended: no candidate, and the header is one like any other.
	mustSync(t, s, mustBuildCluster(t, opts, cluster(""), nodes), ActionReload)
	for i := range 20 {
		if got := getAs(t, h, host, true); got != "blue" {
			t.Fatalf("with no candidate, request %d with the header reached %s, want blue", i, got)
		}
	}

	// A candidate that is no color of the app is ignored (its Service is
	// being created): no rule, so the weights decide.
	if m := mustBuildCluster(t, opts, cluster("purple"), nodes); m.Backends[0].Candidate != "" {
		t.Fatalf("candidate %q from an unknown color", m.Backends[0].Candidate)
	}
}

// The watch syncs when promote names or drops a candidate, even with the
// weights in the same write, and never takes it for a weights-only change
// (those go to the runtime API; a candidate changes the configuration).
func TestCandidateChangeIsSynced(t *testing.T) {
	old := withVersions(lbService("shop", "web", `[{"port":"http","hosts":["shop.company.example"]}]`, map[string]int32{"http": 80}, "127.0.0.9"), "blue", `{"blue":100,"green":0}`)
	cand := old.DeepCopy()
	cand.Annotations[contract.AnnotationEdgeCandidate] = "green"
	both := cand.DeepCopy()
	both.Annotations[contract.AnnotationEdgeWeights] = `{"blue":95,"green":5}`
	for _, c := range []struct{ a, b *corev1.Service }{{&old, cand}, {cand, &old}, {&old, both}} {
		what, ok := Describe(c.a, c.b)
		if !ok || !strings.Contains(what, contract.AnnotationEdgeCandidate) {
			t.Errorf("Describe = %q %v; want the candidate change", what, ok)
		}
		if WeightsOnly(c.a, c.b) {
			t.Errorf("WeightsOnly(%q -> %q) = true; a candidate change needs a sync", c.a.Annotations[contract.AnnotationEdgeCandidate], c.b.Annotations[contract.AnnotationEdgeCandidate])
		}
	}
}
