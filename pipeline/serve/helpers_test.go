package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/testenv"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.Now().Add(d)
	return ch
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// recordingDeployer records every deploy it is asked for; when gate is set
// each deploy waits for a value on it (or the context to end).
type recordingDeployer struct {
	mu     sync.Mutex
	calls  []DeployRequest
	gate   chan error
	active map[string]int // concurrent deploys per app, to catch overlap
	maxPar map[string]int
}

func newRecordingDeployer() *recordingDeployer {
	return &recordingDeployer{active: map[string]int{}, maxPar: map[string]int{}}
}

func (d *recordingDeployer) Deploy(ctx context.Context, req DeployRequest) error {
	key := req.Namespace + "/" + req.App
	d.mu.Lock()
	d.calls = append(d.calls, req)
	d.active[key]++
	if d.active[key] > d.maxPar[key] {
		d.maxPar[key] = d.active[key]
	}
	d.mu.Unlock()
	defer func() { d.mu.Lock(); d.active[key]--; d.mu.Unlock() }()
	if d.gate == nil {
		return nil
	}
	select {
	case err := <-d.gate:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *recordingDeployer) Calls() []DeployRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]DeployRequest(nil), d.calls...)
}

// logBuffer collects JSON log lines.
type logBuffer struct{ testenv.SyncBuffer }

// Lines returns the decoded log records with message msg.
func (l *logBuffer) Lines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

const testSecret = "Bearer test-webhook-secret"

// testSecretWeb is project web's webhook secret (testSecret is demo's).
const testSecretWeb = "Bearer test-web-project-secret"

// testReadToken may read the API and /metrics in startTestServer's server.
const testReadToken = "test-read-token-0123456789"

var testSecrets = map[string]string{"demo": testSecret, "web": testSecretWeb}

type testServer struct {
	*Server
	url      string
	clock    *testClock
	deployer *recordingDeployer
	logs     *logBuffer
}

func startTestServer(t *testing.T, mutate func(*ServerOptions)) *testServer {
	t.Helper()
	cfg, err := LoadConfig("testdata/serve/serve.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{clock: newTestClock(), deployer: newRecordingDeployer(), logs: &logBuffer{}}
	o := ServerOptions{Config: cfg, WebhookSecrets: testSecrets, ReadToken: testReadToken, Deployer: ts.deployer, Clock: ts.clock,
		Log: slog.New(slog.NewJSONHandler(ts.logs, nil))}
	if mutate != nil {
		mutate(&o)
	}
	s, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	s.SetReady(true)
	s.SetLeader(true)
	ts.Server = s
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Queue().Drain(ctx); err != nil {
			t.Errorf("draining: %v", err)
		}
	})
	ts.url = hs.URL
	return ts
}

// harborPush is a PUSH_ARTIFACT body exactly as Harbor v2.6 sends it.
func harborPush(repo, tag string, occurAt int64, digestByte byte) []byte {
	digest := "sha256:" + strings.Repeat(fmt.Sprintf("%02x", digestByte), 32)
	project, name, _ := strings.Cut(repo, "/")
	url := "harbor.company.example/" + repo + ":" + tag
	if tag == "" {
		tag = digest
		url = "harbor.company.example/" + repo + "@" + digest
	}
	return []byte(fmt.Sprintf(`{"type":"PUSH_ARTIFACT","occur_at":%d,"operator":"robot$%s+ci","event_data":{"resources":[{"digest":%q,"tag":%q,"resource_url":%q}],"repository":{"date_created":1764000000,"name":%q,"namespace":%q,"repo_full_name":%q,"repo_type":"private"}}}`,
		occurAt, project, digest, tag, url, name, project, repo))
}

func post(t *testing.T, url, auth, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", "Go-http-client/1.1")
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: reply is not JSON: %q", req.Method, req.URL.Path, b)
	}
	return resp.StatusCode, m
}
