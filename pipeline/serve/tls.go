package serve

import (
	"crypto/tls"
	"fmt"
)

// serverTLS loads the certificate and key cfg names, or returns nil for
// plain HTTP (insecurePlainHTTP). A bad pair stops serve at start, not at
// the first handshake.
func serverTLS(cfg *Config) (*tls.Config, error) {
	if cfg.TLS == nil {
		if !cfg.InsecurePlainHTTP {
			return nil, fmt.Errorf("serve.yaml: tls missing; give tls.certFile and tls.keyFile, or insecurePlainHTTP: true")
		}
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("serve.yaml tls: loading certificate %s and key %s: %w; give PEM files of one pair (a kubernetes.io/tls Secret's tls.crt and tls.key)", cfg.TLS.CertFile, cfg.TLS.KeyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}
