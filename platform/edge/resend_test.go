package edge

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/platform/edge/edgetest"
	"github.com/tsys-group/tsys-ci/test/testenv"
	corev1 "k8s.io/api/core/v1"
)

// freezable is one node's NodePort: it answers until frozen, then takes
// requests and never answers them, as a node paused mid-request does.
type freezable struct {
	name   string
	frozen atomic.Bool
	mu     sync.Mutex
	got    map[string]int // requests received, by method and path
}

func (f *freezable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.got[r.Method+" "+r.URL.Path]++
	f.mu.Unlock()
	if f.frozen.Load() {
		<-r.Context().Done()
		return
	}
	fmt.Fprintf(w, "%s", f.name)
}

func (f *freezable) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[key]
}

// twoNodePorts starts one app on the same port of 127.0.0.2 and 127.0.0.3,
// as one NodePort on two nodes.
func twoNodePorts(t *testing.T) (port int32, a, b *freezable) {
	t.Helper()
	a, b = &freezable{name: "node-a", got: map[string]int{}}, &freezable{name: "node-b", got: map[string]int{}}
	for range 20 {
		la, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		p := la.Addr().(*net.TCPAddr).Port
		lb, err := net.Listen("tcp", "127.0.0.3:"+strconv.Itoa(p))
		if err != nil {
			la.Close() // taken on the other address: try another port
			continue
		}
		for _, s := range []struct {
			ln net.Listener
			h  http.Handler
		}{{la, a}, {lb, b}} {
			srv := &http.Server{Handler: s.h}
			go srv.Serve(s.ln)
			t.Cleanup(func() { srv.Close() })
		}
		return int32(p), a, b
	}
	t.Fatal("no port free on both 127.0.0.2 and 127.0.0.3 in 20 tries")
	return 0, nil, nil
}

// TestResendAfterRidesOverAFrozenNode (issue 25): with the port's
// resendAfter, an idempotent request that a frozen node took and never
// answered is sent again to the other node and answered after about that
// long; a POST is never sent twice. Without resendAfter the same GETs
// wait for the defaults' minute (the client below gives up after 10 s).
func TestResendAfterRidesOverAFrozenNode(t *testing.T) {
	haproxy := testenv.LookPath(t, "haproxy")
	opts := poolOptions(t)
	host := "shop.company.example"
	edgetest.WriteCert(t, CertPath(opts, host), host)
	port, a, b := twoNodePorts(t)
	nodes := []corev1.Node{node("n-a", "127.0.0.2"), node("n-b", "127.0.0.3")}
	cluster := func(resendAfterMs int) []corev1.Service {
		edge := `[{"port":"http","hosts":["` + host + `"]}]`
		if resendAfterMs > 0 {
			edge = fmt.Sprintf(`[{"port":"http","hosts":["%s"],"resendAfterMs":%d}]`, host, resendAfterMs)
		}
		return []corev1.Service{
			withVersions(lbService("shop", "web", edge, map[string]int32{"http": 80}, "127.0.0.9"), "blue", ""),
			colorService("shop", "web", "blue", map[string]int32{"http": port}),
		}
	}
	h := startHAProxy(t, haproxy, mustBuildCluster(t, opts, cluster(500), nodes), opts)
	pool := BackendName("shop", "web", "http") + ".blue"
	edgetest.WaitFor(t, 15*time.Second, "both nodes' checks to pass", func() error {
		st := h.stat(t)
		for _, n := range []string{"n-a", "n-b"} {
			if s := st[pool+"/"+n]["status"]; s != "UP" {
				return fmt.Errorf("%s is %s", n, s)
			}
		}
		return nil
	})

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{ServerName: host, InsecureSkipVerify: true}, // the test certificate is self-signed
		DisableKeepAlives: true,
	}}
	send := func(method, path string) (int, string, time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if method == http.MethodPost {
			// A POST the frozen node took is never resent and waits
			// the defaults' minute; 3 s are enough to see it wait.
			ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
		}
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, "https://"+h.HTTPSAddr+path, strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", time.Since(start), err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), time.Since(start), err
	}

	// node-b freezes. Requests go round-robin until its checks fail
	// (about 2 s): the GETs it takes must be answered by node-a.
	b.frozen.Store(true)
	const n = 8
	type result struct {
		method, path, body string
		code               int
		took               time.Duration
		err                error
	}
	results := make([]result, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		for j, m := range []string{http.MethodGet, http.MethodPost} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				path := fmt.Sprintf("/%s-%d", strings.ToLower(m), i)
				code, body, took, err := send(m, path)
				results[2*i+j] = result{m, path, body, code, took, err}
			}()
		}
	}
	wg.Wait()
	var slowest time.Duration
	gotB := 0
	for _, r := range results {
		t.Logf("%s %s: %d %q after %s (err %v)", r.method, r.path, r.code, r.body, r.took.Round(time.Millisecond), r.err)
		key := r.method + " " + r.path
		if r.method == http.MethodGet && b.count(key) > 0 {
			gotB++
		}
		if r.method == http.MethodGet {
			if r.err != nil || r.code != http.StatusOK || r.body != "node-a" {
				t.Errorf("%s: %d %q %v; want node-a's answer, the frozen node's share resent", key, r.code, r.body, r.err)
			}
			slowest = max(slowest, r.took)
			continue
		}
		// A POST reached one node once; one the frozen node took was
		// still waiting when the client gave up (not cut at resendAfter).
		if sent := a.count(key) + b.count(key); sent != 1 {
			t.Errorf("%s reached the nodes %d times; a POST is never sent twice", key, sent)
		}
		if b.count(key) == 1 && (r.err == nil || r.took < 2*time.Second) {
			t.Errorf("%s, taken by the frozen node: %d after %s (err %v); want it waiting until the client gives up", key, r.code, r.took, r.err)
		}
	}
	t.Logf("the frozen node took %d of the %d GETs; slowest GET %s", gotB, n, slowest.Round(time.Millisecond))
	if gotB == 0 {
		t.Fatalf("the frozen node took none of the GETs: nothing was resent, the test proves nothing")
	}
	if got := a.count("GET /"); got == 0 {
		t.Errorf("node-a saw no health check")
	}
}
