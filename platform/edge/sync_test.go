package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/platform/edge/edgetest"
	"github.com/tsys-group/tsys-ci/test/testenv"
	corev1 "k8s.io/api/core/v1"
)

// haproxyUnderTest is a real HAProxy (edgetest) with the edge's runtime
// client aimed at its sockets.
type haproxyUnderTest struct {
	*edgetest.HAProxy
	rt Runtime
}

// startHAProxy installs initial as the edge files (as `tsys-ci edge render
// -o DIR` does before HAProxy's first start) and starts HAProxy on them.
func startHAProxy(t *testing.T, haproxy string, initial *Model, opts Options) *haproxyUnderTest {
	t.Helper()
	edgeDir := filepath.Join(t.TempDir(), "edge")
	if err := Render(initial, opts).Write(edgeDir); err != nil {
		t.Fatal(err)
	}
	hp := edgetest.Start(t, haproxy, edgeDir)
	h := &haproxyUnderTest{HAProxy: hp, rt: Runtime{StatsSocket: hp.StatsSocket, MasterSocket: hp.MasterSocket}}
	edgetest.WaitFor(t, 10*time.Second, "HAProxy's worker", func() error {
		p, err := h.rt.Procs(context.Background())
		if err == nil && len(p.Workers) == 0 {
			err = errors.New("no worker yet")
		}
		return err
	})
	return h
}

func (h *haproxyUnderTest) syncer(t *testing.T, haproxy string, opts Options) *Syncer {
	return &Syncer{Dir: h.EdgeDir, HAProxy: haproxy, Configs: []string{h.Config}, Runtime: h.rt, Options: opts,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), ReloadTimeout: 20 * time.Second}
}

