package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var rolledBack = Event{Kind: KindRolledBack, Namespace: "shop", App: "web",
	Image:    "harbor.company.example/shop/web@sha256:1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b",
	Previous: "harbor.company.example/shop/web:v3", Reason: "v4: 37 % of 212 requests answered 5xx in the last 10 s",
	By: "jenkins shop/main #42", At: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC), Source: "promote"}

// receiver is a real HTTP server on loopback that records what it got and
// answers with the statuses given, in order (then 200).
type receiver struct {
	mu       sync.Mutex
	bodies   []string
	statuses []int
	srv      *httptest.Server
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		if req.Header.Get("Content-Type") != "application/json" {
			status = http.StatusUnsupportedMediaType
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

func fast(reg *prometheus.Registry) Options {
	return Options{FirstBackoff: 10 * time.Millisecond, Metrics: NewMetrics(reg)}
}

func TestWebhookFormatsReachTheirReceivers(t *testing.T) {
	js, slack, teams := newReceiver(t), newReceiver(t), newReceiver(t)
	targets := []Target{
		{Name: "audit", Webhook: &Webhook{URL: js.srv.URL}},
		{Name: "slack", Events: []string{KindRolledBack}, Webhook: &Webhook{URL: slack.srv.URL, Format: FormatSlack}},
		{Name: "teams", Namespaces: []string{"shop"}, Apps: []string{"shop/web"}, Webhook: &Webhook{URL: teams.srv.URL, Format: FormatTeams}},
	}
	if err := Validate("notifications", targets); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	n := New(targets, fast(reg))
	n.Notify(rolledBack)
	n.Notify(Event{Kind: KindStarted, Namespace: "other", App: "x", Image: "r/x:v1", Source: "serve"})
	if left := n.Close(testContext(t)); left != 0 {
		t.Fatalf("%d deliveries left", left)
	}
	if got := js.got(); len(got) != 2 {
		t.Fatalf("the json target got %d events, want both: %q", len(got), got)
	}
	kinds := map[string]Event{} // deliveries run concurrently: any order
	for _, body := range js.got() {
		var ev Event
		if err := json.Unmarshal([]byte(body), &ev); err != nil {
			t.Fatalf("json payload %q: %v", body, err)
		}
		kinds[ev.Kind] = ev
	}
	if ev := kinds[KindRolledBack]; ev.Reason != rolledBack.Reason || !ev.At.Equal(rolledBack.At) || ev.By != rolledBack.By {
		t.Errorf("json payload of the rollback: %+v", ev)
	}
	if got := slack.got(); len(got) != 1 || !strings.Contains(got[0], `"text":"shop/web: web@sha256:1a2b3c4d5e6f rolled back\nreason: v4: 37 % of 212 requests answered 5xx`) {
		t.Errorf("slack got %q", got)
	}
	if got := teams.got(); len(got) != 1 || !strings.Contains(got[0], `"@type":"MessageCard"`) || !strings.Contains(got[0], `"themeColor":"C62828"`) {
		t.Errorf("teams got %q (only shop/web's event, as a red MessageCard)", got)
	}
	if v := testutil.ToFloat64(n.opts.Metrics.Deliveries.WithLabelValues("audit", "delivered")); v != 2 {
		t.Errorf("audit delivered = %v, want 2", v)
	}
}

func TestDeliveryIsRetriedWithBackoff(t *testing.T) {
	r := newReceiver(t, http.StatusServiceUnavailable, http.StatusBadGateway)
	reg := prometheus.NewRegistry()
	n := New([]Target{{Name: "flaky", Webhook: &Webhook{URL: r.srv.URL}}}, fast(reg))
	n.Notify(rolledBack)
	n.Close(testContext(t))
	if got := len(r.got()); got != 3 {
		t.Errorf("receiver saw %d attempts, want 3 (two refused, then delivered)", got)
	}
	m := n.opts.Metrics
	if testutil.ToFloat64(m.Deliveries.WithLabelValues("flaky", "delivered")) != 1 || testutil.ToFloat64(m.Attempts.WithLabelValues("flaky", "error")) != 2 {
		t.Errorf("metrics: delivered %v, errors %v", testutil.ToFloat64(m.Deliveries.WithLabelValues("flaky", "delivered")), testutil.ToFloat64(m.Attempts.WithLabelValues("flaky", "error")))
	}
}

// TestAReceiverThatHangsDoesNotHoldTheCaller: Notify returns while the
// receiver still holds the request; Close with a deadline cancels it and
// says how many were left.
func TestAReceiverThatHangsDoesNotHoldTheCaller(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	reg := prometheus.NewRegistry()
	n := New([]Target{{Name: "hangs", Webhook: &Webhook{URL: srv.URL}}}, fast(reg))
	n.Notify(rolledBack) // returns although the receiver never answers
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver never got the request")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no time left at all
	if left := n.Close(ctx); left != 1 {
		t.Errorf("Close left %d, want 1 pending delivery reported", left)
	}
	if v := testutil.ToFloat64(n.opts.Metrics.Deliveries.WithLabelValues("hangs", "delivered")); v != 0 {
		t.Errorf("delivered = %v", v)
	}
}

func TestTooManyPendingAreDroppedAndCounted(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	opts := fast(reg)
	opts.MaxPending = 2
	n := New([]Target{{Name: "slow", Webhook: &Webhook{URL: srv.URL}}}, opts)
	for range 5 {
		n.Notify(rolledBack)
	}
	if v := testutil.ToFloat64(n.opts.Metrics.Deliveries.WithLabelValues("slow", "dropped")); v != 3 {
		t.Errorf("dropped = %v, want 3 of 5 with 2 pending allowed", v)
	}
	close(release)
	n.Close(testContext(t))
	if v := testutil.ToFloat64(n.opts.Metrics.Deliveries.WithLabelValues("slow", "delivered")); v != 2 {
		t.Errorf("delivered = %v, want 2", v)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	err := Validate("notifications", []Target{
		{Name: "a", Webhook: &Webhook{URL: "ftp://x/secret-token", Format: "xml"}},
		{Name: "a", Events: []string{"deployed"}, Email: &Email{SMTP: "mail", From: "nobody", Username: "u"}},
		{Name: "", Webhook: &Webhook{URL: "https://x", URLFile: "/f"}, Email: &Email{}},
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`notifications[0].webhook.url: "ftp://x/..." is not an http(s) URL`,
		`notifications[0].webhook.format: "xml"; want json, slack or teams`,
		`notifications[1].name: "a" is used twice`,
		`notifications[1].events[0]: "deployed" is not an event`,
		`notifications[1].email.smtp: "mail" is not HOST:PORT`,
		`notifications[1].email.from: "nobody" is not an e-mail address`,
		`notifications[1].email.to: at least one address`,
		`notifications[1].email: give both username and passwordFile, or neither`,
		`notifications[2].name: required`,
		`notifications[2]: give exactly one of webhook and email`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "secret-token") {
		t.Errorf("the error repeats a webhook URL's path (tokens live there): %v", err)
	}
	if be, ok := err.(interface{ BadInput() bool }); !ok || !be.BadInput() {
		t.Errorf("a configuration error is not bad input (exit 2): %T", err)
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLoadFileIsServesSection(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "notify.yaml")
	if err := os.WriteFile(good, []byte("notifications:\n  - name: team\n    events: [switched, rolled-back]\n    webhook: {url: https://chat.example/hook, format: slack}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	targets, err := LoadFile(good)
	if err != nil || len(targets) != 1 || targets[0].Webhook.Format != FormatSlack || len(targets[0].Events) != 2 {
		t.Fatalf("LoadFile: %+v %v", targets, err)
	}
	for content, want := range map[string]string{
		"notifications:\n  - name: team\n    webhok: {url: https://chat.example/hook}\n": `unknown field "webhok"`,
		"notifications: []\n": "names no target",
		"notifications:\n  - name: team\n    events: [switch]\n    webhook: {url: https://chat.example/hook}\n": `"switch" is not an event`,
	} {
		bad := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(bad, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadFile(bad)
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "bad.yaml") {
			t.Errorf("LoadFile(%q): %v, want a ConfigError naming the file and %q", content, err, want)
		}
	}
	if _, err := LoadFile(filepath.Join(dir, "none.yaml")); err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Errorf("a missing file: %v", err)
	}
}
