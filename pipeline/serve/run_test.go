package serve

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/testenv"
)

func TestRunDrainsOnShutdown(t *testing.T) {
	cfg, err := LoadConfig("testdata/serve/serve.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := newRecordingDeployer()
	d.gate = make(chan error)
	clock := newTestClock()
	s, err := NewServer(ServerOptions{Config: cfg, WebhookSecrets: testSecrets, Deployer: d, Clock: clock,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- Run(ctx, RunOptions{Server: s, Listener: l, ShutdownTimeout: time.Minute}) }()
	testenv.Eventually(t, "readyz", 10*time.Second, func() bool {
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	for i, tag := range []string{"main-1", "main-2"} {
		if code, r := post(t, url+"/webhook/harbor", testSecret, "application/json", harborPush("demo/shop", tag, clock.Now().Unix(), byte(i))); code != 202 {
			t.Fatalf("push %s: %d %v", tag, code, r)
		}
	}
	testenv.Eventually(t, "the first deploy running", 10*time.Second, func() bool { return len(d.Calls()) == 1 })
	stop()
	testenv.Eventually(t, "the server to stop listening", 10*time.Second, func() bool {
		_, err := http.Get(url + "/healthz")
		return err != nil
	})
	if s.ready.Load() {
		t.Fatal("still ready while shutting down")
	}
	select {
	case err := <-ran:
		t.Fatalf("Run returned (%v) with deploys still queued", err)
	default:
	}
	d.gate <- nil
	d.gate <- nil
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	recs := s.recorder.Recent()
	if len(recs) != 2 || recs[0].Result != ResultSucceeded || recs[1].Result != ResultSucceeded {
		t.Fatalf("after shutdown: %+v", recs)
	}
}
