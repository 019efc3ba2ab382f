package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tsys-group/tsys-ci/pipeline/notify"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// TestDeploysAreNotified: a real loopback webhook receiver hears each
// deploy's start and end (promoted, rolled back with its reason, refused),
// and a receiver that is down delays no deploy.
func TestDeploysAreNotified(t *testing.T) {
	var mu sync.Mutex
	var got []notify.Event
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev notify.Event
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("notification body %q: %v", b, err)
		}
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	}))
	defer recv.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // nothing listens there any more

	d := newRecordingDeployer()
	d.gate = make(chan error)
	q, _ := newTestQueue(d)
	q.Notify = notify.New([]notify.Target{
		{Name: "team", Namespaces: []string{"ns"}, Webhook: &notify.Webhook{URL: recv.URL}},
		{Name: "down", Webhook: &notify.Webhook{URL: down.URL}},
	}, notify.Options{FirstBackoff: time.Hour, Metrics: notify.NewMetrics(prometheus.NewRegistry())})
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		q.Notify.Close(ctx) // the down receiver's retries end with the test
	})
	for i := range 3 {
		if _, err := q.Enqueue(DeployRequest{Kind: DeployPromote, App: "shop", Namespace: "ns", Image: fmt.Sprintf("reg/shop:v%d", i), Trigger: "harbor", By: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	// The down receiver waits an hour before its second attempt; the
	// deploys go on regardless.
	for _, err := range []error{nil, fmt.Errorf("probes: %w", ErrRolledBack), errors.New("image reg/shop:v2 is not signed by the company key")} {
		d.gate <- err
	}
	testenv.Eventually(t, "six notices (3 started, 3 finished)", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 6
	})
	mu.Lock()
	var kinds []string
	for _, ev := range got {
		kinds = append(kinds, ev.Image+" "+ev.Kind)
		if ev.By != "harbor: alice" || ev.Source != "serve" {
			t.Errorf("notice %+v: want by harbor: alice from serve", ev)
		}
		if ev.Kind == notify.KindRefused && ev.Reason != "image reg/shop:v2 is not signed by the company key" {
			t.Errorf("the refused deploy's reason is %q", ev.Reason)
		}
	}
	mu.Unlock()
	slices.Sort(kinds)
	want := []string{"reg/shop:v0 promoted", "reg/shop:v0 started", "reg/shop:v1 rolled-back", "reg/shop:v1 started", "reg/shop:v2 refused", "reg/shop:v2 started"}
	if !slices.Equal(kinds, want) {
		t.Errorf("notices %q, want %q", kinds, want)
	}
}

func TestServeConfigChecksNotifications(t *testing.T) {
	_, err := ParseConfig([]byte(`registry: harbor.company.example
insecurePlainHTTP: true
policies: []
notifications:
  - name: team
    webhook: {urlFile: /etc/tsys-ci/slack-url, format: slack}
  - name: mail
    email: {smtp: mail.company.example, from: tsys-ci@company.example, to: [team@company.example]}
`), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `notifications[1].email.smtp: "mail.company.example" is not HOST:PORT`) {
		t.Fatalf("got %v, want the bad smtp field named", err)
	}
}

// deployFunc is a Deployer made of a function.
type deployFunc func(ctx context.Context, req DeployRequest) error

func (f deployFunc) Deploy(ctx context.Context, req DeployRequest) error { return f(ctx, req) }

// TestAbortDoesNotWaitBehindThePromoteItStops: an abort runs in its own
// lane while the app's promote still runs; when it only asked the running
// promote to stop, that promote's end (aborted) is the one notice, and an
// abort that rolled back a promote nobody ran any more is told once.
func TestAbortDoesNotWaitBehindThePromoteItStops(t *testing.T) {
	var mu sync.Mutex
	var got []notify.Event
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev notify.Event
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("notification body %q: %v", b, err)
		}
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	}))
	defer recv.Close()
	running, stop := make(chan struct{}), make(chan struct{})
	q, sink := newTestQueue(deployFunc(func(ctx context.Context, req DeployRequest) error {
		switch {
		case req.Kind == DeployPromote:
			close(running)
			<-stop // until the abort asked it to stop
			return fmt.Errorf("promote of shop rolled back: %w", rollout.ErrAborted)
		case req.App == "shop":
			close(stop)
			return fmt.Errorf("asked serve/x: %w", ErrAbortRequested)
		}
		return nil
	}))
	q.Notify = notify.New([]notify.Target{{Name: "team", Webhook: &notify.Webhook{URL: recv.URL}}},
		notify.Options{Metrics: notify.NewMetrics(prometheus.NewRegistry())})
	t.Cleanup(func() { q.Notify.Close(context.Background()) })

	if _, err := q.Enqueue(DeployRequest{Kind: DeployPromote, App: "shop", Namespace: "ns", Image: "reg/shop:v2", Trigger: "harbor", By: "ci"}); err != nil {
		t.Fatal(err)
	}
	<-running
	for _, app := range []string{"shop", "blog"} {
		if _, err := q.Enqueue(DeployRequest{Kind: DeployAbort, App: app, Namespace: "ns", Trigger: "api", By: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	results := map[string]string{}
	for range 3 {
		select {
		case rec := <-sink.got:
			results[rec.Kind+" "+rec.App] = rec.Result
		case <-time.After(10 * time.Second):
			t.Fatalf("deploys did not finish: %v", results)
		}
	}
	want := map[string]string{"promote shop": ResultAborted, "abort shop": ResultSucceeded, "abort blog": ResultSucceeded}
	if !maps.Equal(results, want) {
		t.Fatalf("results %v, want %v", results, want)
	}
	testenv.Eventually(t, "three notices", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3
	})
	mu.Lock()
	var kinds []string
	for _, ev := range got {
		kinds = append(kinds, ev.App+" "+ev.Kind+" "+ev.By+" "+ev.Image)
	}
	mu.Unlock()
	slices.Sort(kinds)
	wantKinds := []string{"blog aborted api: alice the promote in progress", "shop aborted harbor: ci reg/shop:v2", "shop started harbor: ci reg/shop:v2"}
	if !slices.Equal(kinds, wantKinds) {
		t.Fatalf("notices %q, want %q", kinds, wantKinds)
	}
}

// TestSwitchedIsNotified: the moment promote reports traffic switched
// (rollout.Progress through the deploy's context) reaches a real loopback
// receiver as a switched notice, beside started and promoted, naming the
// new and the previous version.
func TestSwitchedIsNotified(t *testing.T) {
	got := make(chan notify.Event, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev notify.Event
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("notification body %q: %v", b, err)
		}
		got <- ev
	}))
	defer recv.Close()
	q, _ := newTestQueue(deployFunc(func(ctx context.Context, req DeployRequest) error {
		tell := ProgressFrom(ctx)
		if tell == nil {
			return errors.New("no progress function in the deploy's context")
		}
		tell(rollout.Progress{Kind: rollout.ProgressSwitched, Namespace: req.Namespace, App: req.App, Image: req.Image,
			Previous: "reg/shop:v1", Strategy: "canary", At: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)})
		return nil
	}))
	q.Notify = notify.New([]notify.Target{{Name: "team", Webhook: &notify.Webhook{URL: recv.URL}}},
		notify.Options{Metrics: notify.NewMetrics(prometheus.NewRegistry())})
	t.Cleanup(func() { q.Notify.Close(context.Background()) })
	if _, err := q.Enqueue(DeployRequest{Kind: DeployPromote, App: "shop", Namespace: "ns", Image: "reg/shop:v2", Strategy: "blueGreen", Trigger: "harbor", By: "ci"}); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var switched notify.Event
	for len(kinds) < 3 {
		select {
		case ev := <-got:
			kinds = append(kinds, ev.Kind)
			if ev.Kind == notify.KindSwitched {
				switched = ev
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("notices so far %q", kinds)
		}
	}
	slices.Sort(kinds) // each delivery runs on its own
	if !slices.Equal(kinds, []string{notify.KindPromoted, notify.KindStarted, notify.KindSwitched}) {
		t.Fatalf("notices %q, want started, switched, promoted", kinds)
	}
	if switched.Image != "reg/shop:v2" || switched.Previous != "reg/shop:v1" || switched.Strategy != "canary" || switched.By != "harbor: ci" || switched.Source != "serve" || !switched.At.Equal(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("switched notice %+v", switched)
	}
}
