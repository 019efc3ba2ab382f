//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/tsys-group/tsys-ci/platform/edge"
	"github.com/tsys-group/tsys-ci/platform/edge/edgetest"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// The edge test's apps: fixed names, so every run reuses their places on
// the promote pool rather than taking new ones.
const (
	edgeNS    = "edge-e2e"
	edgeAppA  = "edge-a"
	edgeAppB  = "edge-b"
	edgeHostA = "edge-a.company.example"
	edgeHostB = "edge-b.company.example"
	// edgeHostB2 is a second name of app B whose certificate first
	// arrives broken.
	edgeHostB2 = "edge-b2.company.example"
)

// edgeSpec is the hello app's spec under app in the edge's namespace,
// answering to hosts.
func edgeSpec(app string, hosts ...string) string {
	return helloSpecFor(app, edgeNS, 2, 3, blueGreenStrategy, hosts...)
}

// edgeLab is a real HAProxy on the host in front of the lab, as the
// company's runs in front of production, and the tsys-ci binary that
// keeps it in sync.
type edgeLab struct {
	bin, haproxy string
	h            *edgetest.HAProxy
	rt           edge.Runtime
	certDir      string
	owners       string // the edge owners file: edge-e2e may claim its hosts
	ns           string // the namespace edge sync reads (edgeNS if empty)
	byVersion    bool   // edge sync --by-version
}

// flags are the flags of `tsys-ci edge sync` on this edge host, limited to
// the test's namespace (other tests' apps stay off this edge).
func (e *edgeLab) flags() []string {
	ns := e.ns
	if ns == "" {
		ns = edgeNS
	}
	flags := []string{"--kubeconfig", theLab.Kubeconfig(), "-n", ns, "--dir", e.h.EdgeDir,
		"--haproxy-config", e.h.Config, "--haproxy", e.haproxy,
		"--stats-socket", e.h.StatsSocket, "--master-socket", e.h.MasterSocket, "--cert-dir", e.certDir, "--owners", e.owners}
	if e.byVersion {
		flags = append(flags, "--by-version")
	}
	return flags
}

