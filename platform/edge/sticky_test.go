package edge

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/platform/edge/edgetest"
	"github.com/tsys-group/tsys-ci/test/testenv"
	corev1 "k8s.io/api/core/v1"
)

// stickyBrowser is a client with its own cookie jar, as one user's browser.
func stickyBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the test certificate is self-signed
	}}
}

func visit(t *testing.T, c *http.Client, h *haproxyUnderTest, host string) (app, setCookie string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://"+host+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Dial HAProxy whatever the host name, so the jar keys cookies by host.
	c.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, h.HTTPSAddr)
	}
	c.Transport.(*http.Transport).TLSClientConfig.ServerName = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %q %v", host, resp.StatusCode, b, err)
	}
	name, _, _ := strings.Cut(string(b), " ")
	return name, resp.Header.Get("Set-Cookie")
}

// TestStickyKeepsOneUserOnOneVersion (issue 23 item 4): with sticky on,
// each browser stays on the version that first answered it at 50/50
// weights, and moves (its cookie rewritten) the moment its version's
// weight goes to 0 through the runtime API; without sticky, no cookie.
func TestStickyKeepsOneUserOnOneVersion(t *testing.T) {
	haproxy := testenv.LookPath(t, "haproxy")
	opts := poolOptions(t)
	host, plain := "shop.company.example", "blog.company.example"
	edgetest.WriteCert(t, CertPath(opts, host), host)
	edgetest.WriteCert(t, CertPath(opts, plain), plain)
	blue, green := edgetest.StartApp(t, "127.0.0.2", "blue"), edgetest.StartApp(t, "127.0.0.2", "green")
	bBlue, bGreen := edgetest.StartApp(t, "127.0.0.2", "blog-blue"), edgetest.StartApp(t, "127.0.0.2", "blog-green")
	nodes := []corev1.Node{node("n1", "127.0.0.2")}
	cluster := func(weights string) []corev1.Service {
		return []corev1.Service{
			withVersions(lbService("shop", "web", `[{"port":"http","hosts":["`+host+`"],"sticky":true}]`, map[string]int32{"http": 80}, "127.0.0.9"), "blue", weights),
			colorService("shop", "web", "blue", map[string]int32{"http": blue.Port}),
			colorService("shop", "web", "green", map[string]int32{"http": green.Port}),
			withVersions(lbService("blog", "blog", `[{"port":"http","hosts":["`+plain+`"]}]`, map[string]int32{"http": 80}, "127.0.0.8"), "blue", weights),
			colorService("blog", "blog", "blue", map[string]int32{"http": bBlue.Port}),
			colorService("blog", "blog", "green", map[string]int32{"http": bGreen.Port}),
		}
	}
	h := startHAProxy(t, haproxy, mustBuildCluster(t, opts, cluster(`{"blue":50,"green":50}`), nodes), opts)
	s := h.syncer(t, haproxy, opts)
	h.Reaches(t, host, "blue")

	// Ten browsers at 50/50: each one's first answer decides, the next
	// ten visits all see that version.
	browsers := make([]*http.Client, 10)
	first := make([]string, len(browsers))
	seen := map[string]int{}
	for i := range browsers {
		browsers[i] = stickyBrowser(t)
		var cookie string
		first[i], cookie = visit(t, browsers[i], h, host)
		if want := StickyCookie + "=" + first[i] + ";"; !strings.HasPrefix(cookie, want) {
			t.Fatalf("browser %d's first answer (%s) set cookie %q, want %s...", i, first[i], cookie, want)
		}
		seen[first[i]]++
		for j := range 10 {
			if got, cookie := visit(t, browsers[i], h, host); got != first[i] || cookie != "" {
				t.Fatalf("browser %d, visit %d: %s (Set-Cookie %q), want %s again with no new cookie", i, j+2, got, cookie, first[i])
			}
		}
	}
	t.Logf("ten browsers at 50/50 stuck to their first version: %v", seen)
	if seen["blue"] == 0 || seen["green"] == 0 {
		t.Fatalf("all ten browsers started on one version (%v): the test shows no stickiness", seen)
	}

	// Green's weight to 0 (runtime API, no reload): its browsers move to
	// blue at once and get blue's cookie; blue's stay.
	mustSync(t, s, mustBuildCluster(t, opts, cluster(`{"blue":100,"green":0}`), nodes), ActionRuntime)
	for i, c := range browsers {
		got, cookie := visit(t, c, h, host)
		if got != "blue" {
			t.Errorf("browser %d (first on %s) after green's weight went to 0: %s", i, first[i], got)
		}
		if first[i] == "green" && !strings.HasPrefix(cookie, StickyCookie+"=blue;") {
			t.Errorf("browser %d moved from green without blue's cookie: %q", i, cookie)
		}
	}

	// Not sticky: no cookie, the weights alone.
	if _, cookie := visit(t, stickyBrowser(t), h, plain); cookie != "" {
		t.Errorf("a port without sticky set a cookie: %q", cookie)
	}
}
