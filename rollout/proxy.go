package rollout

import (
	"fmt"
	"net/http"
	"strings"

	"k8s.io/client-go/rest"
)

// ServiceProxy returns a ProbeTarget that reaches Services through the API
// server's service proxy (/api/v1/namespaces/NS/services/http:SVC:PORT/proxy),
// with the credentials of cfg: probes work from wherever the promote runs,
// a Jenkins agent or a laptop, without a route into the cluster. A probe's
// Host header reaches the app (checked against kube-apiserver 1.34 in
// rollout/clustertest).
func ServiceProxy(cfg *rest.Config) (ProbeTarget, error) {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("building an HTTP client for the API server: %w", err)
	}
	host := strings.TrimSuffix(cfg.Host, "/")
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	return func(namespace, service, port string) (string, *http.Client) {
		return fmt.Sprintf("%s/api/v1/namespaces/%s/services/http:%s:%s/proxy", host, namespace, service, port), client
	}, nil
}