func (h *haproxyUnderTest) procs(t *testing.T) Procs {
	t.Helper()
	p, err := h.rt.Procs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustBuild(t *testing.T, opts Options, services ...corev1.Service) *Model {
	t.Helper()
	m, err := Build(services, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustSync(t *testing.T, s *Syncer, m *Model, want Action) Result {
	t.Helper()
	res, err := s.Sync(context.Background(), m)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if res.Action != want {
		t.Fatalf("Sync did %q (%v), want %q", res.Action, res.Changes, want)
	}
	return res
}

// TestSyncWithRealHAProxy drives one real HAProxy through the life of an
// edge: in sync, an address change applied at run time, a new app applied
// by a graceful reload with a request in flight, a broken configuration
// refused.
func TestSyncWithRealHAProxy(t *testing.T) {
	haproxy := testenv.LookPath(t, "haproxy")
	opts := DefaultOptions()
	opts.CertDir = t.TempDir()
	opts.TCPBind = "127.0.0.1"
	edgetest.WriteCert(t, CertPath(opts, "shop.company.example"), "shop.company.example")

	blue := edgetest.StartApp(t, "127.0.0.2", "blue")
	shopAt := func(a *edgetest.App) corev1.Service {
		return lbService("shop", "web", `[{"port":"http","hosts":["shop.company.example"]}]`, map[string]int32{"http": a.Port}, a.IP)
	}
	m := mustBuild(t, opts, shopAt(blue))
	h := startHAProxy(t, haproxy, m, opts)
	s := h.syncer(t, haproxy, opts)

	a := h.Reaches(t, "shop.company.example", "blue")
	if a.Cert != "shop.company.example" || !strings.Contains(a.Body, "host=shop.company.example proto=https") {
		t.Errorf("shop answered %+v; want its own certificate from the crt-list, the Host header kept and X-Forwarded-Proto https", a)
	}
	if a, err := h.Get(context.Background(), "unknown.company.example", "/"); err != nil || a.Status != 404 {
		t.Errorf("a host no app claims got %+v, %v; want the company's 404", a, err)
	}

	t.Run("second sync changes nothing", func(t *testing.T) {
		before := installedFiles(t, h.EdgeDir)
		res := mustSync(t, s, m, ActionNone)
		if len(res.Changes) != 0 || !bytes.Equal(before, installedFiles(t, h.EdgeDir)) {
			t.Fatalf("an in-sync edge changed: %v", res.Changes)
		}
	})

	green := edgetest.StartApp(t, "127.0.0.3", "green")
	t.Run("address change goes through the runtime API", func(t *testing.T) {
		before := h.procs(t)
		m = mustBuild(t, opts, shopAt(green))
		res := mustSync(t, s, m, ActionRuntime)
		want := fmt.Sprintf("server tsys-ci.shop.web.http/lb0: 127.0.0.2:%d -> 127.0.0.3:%d (runtime API, no reload)", blue.Port, green.Port)
		if len(res.Changes) != 1 || res.Changes[0] != want {
			t.Errorf("changes %q, want [%q]", res.Changes, want)
		}
		h.Reaches(t, "shop.company.example", "green")
		after := h.procs(t)
		if after.Reloads != before.Reloads || len(after.Workers) != 1 || after.Workers[0].PID != before.Workers[0].PID {
			t.Fatalf("HAProxy reloaded for an address change: before %+v, after %+v", before, after)
		}
		mustSync(t, s, m, ActionNone)
		// The installed fragment follows, so a later reload keeps the address.
		if cfg, _ := os.ReadFile(filepath.Join(h.EdgeDir, FileConfig)); !strings.Contains(string(cfg), fmt.Sprintf("127.0.0.3:%d", green.Port)) {
			t.Fatalf("installed fragment still has the old address:\n%s", cfg)
		}
	})

	t.Run("new app is added by a graceful reload", func(t *testing.T) {
		// A long request is in flight on the old worker.
		slow := make(chan edgetest.Answer, 1)
		slowErr := make(chan error, 1)
		go func() {
			a, err := h.Get(context.Background(), "shop.company.example", "/slow")
			slow <- a
			slowErr <- err
		}()
		select {
		case <-green.Started:
		case <-time.After(10 * time.Second):
			t.Fatal("the slow request never reached the app")
		}
		before := h.procs(t)

		blog := edgetest.StartApp(t, "127.0.0.4", "blog")
		m = mustBuild(t, opts, shopAt(green),
			lbService("blog", "blog", `[{"port":"http","hosts":["blog.company.example"]}]`, map[string]int32{"http": blog.Port}, blog.IP))
		res := mustSync(t, s, m, ActionReload)
		if len(res.MissingCerts) != 1 || res.MissingCerts[0] != "blog.company.example" {
			t.Errorf("MissingCerts = %v, want [blog.company.example] (no certificate was written for it)", res.MissingCerts)
		}
		after := h.procs(t)
		if after.Reloads != before.Reloads+1 || after.Workers[0].PID == before.Workers[0].PID {
			t.Fatalf("no reload happened: before %+v, after %+v", before, after)
		}
		if len(after.OldWorkers) != 1 || after.OldWorkers[0].PID != before.Workers[0].PID {
			t.Fatalf("the old worker is not finishing the request in flight: before %+v, after %+v", before, after)
		}
		a := h.Reaches(t, "blog.company.example", "blog")
		if a.Cert != "edge.company.example" {
			t.Errorf("blog, with no certificate yet, was served certificate %q; want the default one", a.Cert)
		}
		h.Reaches(t, "shop.company.example", "green")

		close(green.Release)
		if err := <-slowErr; err != nil {
			t.Fatalf("the request in flight during the reload failed: %v", err)
		}
		if a := <-slow; a.Status != 200 || !strings.HasPrefix(a.Body, "slow-start green ") {
			t.Fatalf("the request in flight during the reload got %+v", a)
		}
		mustSync(t, s, m, ActionNone)
	})

	t.Run("TCP is passed through on its frontend port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.5:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				io.WriteString(conn, "SSH-2.0-forge\r\n")
				conn.Close()
			}
		}()
		port := testenv.FreePort(t)
		forge := lbService("git", "forge", fmt.Sprintf(`[{"port":"ssh","tcpFrontendPort":%d}]`, port),
			map[string]int32{"ssh": int32(ln.Addr().(*net.TCPAddr).Port)}, "127.0.0.5")
		m = mustBuild(t, opts, shopAt(green), forge)
		mustSync(t, s, m, ActionReload)
		var banner []byte
		edgetest.WaitFor(t, 10*time.Second, "the banner through the TCP frontend", func() error {
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				return err
			}
			defer conn.Close()
			banner, err = io.ReadAll(conn)
			if err == nil && string(banner) != "SSH-2.0-forge\r\n" {
				err = fmt.Errorf("read %q", banner)
			}
			return err
		})
		mustSync(t, s, m, ActionNone)
	})

	t.Run("a configuration haproxy -c refuses is never installed", func(t *testing.T) {
		before, procs := installedFiles(t, h.EdgeDir), h.procs(t)
		bad := opts
		bad.TCPBind = "no-such-host.invalid" // the bind line cannot resolve
		broken := h.syncer(t, haproxy, bad)
		m2 := mustBuild(t, bad, shopAt(green),
			lbService("git", "forge", `[{"port":"ssh","tcpFrontendPort":2022}]`, map[string]int32{"ssh": 22}, "127.0.0.5"))
		_, err := broken.Sync(context.Background(), m2)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "no-such-host.invalid") || !strings.Contains(err.Error(), "nothing was installed") {
			t.Fatalf("Sync of a broken configuration = %v; want ErrInvalidConfig naming the bad bind and saying nothing was installed", err)
		}
		if !bytes.Equal(before, installedFiles(t, h.EdgeDir)) {
			t.Fatal("the refused configuration changed the installed files")
		}
		if after := h.procs(t); after.Reloads != procs.Reloads || after.Workers[0].PID != procs.Workers[0].PID {
			t.Fatalf("HAProxy reloaded for a refused configuration: before %+v, after %+v", procs, after)
		}
		h.Reaches(t, "shop.company.example", "green")
		mustSync(t, s, m, ActionNone)
	})
}

