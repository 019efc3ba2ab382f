package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/testenv"
	corev1 "k8s.io/api/core/v1"
)

// appServer is an app behind a "VIP": a Go HTTP server on a loopback
// address that answers with its name. /slow holds the response until
// released, to show a request crossing a reload.
type appServer struct {
	name    string
	ip      string
	port    int32
	started chan struct{} // a /slow request arrived
	release chan struct{} // let /slow answer
}

func startApp(t *testing.T, ip, name string) *appServer {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listening on %s (the loopback range): %v", ip, err)
	}
	a := &appServer{name: name, ip: ip, port: int32(ln.Addr().(*net.TCPAddr).Port),
		started: make(chan struct{}, 1), release: make(chan struct{})}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			a.started <- struct{}{}
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "slow-start ")
			w.(http.Flusher).Flush()
			<-a.release
		}
		fmt.Fprintf(w, "%s host=%s proto=%s", a.name, r.Host, r.Header.Get("X-Forwarded-Proto"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

// haproxyUnderTest is a real HAProxy in master-worker mode in a temp dir.
type haproxyUnderTest struct {
	rt         Runtime
	httpsAddr  string
	companyCfg string
	edgeDir    string
	certDir    string
	log        *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startHAProxy installs initial as the edge files (as `tsys-ci edge render
// -o DIR` does before HAProxy's first start) and starts HAProxy with the
// company's configuration plus the fragment.
func startHAProxy(t *testing.T, haproxy string, initial *Model, opts Options) *haproxyUnderTest {
	t.Helper()
	dir := t.TempDir()
	h := &haproxyUnderTest{
		edgeDir:   filepath.Join(dir, "edge"),
		certDir:   opts.CertDir,
		httpsAddr: "127.0.0.1:" + strconv.Itoa(freePort(t)),
		log:       &syncBuffer{},
	}
	if err := Render(initial, opts).Write(h.edgeDir); err != nil {
		t.Fatal(err)
	}
	h.companyCfg = writeCompany(t, company{Dir: dir, EdgeDir: h.edgeDir, HTTPSAddr: h.httpsAddr})
	h.rt = Runtime{StatsSocket: filepath.Join(dir, "stats.sock"), MasterSocket: filepath.Join(dir, "master.sock")}
	cmd := exec.Command(haproxy, "-W", "-db", "-S", h.rt.MasterSocket, "-f", h.companyCfg, "-f", filepath.Join(h.edgeDir, FileConfig))
	cmd.Stdout, cmd.Stderr = h.log, h.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("HAProxy's output:\n%s", h.log.String())
		}
	})
	waitFor(t, 10*time.Second, "HAProxy's worker and stats socket", func() error {
		p, err := h.rt.Procs(context.Background())
		if err != nil {
			return err
		}
		if len(p.Workers) == 0 {
			return errors.New("no worker yet")
		}
		_, err = h.rt.ServersState(context.Background())
		return err
	})
	return h
}

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type answer struct {
	status int
	body   string
	cert   string // the name in the certificate HAProxy presented
}

// get sends one HTTPS request for host through HAProxy, with SNI and Host
// header as a browser opening https://host/ would.
func (h *haproxyUnderTest) get(ctx context.Context, host, path string) (answer, error) {
	var cert string
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: host, InsecureSkipVerify: true, // test certificates are self-signed
			VerifyConnection: func(cs tls.ConnectionState) error {
				cert = cs.PeerCertificates[0].Subject.CommonName
				return nil
			}},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+h.httpsAddr+path, nil)
	if err != nil {
		return answer{}, err
	}
	req.Host = host
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: string(body), cert: cert}, err
}

// reaches waits until host is served by the app named want.
func (h *haproxyUnderTest) reaches(t *testing.T, host, want string) answer {
	t.Helper()
	var a answer
	waitFor(t, 10*time.Second, host+" to reach "+want, func() error {
		var err error
		a, err = h.get(context.Background(), host, "/")
		if err != nil {
			return err
		}
		if a.status != 200 || !strings.HasPrefix(a.body, want+" ") {
			return fmt.Errorf("got %d %q", a.status, a.body)
		}
		return nil
	})
	return a
}