// startEdge starts HAProxy on the host with empty edge files and the test's
// certificates for hosts, the edge owners file giving them to ns.
func startEdge(t *testing.T, bin, haproxy, ns string, hosts ...string) *edgeLab {
	t.Helper()
	e := &edgeLab{bin: bin, haproxy: haproxy, certDir: t.TempDir(), ns: ns}
	e.owners = filepath.Join(t.TempDir(), "owners.yaml")
	owners := fmt.Sprintf("namespaces:\n  %s:\n    hosts: [%s]\n", ns, strings.Join(hosts, ", "))
	if err := os.WriteFile(e.owners, []byte(owners), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, host := range hosts {
		edgetest.WriteCert(t, filepath.Join(e.certDir, host+".pem"), host)
	}
	edgeDir := filepath.Join(t.TempDir(), "tsys-ci")
	if err := os.MkdirAll(edgeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{edge.FileConfig, edge.FileHostMap, edge.FileCrtList} {
		if err := os.WriteFile(filepath.Join(edgeDir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.h = edgetest.Start(t, haproxy, edgeDir)
	e.rt = edge.Runtime{StatsSocket: e.h.StatsSocket, MasterSocket: e.h.MasterSocket}
	return e
}

// sync runs `tsys-ci edge sync` once and returns its exit code and output.
func (e *edgeLab) sync(t *testing.T) (int, string) {
	t.Helper()
	out, err := exec.Command(e.bin, append([]string{"edge", "sync"}, e.flags()...)...).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("tsys-ci edge sync: %v", err)
	}
	return 0, string(out)
}

// procs asks HAProxy's master for its processes; its socket is closed for
// a moment while the master re-executes itself after a reload.
func (e *edgeLab) procs(t *testing.T) edge.Procs {
	t.Helper()
	var p edge.Procs
	edgetest.WaitFor(t, 10*time.Second, "HAProxy's master CLI", func() error {
		var err error
		p, err = e.rt.Procs(context.Background())
		if err == nil && len(p.Workers) != 1 {
			err = fmt.Errorf("%d workers", len(p.Workers))
		}
		return err
	})
	return p
}

// roots trusts the certificates the test made for hosts (self-signed, so
// each is its own root): a client with it checks that HAProxy presented
// the host's own certificate, not the default one.
func (e *edgeLab) roots(t *testing.T, hosts ...string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, h := range hosts {
		data, err := os.ReadFile(filepath.Join(e.certDir, h+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(data)
		if block == nil {
			t.Fatalf("no PEM block in the certificate of %s", h)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("certificate of %s: %v", h, err)
		}
		pool.AddCert(cert)
	}
	return pool
}

// clientTimeout is longer than the edge's own connect timeout (5 s), so a
// request HAProxy retries is counted as slow, not failed; slowest says how
// slow.
const clientTimeout = 10 * time.Second

// clients are the load's two clients, both going to HAProxy's HTTPS
// address whatever the URL's host (as wildcard DNS sends every name to the
// edge), with SNI and Host header from the URL and the certificate checked.
// The slowest request of either is recorded in slow.
func (e *edgeLab) clients(t *testing.T, slow *slowest, hosts ...string) map[string]*http.Client {
	roots := e.roots(t, hosts...)
	mk := func(keepAlive bool) *http.Client {
		var d net.Dialer
		return &http.Client{Timeout: clientTimeout, Transport: slow.wrap(&http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "tcp", e.h.HTTPSAddr)
			},
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			DisableKeepAlives: !keepAlive,
		})}
	}
	return map[string]*http.Client{"keep-alive": mk(true), "new-connection": mk(false)}
}

// slowest records the slowest request of a load (a nil one records none).
type slowest struct {
	mu   sync.Mutex
	took time.Duration
	at   time.Time
	over time.Duration // requests slower than this are counted
	n    int
}

type timed struct {
	next http.RoundTripper
	s    *slowest
}

func (s *slowest) wrap(rt http.RoundTripper) http.RoundTripper {
	if s == nil {
		return rt
	}
	return timed{rt, s}
}

func (t timed) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	took := time.Since(start)
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if took > t.s.took {
		t.s.took, t.s.at = took, start
	}
	if took > t.s.over {
		t.s.n++
	}
	return resp, err
}

func (s *slowest) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("slowest request %s (sent %s), %d slower than %s", s.took.Round(time.Millisecond), s.at.UTC().Format("15:04:05.000"), s.n, s.over)
}

// reaches waits until https://host/ answers through the edge, with host's
// own certificate, from a pod of app; it returns the answer.
func (e *edgeLab) reaches(t *testing.T, host, app string) string {
	t.Helper()
	hc := e.clients(t, nil, host)["new-connection"]
	var answer string
	edgetest.WaitFor(t, 60*time.Second, host+" to reach "+app+" through the edge", func() error {
		var err error
		answer, err = get(hc, "https://"+host+"/")
		if err != nil {
			return err
		}
		if f := strings.Fields(answer); len(f) < 2 || !strings.HasPrefix(f[1], app+"-") {
			return fmt.Errorf("answered by %q, not a pod of %s", answer, app)
		}
		return nil
	})
	return strings.TrimSpace(answer)
}

func (e *edgeLab) files(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range []string{edge.FileConfig, edge.FileHostMap, edge.FileCrtList, edge.FileHosts} {
		b, err := os.ReadFile(filepath.Join(e.h.EdgeDir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = string(b)
	}
	return out
}

// serverStates reads the edge's servers from HAProxy's "show stat":
// backend/server -> "STATUS CHECK" (UP L7OK when settled).
func (e *edgeLab) serverStates() (map[string]string, error) {
	conn, err := net.Dial("unix", e.h.StatsSocket)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "show stat\n"); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		// pxname, svname, ..., status (18th), ..., check_status (37th)
		if f := strings.Split(line, ","); strings.HasPrefix(line, "tsys-ci.") && len(f) > 37 && f[1] != "BACKEND" {
			out[f[0]+"/"+f[1]] = f[17] + " " + f[36]
		}
	}
	return out, nil
}

// settled waits until HAProxy has n edge servers, all UP with their last
// health check passed.
func (e *edgeLab) settled(t *testing.T, n int) {
	t.Helper()
	edgetest.WaitFor(t, 60*time.Second, "the edge's servers to be UP with passing checks", func() error {
		states, err := e.serverStates()
		if err != nil {
			return err
		}
		for name, st := range states {
			if st != "UP L7OK" {
				return fmt.Errorf("%s is %s", name, st)
			}
		}
		if len(states) != n {
			return fmt.Errorf("%d servers, want %d: %v", len(states), n, states)
		}
		return nil
	})
}

// downs counts the "is DOWN" events in HAProxy's log so far.
func (e *edgeLab) downs() int { return strings.Count(e.h.Log.String(), " is DOWN, reason: ") }

// servedAt reports when http://ip:port/ first answers from the host, asked
// directly (not through the edge; each try waits 250 ms at most), or nothing
// when ctx ends.
func servedAt(ctx context.Context, ip string, port int32) <-chan time.Time {
	out := make(chan time.Time, 1)
	hc := &http.Client{Timeout: 250 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	url := fmt.Sprintf("http://%s:%d/", ip, port)
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			if _, err := get(hc, url); err == nil {
				out <- time.Now()
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return out
}

// since says how long after start t was, or that it never came.
func since(start time.Time, at <-chan time.Time) string {
	t, ok := <-at
	if !ok {
		return "never (before the deadline)"
	}
	return t.Sub(start).Round(10 * time.Millisecond).String()
}

// setServicePort changes the one port of an app's Service (as if it had
// been moved by hand) and returns when the API server took it.
func setServicePort(ctx context.Context, t *testing.T, c kubernetes.Interface, app string, port int32) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		svc, err := c.CoreV1().Services(edgeNS).Get(ctx, app, metav1.GetOptions{})
		if err != nil {
			return err
		}
		svc.Spec.Ports[0].Port = port
		_, err = c.CoreV1().Services(edgeNS).Update(ctx, svc, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("moving Service %s/%s to port %d: %v", edgeNS, app, port, err)
	}
}

// lbAddr is where the app's Service is reached: its MetalLB address and port.
func lbAddr(ctx context.Context, t *testing.T, c kubernetes.Interface, app string) (string, int32) {
	t.Helper()
	svc, err := c.CoreV1().Services(edgeNS).Get(ctx, app, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Status.LoadBalancer.Ingress) != 1 || len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service %s/%s: want one load-balancer address and one port, have %v and %v", edgeNS, app, svc.Status.LoadBalancer.Ingress, svc.Spec.Ports)
	}
	return svc.Status.LoadBalancer.Ingress[0].IP, svc.Spec.Ports[0].Port
}

// switchTime reports when the app's Service selector first names another
// color than now, as a watch on the API server sees it, or nothing when
// ctx ends. The watch has no client timeout (client's 5 s would cut it).
func switchTime(ctx context.Context, t *testing.T, app string) <-chan time.Time {
	t.Helper()
	cfg, err := theLab.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := c.CoreV1().Services(edgeNS).Get(ctx, app, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	from := svc.Spec.Selector[rollout.LabelColor]
	w, err := c.CoreV1().Services(edgeNS).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + app, ResourceVersion: svc.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan time.Time, 1)
	go func() {
		defer close(out)
		defer w.Stop()
		for ev := range w.ResultChan() {
			if svc, ok := ev.Object.(*corev1.Service); ok && svc.Spec.Selector[rollout.LabelColor] != from {
				out <- time.Now()
				return
			}
		}
	}()
	return out
}

// logLoad logs what a load saw, each failure with its time (the first ten
// per client).
func logLoad(t *testing.T, what string, total int, answers map[string]int, failures map[string][]string) {
	t.Helper()
	t.Logf("%s: %d requests, answers %v, %d failed", what, total, answers, failedCount(failures))
	for name, fs := range failures {
		for i, f := range fs {
			if i == 10 {
				t.Logf("  %s: ... %d more", name, len(fs)-10)
				break
			}
			t.Logf("  %s failure: %s", name, f)
		}
	}
}

// moreAnswers waits until the load has sent n more requests, so that it
// covers a stretch after the condition the test waited for.
func moreAnswers(t *testing.T, l *load, n int) {
	t.Helper()
	l.mu.Lock()
	from := l.total
	l.mu.Unlock()
	edgetest.WaitFor(t, 60*time.Second, fmt.Sprintf("%d more requests of the load", n), func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.total < from+n {
			return fmt.Errorf("%d of %d", l.total-from, n)
		}
		return nil
	})
}

