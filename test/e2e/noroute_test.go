//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// startAppLoad is startLoad for the tests of a promote, which kill no node:
// a request that failed with no route to host is set apart rather than
// counted as failed, if the Service behind the address has a ready
// endpoint right after. That is the lab's network failing, not the
// promote. Seen in CI and again here, in TestServeDeploysHarborPushes-
// AndSurvivesLeaderKill, with the Service's endpoints ready throughout:
// a capture on the lab's bridge showed the node announcing the address
// (MetalLB, layer 2) take the SYN, find no kube-proxy rule for the
// address at that moment, route it back onto the bridge, ask ARP for the
// address itself and answer ICMP host unreachable after 3 s. The six
// nodes share 2 cores at a load of 10-20 then (MetalLB's speakers failed
// their liveness probes in the same runs). A promote that leaves the
// Service with no ready endpoint stays a failure (kube-proxy refuses
// those: connection refused), as does every other error. The drills
// that stop nodes use startLoad: there, no route to host is the outage
// they measure.
func startAppLoad(t *testing.T, rawURL string) *load {
	t.Helper()
	c := client(t)
	return startLoadChecked(rawURL, defaultClients(), func() (string, bool) {
		return readyBehind(c, rawURL)
	})
}

// readyBehind finds the LoadBalancer Service that serves the URL's address
// and port and says whether it has a ready endpoint now, with the endpoints
// it saw.
func readyBehind(c kubernetes.Interface, rawURL string) (string, bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err.Error(), false
	}
	host, portText, err := net.SplitHostPort(u.Host)
	if err != nil {
		return err.Error(), false
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return err.Error(), false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	svcs, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return "listing Services: " + err.Error(), false
	}
	for _, s := range svcs.Items {
		on := false
		for _, in := range s.Status.LoadBalancer.Ingress {
			on = on || in.IP == host
		}
		for _, p := range s.Spec.Ports {
			if !on || int(p.Port) != port {
				continue
			}
			slices, err := c.DiscoveryV1().EndpointSlices(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + s.Name})
			if err != nil {
				return "listing the EndpointSlices of " + s.Namespace + "/" + s.Name + ": " + err.Error(), false
			}
			var ready []string
			for _, sl := range slices.Items {
				for _, e := range sl.Endpoints {
					if e.Conditions.Ready != nil && *e.Conditions.Ready {
						ready = append(ready, strings.Join(e.Addresses, ","))
					}
				}
			}
			return fmt.Sprintf("Service %s/%s had ready endpoints %v", s.Namespace, s.Name, ready), len(ready) > 0
		}
	}
	return "no LoadBalancer Service on " + u.Host, false
}
