package edge

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/platform/edge/edgetest"
	"github.com/tsys-group/tsys-ci/test/testenv"
	corev1 "k8s.io/api/core/v1"
)

// load sends requests for host through HAProxy from a few clients that keep
// their connections alive, as browsers do, until stopped or until max
// requests in all; it counts answers from each app and failures.
type load struct {
	ok, failed atomic.Int64
	// moved is set once the app has moved away from "blue"; stale counts
	// requests sent after that and still answered by blue.
	moved atomic.Bool
	stale atomic.Int64
	mu    sync.Mutex
	byApp map[string]int
	errs  []string
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startLoad(h *haproxyUnderTest, host string, clients int, max int64) *load {
	l := &load{byApp: map[string]int{}, stop: make(chan struct{})}
	for i := 0; i < clients; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: host, InsecureSkipVerify: true}} // self-signed test certificates
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for l.ok.Load()+l.failed.Load() < max {
				select {
				case <-l.stop:
					return
				default:
				}
				l.one(c, h, host)
			}
		}()
	}
	return l
}

func (l *load) one(c *http.Client, h *haproxyUnderTest, host string) {
	sentAfterMove := l.moved.Load()
	req, _ := http.NewRequest(http.MethodGet, "https://"+h.HTTPSAddr+"/", nil)
	req.Host = host
	resp, err := c.Do(req)
	if err == nil {
		var body []byte
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		if err == nil {
			l.ok.Add(1)
			app := strings.Fields(string(body))[0]
			if sentAfterMove && app == "blue" {
				l.stale.Add(1)
			}
			l.mu.Lock()
			l.byApp[app]++
			l.mu.Unlock()
			return
		}
	}
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, err.Error())
	}
	l.mu.Unlock()
}

// waitApp waits until the load has had n more answers from app.
func (l *load) waitApp(t *testing.T, app string, n int) {
	t.Helper()
	l.mu.Lock()
	target := l.byApp[app] + n
	l.mu.Unlock()
	edgetest.WaitFor(t, 20*time.Second, fmt.Sprintf("%d answers from %s under load", n, app), func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.byApp[app] < target {
			return fmt.Errorf("%d of %d", l.byApp[app], target)
		}
		return nil
	})
}

// TestNoFailedRequestsWhileTheEdgeChanges keeps clients sending requests
// through a real HAProxy while the app moves to another address (runtime
// API) and while another app is added (graceful reload): no request fails,
// and no request sent after the move reaches the old address, although the
// clients keep their connections to HAProxy open.
func TestNoFailedRequestsWhileTheEdgeChanges(t *testing.T) {
	haproxy := testenv.LookPath(t, "haproxy")
	opts := DefaultOptions()
	opts.CertDir = t.TempDir()
	edgetest.WriteCert(t, CertPath(opts, "shop.company.example"), "shop.company.example")
	blue, green := edgetest.StartApp(t, "127.0.0.2", "blue"), edgetest.StartApp(t, "127.0.0.3", "green")
	shopAt := func(a *edgetest.App) corev1.Service {
		return lbService("shop", "web", `[{"port":"http","hosts":["shop.company.example"]}]`, map[string]int32{"http": a.Port}, a.IP)
	}
	m := mustBuild(t, opts, shopAt(blue))
	h := startHAProxy(t, haproxy, m, opts)
	s := h.syncer(t, haproxy, opts)
	h.Reaches(t, "shop.company.example", "blue")

	start := time.Now()
	l := startLoad(h, "shop.company.example", 4, 200000)
	defer func() { close(l.stop); l.wg.Wait() }()
	l.waitApp(t, "blue", 200)

	t0 := time.Now()
	mustSync(t, s, mustBuild(t, opts, shopAt(green)), ActionRuntime)
	runtimeSync := time.Since(t0)
	l.moved.Store(true)
	l.waitApp(t, "green", 200)

	blog := edgetest.StartApp(t, "127.0.0.4", "blog")
	t0 = time.Now()
	mustSync(t, s, mustBuild(t, opts, shopAt(green),
		lbService("blog", "blog", `[{"port":"http","hosts":["blog.company.example"]}]`, map[string]int32{"http": blog.Port}, blog.IP)), ActionReload)
	reloadSync := time.Since(t0)
	l.waitApp(t, "green", 200)

	close(l.stop)
	l.wg.Wait()
	l.stop = make(chan struct{})
	elapsed := time.Since(start)
	t.Logf("load: %d requests answered (%v), %d failed, in %s (%.0f req/s, 4 keep-alive clients); sync via runtime API took %s, sync via validated reload took %s",
		l.ok.Load(), l.byApp, l.failed.Load(), elapsed.Round(time.Millisecond), float64(l.ok.Load())/elapsed.Seconds(),
		runtimeSync.Round(time.Microsecond), reloadSync.Round(time.Millisecond))
	if l.stale.Load() != 0 {
		t.Errorf("%d requests sent after the runtime address change still reached the old address", l.stale.Load())
	}
	if l.failed.Load() != 0 {
		t.Fatalf("%d requests failed while the edge changed; first errors: %q", l.failed.Load(), l.errs)
	}
}
