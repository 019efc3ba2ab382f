package edge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/platform/edge/edgetest"
	"github.com/tsys-group/tsys-ci/test/testenv"
	corev1 "k8s.io/api/core/v1"
)

// TestInFlightRequestFollowsARuntimeAddressChange: a request whose
// connection to the old address is still being attempted when sync moves
// the server at run time (the old VIP port answers no SYN any more, as
// after kube-proxy dropped the Service's old port) is retried at the new
// address once HAProxy's connect timeout expires, instead of being retried
// at the old one until HAProxy gives up with a 503 (seen in the lab: 20 s
// with the fragment's 5 s connect timeout and HAProxy's 3 retries).
func TestInFlightRequestFollowsARuntimeAddressChange(t *testing.T) {
	haproxy := testenv.LookPath(t, "haproxy")
	opts := DefaultOptions()
	opts.CertDir = t.TempDir()
	host := "shop.company.example"
	edgetest.WriteCert(t, CertPath(opts, host), host)
	shopAt := func(ip string, port int32) corev1.Service {
		return lbService("shop", "web", `[{"port":"http","hosts":["`+host+`"]}]`, map[string]int32{"http": port}, ip)
	}
	// The old address serves until HAProxy's checks passed, then stops
	// answering SYNs.
	old := edgetest.StartApp(t, "127.0.0.6", "old")
	h := startHAProxy(t, haproxy, mustBuild(t, opts, shopAt(old.IP, old.Port)), opts)
	s := h.syncer(t, haproxy, opts)
	h.Reaches(t, host, "old")
	server := BackendName("shop", "web", "http") + ",lb0,"
	stat := func(ctx context.Context) ([]string, error) {
		out, err := h.rt.stats(ctx, "show stat")
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Split(line, ","); strings.HasPrefix(line, server) && len(f) > 37 {
				return f, nil
			}
		}
		return nil, fmt.Errorf("'show stat' has no line for %s", server)
	}
	// show stat's status (column 18) and check_status (37).
	edgetest.WaitFor(t, 10*time.Second, "the old address's check to pass", func() error {
		f, err := stat(context.Background())
		if err == nil && (f[17] != "UP" || f[36] != "L7OK") {
			err = fmt.Errorf("server %s, last check %s", f[17], f[36])
		}
		return err
	})
	old.Close()
	edgetest.StartBlackHole(t, old.IP, int(old.Port))

	type result struct {
		a    edgetest.Answer
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	start := time.Now()
	go func() {
		a, err := h.Get(ctx, host, "/")
		done <- result{a, err, time.Since(start)}
	}()
	// The request is in flight once HAProxy assigned it to the server
	// (show stat's scur, column 5) and is connecting to the old address.
	edgetest.WaitFor(t, 5*time.Second, "the request to be connecting to the old address", func() error {
		f, err := stat(ctx)
		if err == nil && f[4] == "0" {
			err = errors.New("no current session on the server yet")
		}
		return err
	})

	now := edgetest.StartApp(t, "127.0.0.7", "now")
	mustSync(t, s, mustBuild(t, opts, shopAt(now.IP, now.Port)), ActionRuntime)
	r := <-done
	if r.err != nil || r.a.Status != 200 || !strings.HasPrefix(r.a.Body, "now ") {
		t.Fatalf("the request in flight during the address change got %d %q, %v after %s; want the new address's answer",
			r.a.Status, r.a.Body, r.err, r.took.Round(time.Millisecond))
	}
	t.Logf("the request in flight during the address change was answered from the new address after %s", r.took.Round(time.Millisecond))
}