func installedFiles(t *testing.T, dir string) []byte {
	t.Helper()
	f, err := ReadFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Join([][]byte{f.Config, f.HostMap, f.CrtList, f.Hosts}, []byte("\x00"))
}

// A --cert-dir sync cannot read is an error, not a list of hosts "waiting
// for a certificate": only a file that does not exist is missing.
func TestSyncRefusesACertDirItCannotRead(t *testing.T) {
	opts := DefaultOptions()
	notADir := filepath.Join(t.TempDir(), "certs")
	if err := os.WriteFile(notADir, []byte("a file, not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.CertDir = notADir
	m := mustBuild(t, opts, lbService("web", "shop", `[{"port":"http","hosts":["shop.company.example"]}]`, map[string]int32{"http": 8080}, "192.0.2.10"))
	s := &Syncer{Dir: t.TempDir(), Options: opts}
	res, err := s.Sync(context.Background(), m)
	if err == nil || !strings.Contains(err.Error(), "checking the certificate of shop.company.example") || !strings.Contains(err.Error(), notADir) {
		t.Fatalf("Sync with --cert-dir a file = %+v, %v; want an error naming the host and --cert-dir", res, err)
	}

	opts.CertDir = t.TempDir()
	s.Options = opts
	_, missing, err := s.renderForInstall(m)
	if err != nil || len(missing) != 1 || missing[0] != "shop.company.example" {
		t.Fatalf("renderForInstall with an empty --cert-dir = %v, %v; want shop.company.example missing", missing, err)
	}
}

// TestSyncAppliesTheRestWhenAClaimIsRefused (issue 17, finding 6), with a
// real HAProxy: a Service in a namespace the owners file does not list
// claims shop's host while a new app is added; the new app goes live by
// a reload, shop keeps its host, and the refused claim reaches nothing.
func TestSyncAppliesTheRestWhenAClaimIsRefused(t *testing.T) {
	haproxy := testenv.LookPath(t, "haproxy")
	owners, err := ParseOwners([]byte("namespaces: {shop: {hosts: [shop.company.example]}, blog: {hosts: [\"*.blog.company.example\"]}}"))
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.CertDir = t.TempDir()
	opts.TCPBind = "127.0.0.1"
	opts.Owners = owners
	for _, host := range []string{"shop.company.example", "www.blog.company.example", "evil.company.example"} {
		edgetest.WriteCert(t, CertPath(opts, host), host)
	}
	shopApp := edgetest.StartApp(t, "127.0.0.2", "shop")
	blogApp := edgetest.StartApp(t, "127.0.0.3", "blog")
	evilApp := edgetest.StartApp(t, "127.0.0.4", "evil")
	shop := lbService("shop", "web", `[{"port":"http","hosts":["shop.company.example"]}]`, map[string]int32{"http": shopApp.Port}, shopApp.IP)
	h := startHAProxy(t, haproxy, mustBuild(t, opts, shop), opts)
	s := h.syncer(t, haproxy, opts)

	m, err := Build([]corev1.Service{
		shop,
		lbService("blog", "blog", `[{"port":"http","hosts":["www.blog.company.example"]}]`, map[string]int32{"http": blogApp.Port}, blogApp.IP),
		lbService("evil", "x", `[{"port":"http","hosts":["shop.company.example","evil.company.example"]}]`, map[string]int32{"http": evilApp.Port}, evilApp.IP),
	}, nil, opts)
	var ie *InputError
	if !errors.As(err, &ie) || len(ie.Problems) != 2 || !strings.Contains(err.Error(), "namespace evil is not listed") {
		t.Fatalf("Build = %v; want two refused claims of evil/x naming the rule", err)
	}
	mustSync(t, s, m, ActionReload)
	h.Reaches(t, "www.blog.company.example", "blog")
	h.Reaches(t, "shop.company.example", "shop")
	if a, err := h.Get(context.Background(), "evil.company.example", "/"); err != nil || a.Status != 404 {
		t.Errorf("a refused host got %+v, %v; want the company's 404", a, err)
	}
}