func (h *haproxyUnderTest) syncer(t *testing.T, haproxy string, opts Options) *Syncer {
	return &Syncer{Dir: h.edgeDir, HAProxy: haproxy, Configs: []string{h.companyCfg}, Runtime: h.rt, Options: opts,
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
	m, err := Build(services, opts)
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
	writeCert(t, CertPath(opts, "shop.company.example"), "shop.company.example")

	blue := startApp(t, "127.0.0.2", "blue")
	shopAt := func(a *appServer) corev1.Service {
		return lbService("shop", "web", `[{"port":"http","hosts":["shop.company.example"]}]`, map[string]int32{"http": a.port}, a.ip)
	}
	m := mustBuild(t, opts, shopAt(blue))
	h := startHAProxy(t, haproxy, m, opts)
	s := h.syncer(t, haproxy, opts)

	a := h.reaches(t, "shop.company.example", "blue")
	if a.cert != "shop.company.example" || !strings.Contains(a.body, "host=shop.company.example proto=https") {
		t.Errorf("shop answered %+v; want its own certificate from the crt-list, the Host header kept and X-Forwarded-Proto https", a)
	}
	if a, err := h.get(context.Background(), "unknown.company.example", "/"); err != nil || a.status != 404 {
		t.Errorf("a host no app claims got %+v, %v; want the company's 404", a, err)
	}

	t.Run("second sync changes nothing", func(t *testing.T) {
		before := installedFiles(t, h.edgeDir)
		res := mustSync(t, s, m, ActionNone)
		if len(res.Changes) != 0 || !bytes.Equal(before, installedFiles(t, h.edgeDir)) {
			t.Fatalf("an in-sync edge changed: %v", res.Changes)
		}
	})

	green := startApp(t, "127.0.0.3", "green")
	t.Run("address change goes through the runtime API", func(t *testing.T) {
		before := h.procs(t)
		m = mustBuild(t, opts, shopAt(green))
		res := mustSync(t, s, m, ActionRuntime)
		want := fmt.Sprintf("server tsys-ci.shop.web.http/lb0: 127.0.0.2:%d -> 127.0.0.3:%d (runtime API, no reload)", blue.port, green.port)
		if len(res.Changes) != 1 || res.Changes[0] != want {
			t.Errorf("changes %q, want [%q]", res.Changes, want)
		}
		h.reaches(t, "shop.company.example", "green")
		after := h.procs(t)
		if after.Reloads != before.Reloads || len(after.Workers) != 1 || after.Workers[0].PID != before.Workers[0].PID {
			t.Fatalf("HAProxy reloaded for an address change: before %+v, after %+v", before, after)
		}
		mustSync(t, s, m, ActionNone)
		// The installed fragment follows, so a later reload keeps the address.
		if cfg, _ := os.ReadFile(filepath.Join(h.edgeDir, FileConfig)); !strings.Contains(string(cfg), fmt.Sprintf("127.0.0.3:%d", green.port)) {
			t.Fatalf("installed fragment still has the old address:\n%s", cfg)
		}
	})

	t.Run("new app is added by a graceful reload", func(t *testing.T) {
		// A long request is in flight on the old worker.
		slow := make(chan answer, 1)
		slowErr := make(chan error, 1)
		go func() {
			a, err := h.get(context.Background(), "shop.company.example", "/slow")
			slow <- a
			slowErr <- err
		}()
		select {
		case <-green.started:
		case <-time.After(10 * time.Second):
			t.Fatal("the slow request never reached the app")
		}
		before := h.procs(t)

		blog := startApp(t, "127.0.0.4", "blog")
		m = mustBuild(t, opts, shopAt(green),
			lbService("blog", "blog", `[{"port":"http","hosts":["blog.company.example"]}]`, map[string]int32{"http": blog.port}, blog.ip))
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
		a := h.reaches(t, "blog.company.example", "blog")
		if a.cert != "edge.company.example" {
			t.Errorf("blog, with no certificate yet, was served certificate %q; want the default one", a.cert)
		}
		h.reaches(t, "shop.company.example", "green")

		close(green.release)
		if err := <-slowErr; err != nil {
			t.Fatalf("the request in flight during the reload failed: %v", err)
		}
		if a := <-slow; a.status != 200 || !strings.HasPrefix(a.body, "slow-start green ") {
			t.Fatalf("the request in flight during the reload got %+v", a)
		}
		mustSync(t, s, m, ActionNone)
	})

	t.Run("a configuration haproxy -c refuses is never installed", func(t *testing.T) {
		before, procs := installedFiles(t, h.edgeDir), h.procs(t)
		bad := opts
		bad.TCPBind = "no-such-host.invalid" // the bind line cannot resolve
		broken := h.syncer(t, haproxy, bad)
		m2 := mustBuild(t, bad, shopAt(green),
			lbService("git", "forge", `[{"port":"ssh","tcpFrontendPort":2022}]`, map[string]int32{"ssh": 22}, "127.0.0.5"))
		_, err := broken.Sync(context.Background(), m2)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "no-such-host.invalid") || !strings.Contains(err.Error(), "nothing was installed") {
			t.Fatalf("Sync of a broken configuration = %v; want ErrInvalidConfig naming the bad bind and saying nothing was installed", err)
		}
		if !bytes.Equal(before, installedFiles(t, h.edgeDir)) {
			t.Fatal("the refused configuration changed the installed files")
		}
		if after := h.procs(t); after.Reloads != procs.Reloads || after.Workers[0].PID != procs.Workers[0].PID {
			t.Fatalf("HAProxy reloaded for a refused configuration: before %+v, after %+v", procs, after)
		}
		h.reaches(t, "shop.company.example", "green")
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
