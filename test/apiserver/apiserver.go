// Package apiserver runs a real etcd and kube-apiserver on loopback for
// integration tests, so code that talks to Kubernetes is tested against the
// real API server's behaviour (validation, server-side apply, conflicts,
// watches) instead of a fake clientset.
//
// One server per test binary: start it in TestMain with RunTests (or Start
// and Stop), and give every test its own namespace. The binaries come from
// scripts/k8s-bins.sh (the same build the lab runs), built on first use and
// cached under ~/.cache/tsys-ci/k8s/.
//
// No controller-manager, scheduler or kubelet runs: objects are stored and
// validated, but Deployments make no Pods and Pods never run. The
// ServiceAccount admission plugin is off so Pods can be created in a fresh
// namespace without the token controller.
package apiserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tsys-group/tsys-ci/test/testenv"
	"k8s.io/client-go/rest"
)

// BinDirEnv names a directory holding kube-apiserver and etcd to use instead
// of running scripts/k8s-bins.sh.
const BinDirEnv = "TSYS_CI_K8S_BINS"

// Options tune Start. The zero value is ready to use.
type Options struct {
	// BinDir holds kube-apiserver and etcd; empty means $TSYS_CI_K8S_BINS,
	// else the directory scripts/k8s-bins.sh prints (building if needed).
	BinDir string
	// ReadyTimeout bounds the wait for /readyz to answer 200 (default 90 s).
	ReadyTimeout time.Duration
	// Progress receives human progress lines (default os.Stderr).
	Progress io.Writer
	// ExtraAPIServerArgs are appended to kube-apiserver's flags.
	ExtraAPIServerArgs []string
}

// Server is a running etcd plus kube-apiserver.
type Server struct {
	// Config reaches the API server as a member of system:masters.
	Config *rest.Config
	// Kubeconfig is a kubeconfig file with the same credentials, for kubectl.
	Kubeconfig string
	// Kubectl is the kubectl built with the server (scripts/k8s-bins.sh),
	// for tests that type what a person types; "" when the binaries'
	// directory has none (TSYS_CI_K8S_BINS set to one without it).
	Kubectl string
	// Dir holds certificates, etcd's data and both logs.
	Dir string

	etcd, apiserver *process
}

type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// Start launches etcd and kube-apiserver on free loopback ports in a new
// temporary directory and returns once /readyz answers 200. On error
// everything started is stopped again and the error carries the tail of the
// failing program's log.
func Start(ctx context.Context, opts Options) (_ *Server, err error) {
	if opts.Progress == nil {
		opts.Progress = os.Stderr
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 90 * time.Second
	}
	bin, err := binDir(ctx, opts)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tsys-ci-apiserver-")
	if err != nil {
		return nil, fmt.Errorf("making the API server's temporary directory: %w", err)
	}
	s := &Server{Dir: dir}
	if _, err := os.Stat(filepath.Join(bin, "kubectl")); err == nil {
		s.Kubectl = filepath.Join(bin, "kubectl")
	}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()

	pki, err := writePKI(dir)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdClient := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	etcdPeer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	apiPort := ports[2]

	s.etcd, err = launch(filepath.Join(bin, "etcd"), filepath.Join(dir, "etcd.log"),
		"--name=test",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdClient,
		"--advertise-client-urls="+etcdClient,
		"--listen-peer-urls="+etcdPeer,
		"--initial-advertise-peer-urls="+etcdPeer,
		"--initial-cluster=test="+etcdPeer,
		"--unsafe-no-fsync", // a test's data need not survive a power cut
		"--log-level=warn",
	)
	if err != nil {
		return nil, err
	}
	args := []string{
		"--etcd-servers=" + etcdClient,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--tls-cert-file=" + pki.serverCert,
		"--tls-private-key-file=" + pki.serverKey,
		"--client-ca-file=" + pki.caCert,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + pki.saPub,
		"--service-account-signing-key-file=" + pki.saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		"--disable-admission-plugins=ServiceAccount",
		"--profiling=false",
	}
	s.apiserver, err = launch(filepath.Join(bin, "kube-apiserver"), filepath.Join(dir, "kube-apiserver.log"),
		append(args, opts.ExtraAPIServerArgs...)...)
	if err != nil {
		return nil, err
	}

	host := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	s.Config = &rest.Config{
		Host: host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   pki.caPEM,
			CertData: pki.adminCertPEM,
			KeyData:  pki.adminKeyPEM,
		},
		QPS:   100,
		Burst: 200,
	}
	s.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(s.Kubeconfig, kubeconfig(host, pki), 0o600); err != nil {
		return nil, fmt.Errorf("writing %s: %w", s.Kubeconfig, err)
	}

	fmt.Fprintf(opts.Progress, "apiserver: waiting for %s/readyz (logs in %s)\n", host, dir)
	start := time.Now()
	if err := s.waitReady(ctx, pki, opts.ReadyTimeout); err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Progress, "apiserver: ready in %s\n", time.Since(start).Round(10*time.Millisecond))
	return s, nil
}

// waitReady polls /readyz until it answers 200: before RBAC's bootstrap it
// answers 403 or 500, and clients started then see errors no real cluster
// shows.
func (s *Server) waitReady(ctx context.Context, pki *certs, timeout time.Duration) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pki.caPEM)
	cert, err := tls.X509KeyPair(pki.adminCertPEM, pki.adminKeyPEM)
	if err != nil {
		return fmt.Errorf("loading the admin client certificate: %w", err)
	}
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs:      pool,
			Certificates: []tls.Certificate{cert},
		}},
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for {
		for _, p := range []*process{s.etcd, s.apiserver} {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited before the API server was ready (%v); last lines of %s:\n%s",
					p.name, p.err, p.log, tail(p.log, 20))
			default:
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Config.Host+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver at %s not ready within %s (last: %s); last lines of %s:\n%s",
				s.Config.Host, timeout, last, s.apiserver.log, tail(s.apiserver.log, 20))
		case <-tick.C:
		}
	}
}

// Stop ends both programs and removes the temporary directory. Safe to call
// more than once and on a partly started Server.
func (s *Server) Stop() {
	if s == nil {
		return
	}
	s.apiserver.stop()
	s.etcd.stop()
	if s.Dir != "" {
		os.RemoveAll(s.Dir)
		s.Dir = ""
	}
}

func launch(path, logPath string, args ...string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", logPath, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Its own process group, and killed with the test binary if that dies
	// first (a test timeout panics without running cleanups).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	p := &process{name: filepath.Base(path), cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) stop() {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// freePorts asks the kernel for n distinct free loopback ports. They are
// released before the programs bind them; another process could take one in
// between, which shows as a clear "address already in use" in the log.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free loopback port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// binDir finds kube-apiserver and etcd, building them if needed.
func binDir(ctx context.Context, opts Options) (string, error) {
	dir := opts.BinDir
	if dir == "" {
		dir = os.Getenv(BinDirEnv)
	}
	if dir != "" {
		for _, n := range []string{"kube-apiserver", "etcd"} {
			if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
				return "", fmt.Errorf("%s in %s: %w (run scripts/k8s-bins.sh, or unset %s)", n, dir, err, BinDirEnv)
			}
		}
		return dir, nil
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", fmt.Errorf("%w, or set %s", err, BinDirEnv)
	}
	script := filepath.Join(root, "scripts", "k8s-bins.sh")
	cmd := exec.CommandContext(ctx, script)
	cmd.Dir = root
	cmd.Stderr = opts.Progress
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("building the Kubernetes binaries with %s: %w (its progress and errors are above)", script, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