func failedCount(failures map[string][]string) int {
	n := 0
	for _, f := range failures {
		n += len(f)
	}
	return n
}

// TestEdgeInFrontOfLab: a real HAProxy on the host (Debian's, master-worker,
// TLS with certificates the test makes, the company configuration of
// docs/edge.md) in front of two apps tsys-ci promote put live in the lab,
// kept in sync by `tsys-ci edge sync` reading the lab cluster:
//
//  1. each host name reaches its app with its own certificate; an unknown
//     host gets the company's default answer (404);
//  2. a blue/green promote of one app under load through the edge: no
//     failed request; the time from the switch to all traffic on the new
//     version, as seen through the edge;
//  3. a certificate that arrives broken: `haproxy -c` refuses, nothing is
//     installed, no reload, traffic through the edge never fails; fixed, it
//     goes live by a graceful reload under the same load;
//  4. an app moved to another port is followed through the runtime API:
//     same worker, no reload, the runtime API shows the new port, traffic
//     flows (requests in flight at the move are counted and reported: the
//     old port stops answering when the Service changes, before any edge
//     can follow);
//  5. `edge sync --watch` follows a second move from cluster events, one
//     log line per change, still without a reload.
//
// Before step 2 it waits until HAProxy's checks of the new servers pass:
// the first check of a server added by a reload can run before the lab
// serves its address, and one failed check marks a new server DOWN.
func TestEdgeInFrontOfLab(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	haproxy := testenv.LookPath(t, "haproxy")
	bin, err := tsysCI()
	if err != nil {
		t.Fatal(err)
	}
	c := client(t)
	v1, v2 := helloImage(t, "v1"), helloImage(t, "v2")
	freshNamespace(ctx, t, c, edgeNS)

	// --- the apps, promoted side by side ---
	dirs := map[string]string{}
	for app, host := range map[string]string{edgeAppA: edgeHostA, edgeAppB: edgeHostB} {
		dirs[app] = t.TempDir()
		if err := os.WriteFile(filepath.Join(dirs[app], "tsys-ci.yaml"), []byte(edgeSpec(app, host)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	t.Run("promote", func(t *testing.T) {
		for _, app := range []string{edgeAppA, edgeAppB} {
			t.Run(app, func(t *testing.T) {
				t.Parallel()
				if code, out := promoteNamed(t, dirs[app], app, "--image", v1); code != 0 {
					t.Fatalf("promote %s v1: exit %d\n%s", app, code, out)
				}
			})
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%s and %s live on v1 in %s (two promotes at once)", edgeAppA, edgeAppB, time.Since(start).Round(100*time.Millisecond))
	promoted := time.Now()
	served := map[string]<-chan time.Time{}
	for _, app := range []string{edgeAppA, edgeAppB} {
		ip, port := lbAddr(ctx, t, c, app)
		served[app] = servedAt(ctx, ip, port)
	}

	// --- the edge host: certificates, empty edge files, HAProxy ---
	e := &edgeLab{bin: bin, haproxy: haproxy, certDir: t.TempDir()}
	e.owners = filepath.Join(t.TempDir(), "owners.yaml")
	owners := fmt.Sprintf("namespaces:\n  %s:\n    hosts: [%s, %s, %s]\n", edgeNS, edgeHostA, edgeHostB, edgeHostB2)
	if err := os.WriteFile(e.owners, []byte(owners), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{edgeHostA, edgeHostB} {
		edgetest.WriteCert(t, filepath.Join(e.certDir, host+".pem"), host)
	}
	edgeDir := filepath.Join(t.TempDir(), "tsys-ci")
	if err := os.MkdirAll(edgeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{edge.FileConfig, edge.FileHostMap, edge.FileCrtList} {
		if err := os.WriteFile(filepath.Join(edgeDir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.h = edgetest.Start(t, haproxy, edgeDir)
	e.rt = edge.Runtime{StatsSocket: e.h.StatsSocket, MasterSocket: e.h.MasterSocket}
	first := e.procs(t)
	reloads := func() int { return e.procs(t).Reloads - first.Reloads }

	// --- 1. host names reach their apps ---
	start = time.Now()
	code, out := e.sync(t)
	if code != 0 || !strings.Contains(out, "validated and reloaded") {
		t.Fatalf("first edge sync: exit %d, want a validated reload:\n%s", code, out)
	}
	t.Logf("first edge sync (%s):\n%s", time.Since(start).Round(10*time.Millisecond), out)
	for app, host := range map[string]string{edgeAppA: edgeHostA, edgeAppB: edgeHostB} {
		t.Logf("https://%s/ through the edge: %q", host, e.reaches(t, host, app))
	}
	t.Logf("both hosts answered %s after the sync started", time.Since(start).Round(10*time.Millisecond))
	for _, app := range []string{edgeAppA, edgeAppB} {
		t.Logf("%s's load-balancer address answered the host directly %s after the promotes returned", app, since(promoted, served[app]))
	}
	e.settled(t, 2)
	t.Logf("edge servers UP with passing checks %s after the sync started; %d DOWN events in HAProxy's log so far (a new server goes DOWN at its first failed check)",
		time.Since(start).Round(10*time.Millisecond), e.downs())
	unknown, err := e.h.Get(ctx, "nobody.company.example", "/")
	if err != nil {
		t.Fatal(err)
	}
	if unknown.Status != http.StatusNotFound || unknown.Body != "no app answers to this host name" || unknown.Cert != "edge.company.example" {
		t.Errorf("unknown host: %d %q with certificate %q, want the company's 404 with the default certificate", unknown.Status, unknown.Body, unknown.Cert)
	}

	// --- 2. blue/green of app A under load through the edge ---
	before, downs := e.procs(t), e.downs()
	switched := switchTime(ctx, t, edgeAppA)
	slow := &slowest{over: time.Second}
	l := startLoadWith("https://"+edgeHostA+"/", e.clients(t, slow, edgeHostA))
	start = time.Now()
	code, out = promoteNamed(t, dirs[edgeAppA], edgeAppA, "--image", v2)
	took := time.Since(start)
	total, answers, failures := l.finish(t)
	if code != 0 {
		t.Fatalf("promote %s v2: exit %d\n%s", edgeAppA, code, out)
	}
	report(t, "edge-a v1 -> v2 through the edge", took, total, answers, failures)
	t.Logf("  %s", slow)
	if n := failedCount(failures); n != 0 {
		t.Errorf("%d requests through the edge failed during the blue/green promote", n)
	}
	select {
	case at, ok := <-switched:
		if !ok {
			t.Fatal("the watch of the Service ended before its selector changed color")
		}
		firstV2, _ := l.firstLast("v2")
		_, lastV1 := l.firstLast("v1")
		t.Logf("Service switched at %s, +%s of the promote (watch event); through the edge: first v2 answer %s after the switch, last v1 answer %s after it (all traffic on v2 from then)", at.UTC().Format("15:04:05.000"),
			at.Sub(start).Round(time.Millisecond), firstV2.Sub(at).Round(time.Millisecond), lastV1.Sub(at).Round(time.Millisecond))
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if answers["v2"] == 0 {
		t.Errorf("no v2 answer through the edge: %v", answers)
	}
	if got := e.reaches(t, edgeHostA, edgeAppA); !strings.HasPrefix(got, "v2 ") {
		t.Errorf("after the promote %s answered %q, want v2", edgeHostA, got)
	}
	if code, out := e.sync(t); code != 0 || !strings.Contains(out, "already in sync") {
		t.Errorf("edge sync after a blue/green promote: exit %d, want already in sync:\n%s", code, out)
	}
	if after := e.procs(t); after.Reloads != before.Reloads {
		t.Errorf("HAProxy reloaded during the blue/green promote: %+v -> %+v", before, after)
	}
	if n := e.downs() - downs; n != 0 {
		t.Errorf("HAProxy marked a server DOWN %d times during the blue/green promote", n)
	}

	// --- 3. a broken certificate is refused; traffic keeps flowing ---
	broken := filepath.Join(e.certDir, edgeHostB2+".pem")
	if err := os.WriteFile(broken, []byte("-----BEGIN CERTIFICATE-----\nhalf written\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	specB2 := edgeSpec(edgeAppB, edgeHostB, edgeHostB2)
	if err := os.WriteFile(filepath.Join(dirs[edgeAppB], "tsys-ci.yaml"), []byte(specB2), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := promoteNamed(t, dirs[edgeAppB], edgeAppB, "--image", v1); code != 0 {
		t.Fatalf("promote %s with the second host name: exit %d\n%s", edgeAppB, code, out)
	}
	installed, before := e.files(t), e.procs(t)
	slow = &slowest{over: time.Second}
	la := startLoadWith("https://"+edgeHostA+"/", e.clients(t, slow, edgeHostA))
	lb := startLoadWith("https://"+edgeHostB+"/", e.clients(t, slow, edgeHostB))
	code, out = e.sync(t)
	t.Logf("edge sync with a broken certificate for %s: exit %d\n%s", edgeHostB2, code, out)
	if code == 0 || !strings.Contains(out, "does not validate") || !strings.Contains(out, broken) {
		t.Errorf("edge sync with a broken certificate: exit %d, want a refusal naming %s", code, broken)
	}
	if now := e.files(t); fmt.Sprint(now) != fmt.Sprint(installed) {
		t.Errorf("a refused configuration changed the installed files:\nbefore %v\nafter %v", installed, now)
	}
	if after := e.procs(t); after.Reloads != before.Reloads || after.Workers[0].PID != before.Workers[0].PID {
		t.Errorf("a refused configuration reloaded HAProxy: %+v -> %+v", before, after)
	}
	if a, err := e.h.Get(ctx, edgeHostB2, "/"); err != nil || a.Status != http.StatusNotFound {
		t.Errorf("%s before its certificate is fixed: %+v %v, want the company's 404 (not installed)", edgeHostB2, a, err)
	}
	// The certificate tooling writes a good one; the next sync installs it.
	start = time.Now()
	edgetest.WriteCert(t, broken, edgeHostB2)
	code, out = e.sync(t)
	if code != 0 || !strings.Contains(out, "validated and reloaded") {
		t.Errorf("edge sync with the certificate fixed: exit %d, want a validated reload:\n%s", code, out)
	}
	t.Logf("https://%s/ through the edge: %q (%s after the fix)", edgeHostB2, e.reaches(t, edgeHostB2, edgeAppB), time.Since(start).Round(10*time.Millisecond))
	for _, x := range []struct {
		name string
		l    *load
	}{{"edge-a", la}, {"edge-b", lb}} {
		total, answers, failures := x.l.finish(t)
		logLoad(t, x.name+" through the edge during the refused sync and the reload", total, answers, failures)
		if n := failedCount(failures); n != 0 {
			t.Errorf("%d requests to %s through the edge failed during the refused sync and the reload", n, x.name)
		}
	}
	t.Logf("  both apps: %s", slow)
	e.settled(t, 2) // the new worker's servers

	// --- 4. app B moves to another port: followed at run time ---
	ip, port := lbAddr(ctx, t, c, edgeAppB)
	moved := port + 1000 // outside promote's port range: no other app has it
	backend := edge.BackendName(edgeNS, edgeAppB, "http") + "/lb0"
	before, downs = e.procs(t), e.downs()
	slow = &slowest{over: time.Second}
	lb = startLoadWith("https://"+edgeHostB+"/", e.clients(t, slow, edgeHostB))
	start = time.Now()
	setServicePort(ctx, t, c, edgeAppB, moved)
	served[edgeAppB] = servedAt(ctx, ip, moved)
	code, out = e.sync(t)
	synced := time.Since(start)
	if code != 0 || !strings.Contains(out, "no reload") {
		t.Errorf("edge sync after the move: exit %d, want a change at run time:\n%s", code, out)
	}
	t.Logf("edge sync after moving %s from %s:%d to port %d (%s after the move):\n%s", edgeAppB, ip, port, moved, synced.Round(10*time.Millisecond), out)
	e.reaches(t, edgeHostB, edgeAppB)
	flowing := time.Since(start)
	moreAnswers(t, lb, 40)
	total, answers, failures = lb.finish(t)
	logLoad(t, "edge-b through the edge while it moved port (sync run by hand right after the move)", total, answers, failures)
	t.Logf("  %s", slow)
	t.Logf("edge-b answered through the edge %s after the move; its new port answered the host directly %s after it; %d DOWN events",
		flowing.Round(10*time.Millisecond), since(start, served[edgeAppB]), e.downs()-downs)
	hc := e.clients(t, nil, edgeHostB)["new-connection"]
	for i := 0; i < 20; i++ {
		if _, err := get(hc, "https://"+edgeHostB+"/"); err != nil {
			t.Errorf("request %d to %s after the move: %v", i, edgeHostB, err)
		}
	}
	after := e.procs(t)
	if after.Reloads != before.Reloads || after.Workers[0].PID != before.Workers[0].PID {
		t.Errorf("following a port change reloaded HAProxy: %+v -> %+v", before, after)
	}
	state, err := e.rt.ServersState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := state[backend]; s.Addr.String() != ip || s.Port != int(moved) {
		t.Errorf("runtime API: %s at %v, want %s:%d", backend, s, ip, moved)
	}
	t.Logf("runtime API: %s at %s:%d; master reloads %d, worker %d unchanged", backend, state[backend].Addr, state[backend].Port, after.Reloads, after.Workers[0].PID)

	// --- 5. --watch follows a second move from cluster events ---
	moved2 := port + 2000
	var log testenv.SyncBuffer
	watch := exec.Command(bin, append([]string{"edge", "sync", "--watch", "--debounce", "200ms"}, e.flags()...)...)
	watch.Stdout, watch.Stderr = &log, &log
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	watchDone := make(chan error, 1)
	go func() { watchDone <- watch.Wait() }()
	defer func() {
		if watch.ProcessState == nil {
			_ = watch.Process.Kill()
			<-watchDone
		}
	}()
	waitFor := func(what string, cond func(string) bool) {
		t.Helper()
		edgetest.WaitFor(t, 30*time.Second, what+" in the --watch log", func() error {
			if !cond(log.String()) {
				return fmt.Errorf("not yet; log:\n%s", log.String())
			}
			return nil
		})
	}
	changes := func(s string) int { return strings.Count(s, `msg="service changed"`) }
	waitFor("the two apps listed", func(s string) bool { return strings.Contains(s, "watching Services") && changes(s) >= 2 })
	before, downs = e.procs(t), e.downs()
	// A change the edge does not read: no line, no sync.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		svc, err := c.CoreV1().Services(edgeNS).Get(ctx, edgeAppB, metav1.GetOptions{})
		if err != nil {
			return err
		}
		svc.Annotations["edge-e2e/touched"] = "yes"
		_, err = c.CoreV1().Services(edgeNS).Update(ctx, svc, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slow = &slowest{over: time.Second}
	lb = startLoadWith("https://"+edgeHostB+"/", e.clients(t, slow, edgeHostB))
	start = time.Now()
	setServicePort(ctx, t, c, edgeAppB, moved2)
	served[edgeAppB] = servedAt(ctx, ip, moved2)
	waitFor("the runtime change", func(s string) bool { return strings.Contains(s, "action=runtime") })
	followed := time.Since(start)
	edgetest.WaitFor(t, 60*time.Second, "edge-b at its new port", func() error {
		state, err := e.rt.ServersState(ctx)
		if err == nil && state[backend].Port != int(moved2) {
			err = fmt.Errorf("%s at %v", backend, state[backend])
		}
		return err
	})
	e.reaches(t, edgeHostB, edgeAppB)
	flowing = time.Since(start)
	moreAnswers(t, lb, 40)
	total, answers, failures = lb.finish(t)
	logLoad(t, "edge-b through the edge while it moved again (followed by --watch)", total, answers, failures)
	t.Logf("  %s", slow)
	t.Logf("--watch: synced %s after the move, edge-b answered through the edge %s after it; its new port answered the host directly %s after it; %d DOWN events",
		followed.Round(10*time.Millisecond), flowing.Round(10*time.Millisecond), since(start, served[edgeAppB]), e.downs()-downs)
	if err := watch.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-watchDone:
		if err != nil {
			t.Errorf("edge sync --watch ended with %v after SIGTERM", err)
		}
	case <-ctx.Done():
		t.Fatal("edge sync --watch did not stop on SIGTERM")
	}
	t.Logf("--watch log:\n%s", log.String())
	if n := changes(log.String()); n != 3 {
		t.Errorf("%d 'service changed' lines, want 3: two apps listed at start, one port change (the annotation change is not the edge's)", n)
	}
	if !strings.Contains(log.String(), fmt.Sprintf("ports [http=%d/TCP] -> [http=%d/TCP]", moved, moved2)) {
		t.Errorf("the --watch log does not name the port change %d -> %d", moved, moved2)
	}
	if after := e.procs(t); after.Reloads != before.Reloads || after.Workers[0].PID != before.Workers[0].PID {
		t.Errorf("--watch reloaded HAProxy to follow a port change: %+v -> %+v", before, after)
	}
	t.Logf("HAProxy reloads during the whole test: %d (first install, certificate fixed)", reloads())
	if n := reloads(); n != 2 {
		t.Errorf("HAProxy reloaded %d times, want 2", n)
	}
}
