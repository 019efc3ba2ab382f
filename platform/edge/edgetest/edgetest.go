// Package edgetest runs the real things the edge's tests need: HAProxy in
// master-worker mode with a company configuration as docs/edge.md describes
// it, apps on loopback addresses standing behind "VIPs", and self-signed
// certificates. The edge's own tests, its API-server tests and end-to-end
// tests in the lab share it. It does not import the edge package, so the
// edge's internal tests can use it.
package edgetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/tsys-group/tsys-ci/test/testenv"
)

// Fragment is the file name of the edge's fragment inside its directory
// (edge.FileConfig); EnvEdgeDir is the variable the company configuration
// reads the directory from (edge.EnvEdgeDir).
const (
	Fragment   = "edge.cfg"
	EnvEdgeDir = "TSYS_CI_EDGE_DIR"
)

var companyConfig = template.Must(template.New("haproxy.cfg").Parse(`global
    presetenv ` + EnvEdgeDir + ` {{.EdgeDir}}
    stats socket {{.StatsSocket}} mode 600 level admin expose-fd listeners

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend https
    bind {{.HTTPSAddr}} ssl crt {{.DefaultCert}} crt-list "${` + EnvEdgeDir + `}/crt-list"
    use_backend %[req.hdr(host),host_only,lower,map("${` + EnvEdgeDir + `}/hosts.map")]
    default_backend no-app

backend no-app
    http-request return status 404 content-type text/plain string "no app answers to this host name"
{{if .StatsAddr}}
frontend stats
    bind {{.StatsAddr}}
    stats enable
    stats uri /stats
{{end}}`))

// Company is the company's own HAProxy configuration, as docs/edge.md tells
// the administrator to write it: the edge directory set with presetenv, the
// crt-list on the HTTPS bind line, one use_backend rule reading the host map.
type Company struct {
	Dir         string // where the configuration, default certificate and sockets go
	EdgeDir     string // the edge directory (edge.cfg, hosts.map, crt-list)
	StatsSocket string // default Dir/stats.sock
	HTTPSAddr   string // default 127.0.0.1:8443 (checked, never bound)
	DefaultCert string // default a new certificate for edge.company.example in Dir
	StatsAddr   string // if set, HAProxy's statistics page listens there (/stats, CSV at /stats;csv), as docs/edge.md tells the administrator for promote
}

// WriteCompany writes the configuration into c.Dir and returns its path.
func WriteCompany(t testing.TB, c Company) string {
	t.Helper()
	if c.DefaultCert == "" {
		c.DefaultCert = filepath.Join(c.Dir, "default.pem")
		WriteCert(t, c.DefaultCert, "edge.company.example")
	}
	if c.StatsSocket == "" {
		c.StatsSocket = filepath.Join(c.Dir, "stats.sock")
	}
	if c.HTTPSAddr == "" {
		c.HTTPSAddr = "127.0.0.1:8443"
	}
	var b strings.Builder
	if err := companyConfig.Execute(&b, c); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(c.Dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// WriteCert writes a self-signed certificate for host and its key into one
// PEM file, as HAProxy's crt and crt-list read them.
func WriteCert(t testing.TB, path, host string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Check runs the real `haproxy -c` on the company configuration plus the
// fragment in edgeDir, as the running HAProxy would load them.
func Check(t testing.TB, haproxy, companyCfg, edgeDir string) {
	t.Helper()
	cmd := exec.Command(haproxy, "-c", "-f", companyCfg, "-f", filepath.Join(edgeDir, Fragment))
	cmd.Env = append(os.Environ(), EnvEdgeDir+"="+edgeDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c rejected the configuration: %v\n%s", err, out)
	}
}

// App stands for an app behind its VIP: a Go HTTP server on a loopback
// address answering "NAME host=HOST proto=PROTO". /slow sends its first
// bytes, then holds the rest until Release is closed.
type App struct {
	Name    string
	IP      string
	Port    int32
	Started chan struct{} // a /slow request arrived
	Release chan struct{} // close to let /slow requests finish
	srv     *http.Server
}

// Close stops the app: its address refuses connections from then on.
func (a *App) Close() { a.srv.Close() }

// StartApp starts an App on ip (any of 127.0.0.0/8) and a free port.
func StartApp(t testing.TB, ip, name string) *App {
	t.Helper()
	return StartAppAt(t, ip, 0, name)
}

// StartAppAt starts an App on ip and port (0: a free one): the same port
// on several addresses stands for one NodePort on several nodes.
func StartAppAt(t testing.TB, ip string, port int, name string) *App {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listening on %s port %d (the loopback range): %v", ip, port, err)
	}
	a := &App{Name: name, IP: ip, Port: int32(ln.Addr().(*net.TCPAddr).Port),
		Started: make(chan struct{}, 1), Release: make(chan struct{})}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			a.Started <- struct{}{}
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "slow-start ")
			w.(http.Flusher).Flush()
			<-a.Release
		}
		fmt.Fprintf(w, "%s host=%s proto=%s", a.Name, r.Host, r.Header.Get("X-Forwarded-Proto"))
	})}
	a.srv = srv
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

