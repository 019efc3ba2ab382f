package rollout

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// maxProbeBody bounds how much of an answer a probe reads for bodyMatch.
const maxProbeBody = 1 << 20

// ProbeResult is the outcome of one HTTP probe: how many answers it saw and,
// when it failed, the last reason.
type ProbeResult struct {
	Probe     string `json:"probe"`
	URL       string `json:"url"`
	Passed    bool   `json:"passed"`
	Attempts  int    `json:"attempts"`
	Successes int    `json:"successes"`
	// Failures counts the bad answers in a row at the end.
	Failures int           `json:"failures,omitempty"`
	Latency  time.Duration `json:"latency"`
	Reason   string        `json:"reason,omitempty"`
}

// RunHTTPProbe asks baseURL+p.Path every p.Interval until p.Successes
// answers in a row are good. It fails as soon as p.FailureThreshold answers
// in a row are bad, or when p.Timeout passes, with the last bad answer's
// reason. A bad answer resets the count of good ones: a version that
// answers well only some of the time does not pass.
func RunHTTPProbe(ctx context.Context, client *http.Client, clock Clock, baseURL string, p HTTPProbe) ProbeResult {
	res := ProbeResult{Probe: p.Name, URL: strings.TrimSuffix(baseURL, "/") + p.Path}
	var body *regexp.Regexp
	if p.BodyMatch != "" {
		var err error
		if body, err = regexp.Compile(p.BodyMatch); err != nil {
			res.Reason = fmt.Sprintf("bodyMatch %q is not a regular expression: %v", p.BodyMatch, err)
			return res
		}
	}
	deadline := clock.Now().Add(p.Timeout.Duration)
	for {
		res.Attempts++
		latency, err := probeOnce(ctx, client, clock, res.URL, p, body)
		res.Latency = latency
		if err == nil {
			res.Successes++
			res.Failures = 0
			if res.Successes >= p.Successes {
				res.Passed, res.Reason = true, ""
				return res
			}
		} else {
			res.Successes = 0
			res.Failures++
			res.Reason = err.Error()
			if p.FailureThreshold > 0 && res.Failures >= p.FailureThreshold {
				res.Reason = fmt.Sprintf("%d bad answers in a row (failureThreshold %d, after %d attempts): %s", res.Failures, p.FailureThreshold, res.Attempts, res.Reason)
				return res
			}
		}
		if !clock.Now().Before(deadline) {
			res.Reason = fmt.Sprintf("no %d good answers in a row within %s (%d attempts): %s", p.Successes, p.Timeout.Duration, res.Attempts, res.Reason)
			return res
		}
		select {
		case <-ctx.Done():
			res.Reason = fmt.Sprintf("stopped after %d attempts: %v; last: %s", res.Attempts, ctx.Err(), res.Reason)
			return res
		case <-clock.After(p.Interval.Duration):
		}
	}
}

// probeOnce makes one request and says what was wrong with the answer.
func probeOnce(ctx context.Context, client *http.Client, clock Clock, url string, p HTTPProbe, body *regexp.Regexp) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, p.MaxLatency.Duration+time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("building request: %w", err)
	}
	if p.Host != "" {
		req.Host = p.Host
	}
	start := clock.Now()
	resp, err := client.Do(req)
	if err != nil {
		return clock.Now().Sub(start), fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
	latency := clock.Now().Sub(start)
	if err != nil {
		return latency, fmt.Errorf("GET %s: reading the answer: %w", url, err)
	}
	return latency, judgeAnswer(p, body, resp.StatusCode, data, latency)
}

// judgeAnswer is the pure part of a probe: is this answer good?
func judgeAnswer(p HTTPProbe, body *regexp.Regexp, status int, data []byte, latency time.Duration) error {
	if status != p.ExpectStatus {
		return fmt.Errorf("status %d, want %d", status, p.ExpectStatus)
	}
	if body != nil && !body.Match(data) {
		return fmt.Errorf("body does not match %q (first bytes: %q)", p.BodyMatch, firstBytes(data, 80))
	}
	if p.MaxLatency.Duration > 0 && latency > p.MaxLatency.Duration {
		return fmt.Errorf("answer took %s, limit %s", latency.Round(time.Millisecond), p.MaxLatency.Duration)
	}
	return nil
}

func firstBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}
