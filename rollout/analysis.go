package rollout

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// ColorCounters are one color's counters at the edge at one moment,
// summed over the app's top-level backends (one per hosted port).
type ColorCounters struct {
	Requests, HTTP5xx, ConnErrors, RespErrors int64
	// ResponseTime is the largest of the backends' rtime.
	ResponseTime time.Duration
	// Weight is the color's weight as the edge shows it (its first
	// backend's; promote waits until every backend shows the weights it
	// wrote before a step counts).
	Weight int
}

// colorCounters picks the app's colors out of the stats rows: the servers
// named by color in the given top-level backends.
func colorCounters(rows []ServerStats, backends []string) map[string]ColorCounters {
	want := map[string]bool{}
	for _, b := range backends {
		want[b] = true
	}
	out := map[string]ColorCounters{}
	for _, r := range rows {
		if !want[r.Proxy] || (r.Server != ColorBlue && r.Server != ColorGreen) {
			continue
		}
		c, seen := out[r.Server]
		if !seen {
			c.Weight = r.Weight
		}
		c.Requests += r.Requests
		c.HTTP5xx += r.HTTP5xx
		c.ConnErrors += r.ConnErrors
		c.RespErrors += r.RespErrors
		c.ResponseTime = max(c.ResponseTime, r.ResponseTime)
		out[r.Server] = c
	}
	return out
}

// WindowStats is what one color did between two samples.
type WindowStats struct {
	Span                                      time.Duration
	Requests, HTTP5xx, ConnErrors, RespErrors int64
	// ResponseTime is HAProxy's rtime at the end of the span (an average
	// over the server's last 1024 requests, not only the span's).
	ResponseTime time.Duration
}

// Failed counts the span's requests that failed: answered 5xx or not
// answered at all, at most the requests.
func (w WindowStats) Failed() int64 {
	return min(w.HTTP5xx+w.ConnErrors+w.RespErrors, w.Requests)
}

// ErrorRate is the failed share of the span's requests, in percent.
func (w WindowStats) ErrorRate() float64 {
	if w.Requests == 0 {
		return 0
	}
	return 100 * float64(w.Failed()) / float64(w.Requests)
}

type sample struct {
	at time.Time
	c  map[string]ColorCounters
}

// Window keeps the edge samples of the last span: the counters are
// cumulative, so what happened in the span is the newest sample minus the
// oldest one still inside it. A counter that went down means HAProxy
// restarted its counts (a reload): the window starts again from there.
type Window struct {
	Span    time.Duration
	samples []sample
}

// Add records a sample taken at at.
func (w *Window) Add(at time.Time, c map[string]ColorCounters) {
	if n := len(w.samples); n > 0 && wentDown(w.samples[n-1].c, c) {
		w.samples = w.samples[:0]
	}
	w.samples = append(w.samples, sample{at: at, c: c})
	// Keep the newest sample at or before at-Span as the base, drop older.
	cut := 0
	for i := range w.samples {
		if !w.samples[i].at.After(at.Add(-w.Span)) {
			cut = i
		}
	}
	w.samples = w.samples[cut:]
}

func wentDown(prev, cur map[string]ColorCounters) bool {
	for color, p := range prev {
		c, ok := cur[color]
		if !ok {
			continue
		}
		if c.Requests < p.Requests || c.HTTP5xx < p.HTTP5xx || c.ConnErrors < p.ConnErrors || c.RespErrors < p.RespErrors {
			return true
		}
	}
	return false
}

// Latest is the newest sample's counters by color (nil before any).
func (w *Window) Latest() map[string]ColorCounters {
	if len(w.samples) == 0 {
		return nil
	}
	return w.samples[len(w.samples)-1].c
}

// Stats is what color did in the window so far.
func (w *Window) Stats(color string) WindowStats {
	if len(w.samples) < 2 {
		return WindowStats{}
	}
	first, last := w.samples[0], w.samples[len(w.samples)-1]
	a, b := first.c[color], last.c[color]
	return WindowStats{
		Span:         last.at.Sub(first.at),
		Requests:     b.Requests - a.Requests,
		HTTP5xx:      b.HTTP5xx - a.HTTP5xx,
		ConnErrors:   b.ConnErrors - a.ConnErrors,
		RespErrors:   b.RespErrors - a.RespErrors,
		ResponseTime: b.ResponseTime,
	}
}

// Judge says why what a version did breaches the analysis ("" when it
// does not, or when the window holds too few requests to say).
func (a Analysis) Judge(version string, w WindowStats) string {
	if w.Requests < int64(a.MinRequests) || w.Requests == 0 {
		return ""
	}
	span := w.Span.Round(time.Second)
	if rate := w.ErrorRate(); a.MaxErrorRate != nil && rate > a.MaxErrorRate.Value {
		return fmt.Sprintf("%s: %s of %d requests failed at the edge in the last %s (%d answered 5xx, %d connection errors, %d response errors); analysis.maxErrorRate is %s",
			version, percentOf(rate), w.Requests, span, w.HTTP5xx, w.ConnErrors, w.RespErrors, a.MaxErrorRate)
	}
	if w.ResponseTime > a.MaxResponseTime.Duration {
		return fmt.Sprintf("%s: average response time %s at the edge (HAProxy's rtime; %d requests in the last %s) is above analysis.maxResponseTime %s",
			version, w.ResponseTime, w.Requests, span, a.MaxResponseTime.Duration)
	}
	return ""
}

// Summary says what the window showed, for the end of a step.
func (a Analysis) Summary(version string, w WindowStats) string {
	span := w.Span.Round(time.Second)
	if w.Requests < int64(a.MinRequests) {
		return fmt.Sprintf("%s: %d requests at the edge in the last %s, fewer than analysis.minRequests %d: not judged", version, w.Requests, span, a.MinRequests)
	}
	return fmt.Sprintf("%s: %d requests at the edge in the last %s, %s failed, response time %s: within the analysis limits", version, w.Requests, span, percentOf(w.ErrorRate()), w.ResponseTime)
}

func percentOf(v float64) string {
	if v >= 10 || v == 0 {
		return strconv.Itoa(int(math.Round(v))) + "%"
	}
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) + "%"
}
