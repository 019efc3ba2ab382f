package clustertest

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/platform/edge"
	"github.com/tsys-group/tsys-ci/platform/edge/edgetest"
	"github.com/tsys-group/tsys-ci/test/apiserver"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// TestWatchDrivesARealHAProxy is `tsys-ci edge sync --watch` end to end:
// Services in a real API server, the Watcher and Syncer, a real HAProxy in
// front of apps on loopback. An app appears (reload), moves to another
// address and port (runtime API, no reload) and goes away (reload).
func TestWatchDrivesARealHAProxy(t *testing.T) {
	haproxy := testenv.LookPath(t, "haproxy")
	c := apiserver.Client(t)
	ns := apiserver.Namespace(t, c, "edge-e2e")
	opts := edge.DefaultOptions()
	opts.CertDir = t.TempDir()
	host := "shop.company.example"
	edgetest.WriteCert(t, edge.CertPath(opts, host), host)

	edgeDir := filepath.Join(t.TempDir(), "edge")
	if err := edge.Render(&edge.Model{}, opts).Write(edgeDir); err != nil {
		t.Fatal(err)
	}
	h := edgetest.Start(t, haproxy, edgeDir)
	rt := edge.Runtime{StatsSocket: h.StatsSocket, MasterSocket: h.MasterSocket}
	var log testenv.SyncBuffer
	s := &edge.Syncer{Dir: edgeDir, HAProxy: haproxy, Configs: []string{h.Config}, Runtime: rt, Options: opts,
		Log: slog.New(slog.NewTextHandler(&log, nil)), ReloadTimeout: 20 * time.Second}
	w := &edge.Watcher{Client: c, Namespace: ns, Options: opts, Sync: s.Sync, Log: s.Log,
		Debounce: 100 * time.Millisecond, Resync: time.Hour, RetryAfter: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watcher.Run: %v", err)
		}
		if t.Failed() {
			t.Logf("watch log:\n%s", log.String())
		}
	}()

	blue, green := edgetest.StartApp(t, "127.0.0.2", "blue"), edgetest.StartApp(t, "127.0.0.3", "green")
	svc := createApp(t, c, ns, "shop", `[{"port":"http","hosts":["`+host+`"]}]`, blue.IP, blue.Port)
	if a := h.Reaches(t, host, "blue"); a.Cert != host {
		t.Errorf("%s was served certificate %q", host, a.Cert)
	}
	waitLog(t, &log, "action=reload")
	before := procs(t, rt)

	// Blue/green by address: the Service gets green's port, then MetalLB
	// gives it green's address.
	svc, err := c.CoreV1().Services(ns).Get(context.Background(), svc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Ports[0].Port = green.Port
	if svc, err = c.CoreV1().Services(ns).Update(context.Background(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	setIP(t, c, svc, green.IP)
	h.Reaches(t, host, "green")
	waitLog(t, &log, "action=runtime")
	if after := procs(t, rt); after.Reloads != before.Reloads || after.Workers[0].PID != before.Workers[0].PID {
		t.Fatalf("following an address change reloaded HAProxy: before %+v, after %+v", before, after)
	}

	if err := c.CoreV1().Services(ns).Delete(context.Background(), svc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	edgetest.WaitFor(t, 20*time.Second, host+" to be gone", func() error {
		a, err := h.Get(context.Background(), host, "/")
		if err == nil && a.Status != 404 {
			err = errors.New(a.Body)
		}
		return err
	})
	for _, want := range []string{"msg=\"service changed\"", "exposed", "load-balancer address", "removed", "action=reload"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("watch log lacks %q", want)
		}
	}
}

func waitLog(t *testing.T, log *testenv.SyncBuffer, want string) {
	t.Helper()
	edgetest.WaitFor(t, 20*time.Second, want+" in the watch log", func() error {
		if !strings.Contains(log.String(), want) {
			return errors.New("not yet")
		}
		return nil
	})
}

// procs asks the master for its processes; its socket is briefly closed
// while the master re-executes itself after a reload.
func procs(t *testing.T, rt edge.Runtime) edge.Procs {
	t.Helper()
	var p edge.Procs
	edgetest.WaitFor(t, 10*time.Second, "HAProxy's master CLI", func() error {
		var err error
		p, err = rt.Procs(context.Background())
		return err
	})
	return p
}
