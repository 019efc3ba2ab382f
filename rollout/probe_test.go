package rollout

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func probeSpec(mod func(*HTTPProbe)) HTTPProbe {
	p := HTTPProbe{Name: "home", Port: "http", Path: "/health", ExpectStatus: 200, Successes: 3,
		Interval: Duration{time.Second}, Timeout: Duration{30 * time.Second}, MaxLatency: Duration{500 * time.Millisecond}}
	if mod != nil {
		mod(&p)
	}
	return p
}

// server answers with the status and body answer(n) gives for the n-th
// request (from 1), and records the Host header of the last request.
func server(t *testing.T, answer func(n int64) (int, string)) (*httptest.Server, *atomic.Value) {
	var n atomic.Int64
	host := &atomic.Value{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host.Store(r.Host)
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		status, body := answer(n.Add(1))
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, host
}

func TestHTTPProbe(t *testing.T) {
	good := func(int64) (int, string) { return 200, "<title>Shop v2</title>" }
	cases := []struct {
		name     string
		answer   func(int64) (int, string)
		probe    func(*HTTPProbe)
		tick     time.Duration
		passed   bool
		attempts int
		reason   string
	}{
		{"passes after 3 in a row", good, nil, 10 * time.Millisecond, true, 3, ""},
		{"body matches", good, func(p *HTTPProbe) { p.BodyMatch = `Shop v\d` }, 10 * time.Millisecond, true, 3, ""},
		{"recovers after starting up", func(n int64) (int, string) {
			if n <= 2 {
				return 503, "starting"
			}
			return 200, "ok"
		}, nil, 10 * time.Millisecond, true, 5, ""},
		{"wrong status fails at timeout", func(int64) (int, string) { return 500, "boom" },
			nil, 10 * time.Millisecond, false, 0, "status 500, want 200"},
		{"body mismatch", good, func(p *HTTPProbe) { p.BodyMatch = "v3" }, 10 * time.Millisecond, false, 0, `body does not match "v3"`},
		{"too slow", good, nil, 600 * time.Millisecond, false, 0, "answer took 600ms, limit 500ms"},
		{"fails fast after failureThreshold bad answers in a row", func(int64) (int, string) { return 500, "boom" },
			func(p *HTTPProbe) { p.FailureThreshold = 3 }, 10 * time.Millisecond, false, 3, "3 bad answers in a row (failureThreshold 3, after 3 attempts): status 500, want 200"},
		{"recovers within failureThreshold", func(n int64) (int, string) {
			if n <= 2 {
				return 503, "starting"
			}
			return 200, "ok"
		}, func(p *HTTPProbe) { p.FailureThreshold = 3 }, 10 * time.Millisecond, true, 5, ""},
		{"flapping under failureThreshold runs out the timeout", func(n int64) (int, string) {
			if n%3 == 0 {
				return 502, "bad gateway"
			}
			return 200, "ok"
		}, func(p *HTTPProbe) { p.FailureThreshold = 2 }, 10 * time.Millisecond, false, 0, "no 3 good answers in a row within 30s"},
		{"flapping never passes", func(n int64) (int, string) {
			if n%3 == 0 {
				return 502, "bad gateway"
			}
			return 200, "ok"
		}, nil, 10 * time.Millisecond, false, 0, "no 3 good answers in a row within 30s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, _ := server(t, c.answer)
			res := RunHTTPProbe(context.Background(), srv.Client(), newStepClock(c.tick), srv.URL, probeSpec(c.probe))
			if res.Passed != c.passed {
				t.Fatalf("passed = %v, want %v (%+v)", res.Passed, c.passed, res)
			}
			if c.attempts > 0 && res.Attempts != c.attempts {
				t.Errorf("attempts = %d, want %d", res.Attempts, c.attempts)
			}
			if !strings.Contains(res.Reason, c.reason) {
				t.Errorf("reason %q does not say %q", res.Reason, c.reason)
			}
		})
	}
}

func TestHTTPProbeSendsHost(t *testing.T) {
	srv, host := server(t, func(int64) (int, string) { return 200, "" })
	res := RunHTTPProbe(context.Background(), srv.Client(), newStepClock(time.Millisecond), srv.URL, probeSpec(func(p *HTTPProbe) {
		p.Host, p.Successes = "shop.company.example", 1
	}))
	if !res.Passed || host.Load() != "shop.company.example" {
		t.Fatalf("probe %+v sent Host %v", res, host.Load())
	}
}

func TestHTTPProbeUnreachable(t *testing.T) {
	srv, _ := server(t, func(int64) (int, string) { return 200, "" })
	url := srv.URL
	srv.Close()
	res := RunHTTPProbe(context.Background(), http.DefaultClient, newStepClock(time.Millisecond), url, probeSpec(nil))
	if res.Passed || !strings.Contains(res.Reason, "GET "+url+"/health") {
		t.Fatalf("unreachable server: %+v", res)
	}
}

func TestHTTPProbeStopsOnCancel(t *testing.T) {
	srv, _ := server(t, func(int64) (int, string) { return 500, "" })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := RunHTTPProbe(ctx, srv.Client(), newStepClock(time.Millisecond), srv.URL, probeSpec(nil))
	if res.Passed || !strings.Contains(res.Reason, "context canceled") {
		t.Fatalf("cancelled probe: %+v", res)
	}
}
