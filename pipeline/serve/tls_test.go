package serve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/pki"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// Issue 17 finding 5: serve listens with TLS (certificate and key named in
// serve.yaml); plain HTTP only with insecurePlainHTTP, and then it warns.
func TestServeTLS(t *testing.T) {
	data, err := os.ReadFile("testdata/serve/serve.yaml")
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(data), "insecurePlainHTTP: true\n", "", 1)
	if _, err := ParseConfig([]byte(old), "testdata/serve"); err == nil || !strings.Contains(err.Error(), "tls: missing; add `tls: {certFile:") {
		t.Fatalf("a config with neither tls nor insecurePlainHTTP: %v", err)
	}

	ca, err := pki.NewCA("serve test CA")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(pki.Request{CommonName: "tsys-ci-serve", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile, err := pki.WriteFiles(dir, "serve", pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]byte(old+"tls: {certFile: "+certFile+", keyFile: "+keyFile+"}\n"), "testdata/serve")
	if err != nil {
		t.Fatal(err)
	}
	l, logs := runTestServer(t, cfg)

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	testenv.Eventually(t, "readyz over https", 10*time.Second, func() bool {
		resp, err := client.Get("https://" + l.Addr().String() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	// Plain HTTP is not answered as HTTP.
	if resp, err := http.Get("http://" + l.Addr().String() + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200 on a TLS listener")
		}
	}
	if lines := logs.Lines("serving"); len(lines) != 1 || lines[0]["scheme"] != "https" {
		t.Fatalf("serving log %v", lines)
	}

	// A key that is not the certificate's stops serve at start.
	other, _ := ca.Issue(pki.Request{CommonName: "other", Server: true})
	_, badKey, _ := pki.WriteFiles(t.TempDir(), "other", other.CertPEM, other.KeyPEM)
	cfg.TLS.KeyFile = badKey
	if _, err := NewServer(ServerOptions{Config: cfg, WebhookSecrets: testSecrets}); err == nil || !strings.Contains(err.Error(), "loading certificate") {
		t.Fatalf("mismatched key: %v", err)
	}
}

func TestServePlainHTTPWarns(t *testing.T) {
	cfg, err := LoadConfig("testdata/serve/serve.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, logs := runTestServer(t, cfg)
	testenv.Eventually(t, "the plain HTTP warning", 10*time.Second, func() bool {
		w := logs.Lines("serving plain HTTP (insecurePlainHTTP): webhook secrets and directory passwords cross the network in clear; give serve.yaml tls a certificate and key")
		return len(w) == 1 && w[0]["level"] == "WARN"
	})
}

// runTestServer runs serve with cfg on a loopback port until the test ends
// and returns its listener and its log.
func runTestServer(t *testing.T, cfg *Config) (net.Listener, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	s, err := NewServer(ServerOptions{Config: cfg, WebhookSecrets: testSecrets, Deployer: newRecordingDeployer(), Clock: newTestClock(),
		Log: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- Run(ctx, RunOptions{Server: s, Listener: l, ShutdownTimeout: 10 * time.Second}) }()
	t.Cleanup(func() { stop(); <-ran })
	return l, logs
}