// BlackHole is an address whose connections hang: its listener's queue is
// full and never drained, so the kernel drops new SYNs and a connect waits
// for its timeout, as to a VIP port kube-proxy no longer forwards.
type BlackHole struct {
	IP   string
	Port int32
}

// StartBlackHole makes a BlackHole on ip (any of 127.0.0.0/8) and port (0:
// a free one), and returns once a connection to it hangs. The port may be
// one an App used until it was closed.
func StartBlackHole(t testing.TB, ip string, port int) *BlackHole {
	t.Helper()
	addr := net.ParseIP(ip).To4()
	if addr == nil {
		t.Fatalf("black hole: %q is not an IPv4 address", ip)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	// Its connections in TIME_WAIT must not keep a closed App's port.
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		t.Fatal(err)
	}
	sa := &syscall.SockaddrInet4{Port: port}
	copy(sa.Addr[:], addr)
	if err := syscall.Bind(fd, sa); err != nil {
		t.Fatalf("black hole: binding %s port %d: %v", ip, port, err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	bound, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	b := &BlackHole{IP: ip, Port: int32(bound.(*syscall.SockaddrInet4).Port)}
	// Connections complete until the queue is full; from then on SYNs
	// are dropped and a dial times out.
	target := net.JoinHostPort(ip, strconv.Itoa(int(b.Port)))
	var fillers []net.Conn
	t.Cleanup(func() {
		for _, c := range fillers {
			c.Close()
		}
	})
	WaitFor(t, 5*time.Second, "the black hole to drop connections", func() error {
		c, err := net.DialTimeout("tcp", target, 200*time.Millisecond)
		if err == nil {
			fillers = append(fillers, c)
			return fmt.Errorf("%s still takes connections (%d queued)", target, len(fillers))
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil
		}
		return err
	})
	return b
}

// HAProxy is a running HAProxy in master-worker mode.
type HAProxy struct {
	HTTPSAddr    string
	Config       string // the company configuration
	EdgeDir      string
	StatsSocket  string
	MasterSocket string
	StatsURL     string              // the statistics page's CSV, which promote reads (pool.json edge.statsURL)
	Log          *testenv.SyncBuffer // its output, printed when the test fails
}

// Start writes the company configuration into a new temporary directory and
// starts HAProxy with it plus edgeDir/edge.cfg, which must already exist
// (the edge's render writes it, as before a first start in production). It
// returns once the stats socket answers, and stops HAProxy when the test ends.
func Start(t testing.TB, haproxy, edgeDir string) *HAProxy {
	t.Helper()
	dir := t.TempDir()
	h := &HAProxy{
		EdgeDir:      edgeDir,
		HTTPSAddr:    "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		StatsSocket:  filepath.Join(dir, "stats.sock"),
		MasterSocket: filepath.Join(dir, "master.sock"),
		Log:          &testenv.SyncBuffer{},
	}
	statsAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	h.StatsURL = "http://" + statsAddr + "/stats;csv"
	h.Config = WriteCompany(t, Company{Dir: dir, EdgeDir: edgeDir, HTTPSAddr: h.HTTPSAddr, StatsSocket: h.StatsSocket, StatsAddr: statsAddr})
	cmd := exec.Command(haproxy, "-W", "-db", "-S", h.MasterSocket, "-f", h.Config, "-f", filepath.Join(edgeDir, Fragment))
	cmd.Stdout, cmd.Stderr = h.Log, h.Log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("HAProxy's output:\n%s", h.Log.String())
		}
	})
	WaitFor(t, 10*time.Second, "HAProxy's stats socket", func() error {
		conn, err := net.Dial("unix", h.StatsSocket)
		if err != nil {
			return err
		}
		defer conn.Close()
		io.WriteString(conn, "show info\n")
		out, err := io.ReadAll(conn)
		if err != nil || !strings.Contains(string(out), "Pid:") {
			return fmt.Errorf("show info answered %q, %v", out, err)
		}
		return nil
	})
	return h
}

// WaitFor polls cond until it returns nil or the deadline passes.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() error) {
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

// Answer is what one request through HAProxy got.
type Answer struct {
	Status int
	Body   string
	Cert   string // the common name of the certificate HAProxy presented
}

// Get sends one HTTPS request for host through HAProxy on a new connection,
// with SNI and Host header as a browser opening https://host/path would.
func (h *HAProxy) Get(ctx context.Context, host, path string) (Answer, error) {
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+h.HTTPSAddr+path, nil)
	if err != nil {
		return Answer{}, err
	}
	req.Host = host
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return Answer{Status: resp.StatusCode, Body: string(body), Cert: cert}, err
}

// Reaches waits until host is answered by the app named app.
func (h *HAProxy) Reaches(t testing.TB, host, app string) Answer {
	t.Helper()
	var a Answer
	WaitFor(t, 20*time.Second, host+" to reach "+app, func() error {
		var err error
		a, err = h.Get(context.Background(), host, "/")
		if err != nil {
			return err
		}
		if a.Status != 200 || !strings.HasPrefix(a.Body, app+" ") {
			return fmt.Errorf("got %d %q", a.Status, a.Body)
		}
		return nil
	})
	return a
}
