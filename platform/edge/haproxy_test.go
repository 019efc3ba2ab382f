package edge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"
)

// companyConfig is the company's own haproxy.cfg as docs/edge.md tells the
// administrator to write it: the edge directory set with presetenv, the
// crt-list on the HTTPS bind line, one use_backend rule reading the host map.
var companyConfig = template.Must(template.New("haproxy.cfg").Parse(`global
    presetenv TSYS_CI_EDGE_DIR {{.EdgeDir}}
    stats socket {{.StatsSocket}} mode 600 level admin expose-fd listeners
    pidfile {{.Dir}}/haproxy.pid

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend https
    bind {{.HTTPSAddr}} ssl crt {{.DefaultCert}} crt-list "${TSYS_CI_EDGE_DIR}/crt-list"
    use_backend %[req.hdr(host),host_only,lower,map("${TSYS_CI_EDGE_DIR}/hosts.map")]
    default_backend no-app

backend no-app
    http-request return status 404 content-type text/plain string "no app answers to this host name"
`))

type company struct {
	Dir, EdgeDir, StatsSocket, HTTPSAddr, DefaultCert string
}

// writeCompany writes the company's configuration and its default
// certificate into dir and returns the configuration's path.
func writeCompany(t *testing.T, c company) string {
	t.Helper()
	if c.DefaultCert == "" {
		c.DefaultCert = filepath.Join(c.Dir, "default.pem")
		writeCert(t, c.DefaultCert, "edge.company.example")
	}
	if c.StatsSocket == "" {
		c.StatsSocket = filepath.Join(c.Dir, "stats.sock")
	}
	if c.HTTPSAddr == "" {
		c.HTTPSAddr = "127.0.0.1:8443" // only checked, never bound, unless a test chooses a free port
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

// writeCert writes a self-signed certificate and its key for host into one
// PEM file, as HAProxy's crt and crt-list read them.
func writeCert(t *testing.T, path, host string) {
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

// haproxyCheck runs the real `haproxy -c` on the company configuration plus
// the fragment in edgeDir, as the running HAProxy would load them.
func haproxyCheck(t *testing.T, haproxy, companyCfg, edgeDir string) {
	t.Helper()
	cmd := exec.Command(haproxy, "-c", "-f", companyCfg, "-f", filepath.Join(edgeDir, FileConfig))
	cmd.Env = append(os.Environ(), EnvEdgeDir+"="+edgeDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c rejected the rendered configuration: %v\n%s", err, out)
	}
}
