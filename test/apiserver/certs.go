package apiserver

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/tsys-group/tsys-ci/test/pki"
)

// certs holds the paths and PEM bytes of one test server's certificates.
type certs struct {
	caCert, serverCert, serverKey, saKey, saPub string
	caPEM, adminCertPEM, adminKeyPEM            []byte
}

// writePKI makes a CA, the server's serving certificate for 127.0.0.1, an
// admin client certificate in system:masters and the service-account keys.
func writePKI(dir string) (*certs, error) {
	d := filepath.Join(dir, "pki")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, err
	}
	ca, err := pki.NewCA("tsys-ci test CA")
	if err != nil {
		return nil, err
	}
	p := &certs{caPEM: ca.CertPEM}
	if p.caCert, _, err = pki.WriteFiles(d, "ca", ca.CertPEM, ca.KeyPEM); err != nil {
		return nil, err
	}
	server, err := ca.Issue(pki.Request{
		CommonName: "kube-apiserver",
		DNSNames:   []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 0, 0, 1)},
		Server:     true,
	})
	if err != nil {
		return nil, err
	}
	if p.serverCert, p.serverKey, err = pki.WriteFiles(d, "apiserver", server.CertPEM, server.KeyPEM); err != nil {
		return nil, err
	}
	admin, err := ca.Issue(pki.Request{CommonName: "tsys-ci-test-admin", Organizations: []string{"system:masters"}, Client: true})
	if err != nil {
		return nil, err
	}
	p.adminCertPEM, p.adminKeyPEM = admin.CertPEM, admin.KeyPEM
	priv, pub, err := pki.ServiceAccountKey()
	if err != nil {
		return nil, err
	}
	p.saKey = filepath.Join(d, "sa.key")
	p.saPub = filepath.Join(d, "sa.pub")
	if err := os.WriteFile(p.saKey, priv, 0o600); err != nil {
		return nil, fmt.Errorf("writing %s: %w", p.saKey, err)
	}
	if err := os.WriteFile(p.saPub, pub, 0o644); err != nil {
		return nil, fmt.Errorf("writing %s: %w", p.saPub, err)
	}
	return p, nil
}

func kubeconfig(host string, p *certs) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, host, b64(p.caPEM), b64(p.adminCertPEM), b64(p.adminKeyPEM))
}
