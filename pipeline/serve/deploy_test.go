package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

type recordingSink struct {
	got chan DeployRecord
}

func (s *recordingSink) DeployFinished(_ context.Context, rec DeployRecord) error {
	s.got <- rec
	return nil
}

func newTestQueue(d Deployer) (*DeployQueue, *recordingSink) {
	sink := &recordingSink{got: make(chan DeployRecord, 100)}
	return &DeployQueue{Deployer: d, Recorder: NewDeployRecorder(50), Events: sink, Metrics: NewMetrics(prometheus.NewRegistry()),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: newTestClock(), PerApp: 3}, sink
}

func TestDeployQueueOneAtATimePerApp(t *testing.T) {
	d := newRecordingDeployer()
	d.gate = make(chan error)
	q, sink := newTestQueue(d)
	for i := 0; i < 3; i++ {
		for _, app := range []string{"shop", "blog"} {
			if _, err := q.Enqueue(DeployRequest{Kind: DeployPromote, App: app, Namespace: "ns", Image: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Both apps start one deploy each; nothing else runs while they wait.
	testenv.Eventually(t, "one deploy per app running", 10*time.Second, func() bool { return len(d.Calls()) == 2 })
	if _, err := q.Enqueue(DeployRequest{Kind: DeployPromote, App: "shop", Namespace: "ns"}); err != nil {
		t.Fatalf("third waiting deploy: %v", err)
	}
	if _, err := q.Enqueue(DeployRequest{Kind: DeployPromote, App: "shop", Namespace: "ns"}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("fourth waiting deploy of one app: %v, want ErrQueueFull", err)
	}
	// All or nothing: blog has room, shop has none, so neither is queued.
	before := len(q.Recorder.Recent())
	if _, err := q.EnqueueAll([]DeployRequest{{Kind: DeployPromote, App: "blog", Namespace: "ns"}, {Kind: DeployPromote, App: "shop", Namespace: "ns"}}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("two deploys, one queue full: %v", err)
	}
	if after := len(q.Recorder.Recent()); after != before {
		t.Fatalf("a refused EnqueueAll queued %d deploys", after-before)
	}
	results := []error{nil, fmt.Errorf("probes: %w", ErrRolledBack), errors.New("boom"), nil, nil, nil, nil}
	for _, err := range results {
		d.gate <- err
	}
	testenv.Eventually(t, "all deploys done", 10*time.Second, func() bool {
		for _, r := range q.Recorder.Recent() {
			if r.State != "done" {
				return false
			}
		}
		return true
	})
	if d.maxPar["ns/shop"] != 1 || d.maxPar["ns/blog"] != 1 {
		t.Fatalf("deploys of one app overlapped: %v", d.maxPar)
	}
	// Deploys of one app run in the order they were queued.
	var shopImages []string
	for _, c := range d.Calls() {
		if c.App == "shop" {
			shopImages = append(shopImages, c.Image)
		}
	}
	if strings.Join(shopImages, ",") != "0,1,2," {
		t.Fatalf("shop deploys ran in order %v", shopImages)
	}
	byResult := map[string]int{}
	for i := 0; i < 7; i++ {
		rec := <-sink.got
		byResult[rec.Result]++
		if rec.State != "done" || rec.ID == "" {
			t.Fatalf("event sink got %+v", rec)
		}
	}
	if byResult[ResultRolledBack] != 1 || byResult[ResultFailed] != 1 || byResult[ResultSucceeded] != 5 {
		t.Fatalf("results %v", byResult)
	}
	if got := testutil.ToFloat64(q.Metrics.Deploys.WithLabelValues("promote", "rolled_back")); got != 1 {
		t.Fatalf("rolled_back metric %v", got)
	}
	if n := testutil.CollectAndCount(q.Metrics.DeployDuration); n != 3 {
		t.Fatalf("duration histogram has %d series, want 3 (one per result)", n)
	}
	if err := q.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestDeployQueueDrain(t *testing.T) {
	t.Run("waits for queued deploys", func(t *testing.T) {
		d := newRecordingDeployer()
		d.gate = make(chan error)
		q, _ := newTestQueue(d)
		for i := 0; i < 2; i++ {
			if _, err := q.Enqueue(DeployRequest{Kind: DeployPromote, App: "shop", Namespace: "ns"}); err != nil {
				t.Fatal(err)
			}
		}
		testenv.Eventually(t, "the first deploy running", 10*time.Second, func() bool { return len(d.Calls()) == 1 })
		drained := make(chan error, 1)
		go func() { drained <- q.Drain(context.Background()) }()
		testenv.Eventually(t, "the queue to drain", 10*time.Second, q.Draining)
		if _, err := q.Enqueue(DeployRequest{Kind: DeployPromote, App: "blog", Namespace: "ns"}); !errors.Is(err, ErrShuttingDown) {
			t.Fatalf("enqueue while draining: %v, want ErrShuttingDown", err)
		}
		d.gate <- nil
		d.gate <- nil
		if err := <-drained; err != nil {
			t.Fatal(err)
		}
		for _, r := range q.Recorder.Recent() {
			if r.Result != ResultSucceeded {
				t.Fatalf("after draining: %+v", r)
			}
		}
	})
	t.Run("cancels at the deadline", func(t *testing.T) {
		d := newRecordingDeployer()
		d.gate = make(chan error) // never fed: deploys end only by cancellation
		q, _ := newTestQueue(d)
		for i := 0; i < 2; i++ {
			if _, err := q.Enqueue(DeployRequest{Kind: DeployPromote, App: "shop", Namespace: "ns"}); err != nil {
				t.Fatal(err)
			}
		}
		testenv.Eventually(t, "the first deploy running", 10*time.Second, func() bool { return len(d.Calls()) == 1 })
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the deadline has passed
		if err := q.Drain(ctx); err == nil || !strings.Contains(err.Error(), "canceled") {
			t.Fatalf("drain past the deadline: %v", err)
		}
		recs := q.Recorder.Recent()
		if len(recs) != 2 || recs[0].Result != ResultCanceled || recs[1].Result != ResultCanceled || len(d.Calls()) != 1 {
			t.Fatalf("after the deadline: %+v, %d calls (the queued deploy must not start)", recs, len(d.Calls()))
		}
	})
}

func TestNoClusterDeployerNeverPretends(t *testing.T) {
	q, sink := newTestQueue(NoClusterDeployer{})
	if _, err := q.Enqueue(DeployRequest{Kind: DeployPromote, App: "shop", Namespace: "ns"}); err != nil {
		t.Fatal(err)
	}
	rec := <-sink.got
	if rec.Result != ResultFailed || !strings.Contains(rec.Error, "nothing was deployed") {
		t.Fatalf("record %+v", rec)
	}
	_ = q.Drain(context.Background())
}

func TestLoginThrottle(t *testing.T) {
	th := NewLoginThrottle()
	t0 := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	now := t0
	for i := 0; i < 3; i++ {
		if w := th.Wait(now, "user:alice", "addr:10.0.0.1"); w != 0 {
			t.Fatalf("failure %d: wait %s, want none (3 are free)", i, w)
		}
		th.Fail(now, "user:alice", "addr:10.0.0.1")
	}
	if w := th.Wait(now, "user:alice", "addr:10.0.0.9"); w != 0 {
		t.Fatalf("after 3 failures: wait %s, want 0", w)
	}
	th.Fail(now, "user:alice", "addr:10.0.0.1") // 4th
	if w := th.Wait(now, "user:alice", "addr:10.0.0.9"); w != time.Second {
		t.Fatalf("user after 4 failures: wait %s, want 1s", w)
	}
	if w := th.Wait(now, "user:bob", "addr:10.0.0.1"); w != time.Second {
		t.Fatalf("address after 4 failures: wait %s, want 1s (per address too)", w)
	}
	if w := th.Wait(now, "user:bob", "addr:10.0.0.9"); w != 0 {
		t.Fatalf("another user from another address: wait %s", w)
	}
	for i := 0; i < 20; i++ {
		th.Fail(now, "user:alice")
	}
	if w := th.Wait(now, "user:alice"); w != 5*time.Minute {
		t.Fatalf("after many failures: wait %s, want the 5m cap", w)
	}
	now = now.Add(4 * time.Minute)
	if w := th.Wait(now, "user:alice"); w != time.Minute {
		t.Fatalf("4m later: wait %s, want 1m", w)
	}
	th.Succeed("user:alice")
	if w := th.Wait(now, "user:alice"); w != 0 {
		t.Fatalf("after a success: wait %s", w)
	}
	if w := th.Wait(now.Add(15*time.Minute), "addr:10.0.0.1"); w != 0 {
		t.Fatalf("15m idle: wait %s, want forgotten", w)
	}
	small := NewLoginThrottle()
	small.Cap = 2
	for i := 0; i < 5; i++ {
		small.Fail(now.Add(time.Duration(i)*time.Second), fmt.Sprintf("user:u%d", i))
	}
	if len(small.keys) > 2 {
		t.Fatalf("throttle holds %d keys, cap 2", len(small.keys))
	}
}

// Issue 17 finding 12: filling the throttle's table with new keys (many
// addresses spraying new names) does not clear the throttle of a login
// that must wait, nor one on its way there; and a failure the full table
// cannot record makes new keys wait rather than go free.
func TestLoginThrottleFullTableKeepsOthers(t *testing.T) {
	th := NewLoginThrottle()
	th.Cap = 8
	now := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	for i := 0; i < 4; i++ {
		th.Fail(now, "user:alice") // the 4th: alice must wait
	}
	for i := 0; i < 3; i++ {
		th.Fail(now, "user:bob") // 3 failures: free, one short of waiting
	}
	for i := 0; i < 50; i++ {
		now = now.Add(time.Millisecond)
		th.Fail(now, fmt.Sprintf("user:spray%d", i), fmt.Sprintf("addr:10.0.%d.%d", i/250, i%250))
	}
	if w := th.Wait(now, "user:alice"); w <= 0 {
		t.Fatal("alice's throttle was cleared by filling the table")
	}
	th.Fail(now, "user:bob") // bob's 4th failure counts
	if w := th.Wait(now, "user:bob"); w <= 0 {
		t.Fatal("bob's failures were forgotten by filling the table")
	}
	// A table full of keys that must wait: a new key is not recorded,
	// so it waits rather than going unthrottled.
	full := NewLoginThrottle()
	full.Cap = 3
	for _, k := range []string{"user:a", "user:b", "user:c"} {
		for i := 0; i < 4; i++ {
			full.Fail(now, k)
		}
	}
	full.Fail(now, "user:alice")
	if len(full.keys) != 3 || full.Wait(now, "user:alice") <= 0 {
		t.Fatalf("full of waiting keys: %d keys, alice waits %s", len(full.keys), full.Wait(now, "user:alice"))
	}
}
