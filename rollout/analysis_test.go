package rollout

import (
	"strings"
	"testing"
	"time"
)

func counters(blueReq, green, green5xx int64) map[string]ColorCounters {
	return map[string]ColorCounters{
		ColorBlue:  {Requests: blueReq},
		ColorGreen: {Requests: green, HTTP5xx: green5xx, ResponseTime: 12 * time.Millisecond},
	}
}

func TestColorCountersFromRealCSV(t *testing.T) {
	c := colorCounters(readStats(t, "haproxy-2.6.12-stats-95-5.csv"), []string{"tsys-ci.shop.shop.http"})
	if c[ColorBlue].Requests != 38 || c[ColorGreen].Requests != 2 || c[ColorGreen].HTTP5xx != 2 || len(c) != 2 ||
		c[ColorBlue].Weight != 95 || c[ColorGreen].Weight != 5 {
		t.Fatalf("counters %+v", c)
	}
}

// TestWindow: the window is the newest sample minus the oldest one still
// in the span; a reload (counters down) starts it again.
func TestWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	w := Window{Span: 10 * time.Second}
	if s := w.Stats(ColorGreen); s.Requests != 0 {
		t.Fatalf("empty window: %+v", s)
	}
	for i := int64(0); i <= 20; i++ {
		// green: 10 requests a second; from second 15 on, all answer 5xx.
		fails := max(0, i-15) * 10
		w.Add(t0.Add(time.Duration(i)*time.Second), counters(100*i, 10*i, fails))
	}
	s := w.Stats(ColorGreen)
	if s.Span != 10*time.Second || s.Requests != 100 || s.HTTP5xx != 50 || s.ErrorRate() != 50 || s.ResponseTime != 12*time.Millisecond {
		t.Fatalf("window at 20 s: %+v (rate %v)", s, s.ErrorRate())
	}
	// HAProxy reloaded: counters start from zero.
	w.Add(t0.Add(21*time.Second), counters(5, 1, 0))
	if s := w.Stats(ColorGreen); s.Requests != 0 || s.Span != 0 {
		t.Fatalf("after a reload: %+v", s)
	}
	w.Add(t0.Add(22*time.Second), counters(10, 31, 0))
	if s := w.Stats(ColorGreen); s.Requests != 30 || s.Span != time.Second {
		t.Fatalf("a second after the reload: %+v", s)
	}
}

func TestJudge(t *testing.T) {
	a := Analysis{MaxErrorRate: &Percent{Value: 1}, MaxResponseTime: Duration{500 * time.Millisecond}, MinRequests: 20, Window: Duration{30 * time.Second}}
	cases := []struct {
		name string
		w    WindowStats
		want string
	}{
		{"healthy", WindowStats{Span: 10 * time.Second, Requests: 212, HTTP5xx: 2, ResponseTime: 20 * time.Millisecond}, ""},
		{"too few requests", WindowStats{Span: 10 * time.Second, Requests: 19, HTTP5xx: 19}, ""},
		{"5xx", WindowStats{Span: 10 * time.Second, Requests: 212, HTTP5xx: 78},
			"v4: 37% of 212 requests failed at the edge in the last 10s (78 answered 5xx, 0 connection errors, 0 response errors); analysis.maxErrorRate is 1%"},
		{"not answered", WindowStats{Span: 3 * time.Second, Requests: 40, ConnErrors: 1, RespErrors: 1}, "v4: 5% of 40 requests failed"},
		{"more errors than requests counted", WindowStats{Span: time.Second, Requests: 20, HTTP5xx: 20, ConnErrors: 5}, "v4: 100% of 20 requests"},
		{"slow", WindowStats{Span: 10 * time.Second, Requests: 100, ResponseTime: 812 * time.Millisecond},
			"v4: average response time 812ms at the edge (HAProxy's rtime; 100 requests in the last 10s) is above analysis.maxResponseTime 500ms"},
	}
	for _, c := range cases {
		got := a.Judge("v4", c.w)
		if c.want == "" && got != "" || c.want != "" && !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if s := a.Summary("v4", WindowStats{Span: 30 * time.Second, Requests: 3}); !strings.Contains(s, "fewer than analysis.minRequests 20: not judged") {
		t.Errorf("summary: %s", s)
	}
}
