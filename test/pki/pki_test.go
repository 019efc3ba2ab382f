package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
)

func TestIssuedCertificatesVerifyAgainstTheCA(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath, err := WriteFiles(dir, "ca", ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCA(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := loaded.Issue(Request{
		CommonName: "kube-apiserver", Organizations: []string{"system:masters"},
		DNSNames: []string{"db1"}, IPs: []net.IP{net.IPv4(10, 0, 0, 1)}, Server: true, Client: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM); err != nil {
		t.Fatalf("issued pair does not match: %v", err)
	}
	block, _ := pem.Decode(pair.CertPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "db1", KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("verify for usage %v: %v", usage, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "db2"}); err == nil {
		t.Error("certificate verified for a name it does not carry")
	}
	other, _ := NewCA("other CA")
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(other.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: otherRoots, DNSName: "db1"}); err == nil {
		t.Error("certificate verified against a CA that did not sign it")
	}
	if cert.Subject.Organization[0] != "system:masters" {
		t.Errorf("organizations = %v", cert.Subject.Organization)
	}
}
