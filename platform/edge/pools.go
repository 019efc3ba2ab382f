package edge

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	"github.com/tsys-group/tsys-ci/internal/contract"
	corev1 "k8s.io/api/core/v1"
)

// Pool is one version (color) of an app behind the edge: a top-level
// server of the app's backend, weighted in whole percent, that leads to
// its own HAProxy section with one server per node on the color Service's
// NodePort.
//
// Two levels, not one backend of node servers with weights spread over
// them, because the top level then gives promote exactly what it needs:
// the weights are exact whatever the number of nodes or replicas, they
// change with one runtime command per color, and HAProxy counts each
// version's real answers (requests, 5xx, errors, response time) on one
// server line each. The color level rides over a dead node: it retries a
// failed connection on another node of the same version, and its health
// checks take the node out in about a second.
type Pool struct {
	Color   string
	Name    string // the color's HAProxy section: BACKEND.COLOR
	Service string // NAMESPACE/SERVICE of the color Service, for messages
	Weight  int    // percent of the backend's requests, 0-100
	Servers []Server
}

// appKey names an app within the cluster.
type appKey struct{ namespace, app string }

// colorServices indexes the color Services (contract.ColorServiceName):
// labelled managed-by tsys-ci, with the app's name and a known color,
// of type NodePort. Anything else is not one, whatever its name.
func colorServices(services []corev1.Service) map[appKey]map[string]*corev1.Service {
	out := map[appKey]map[string]*corev1.Service{}
	for i := range services {
		svc := &services[i]
		color, app := svc.Labels[contract.LabelColor], svc.Labels[contract.LabelAppName]
		if svc.Labels[contract.LabelManagedBy] != contract.ManagedBy || app == "" ||
			!slices.Contains(Colors, color) || svc.Spec.Type != corev1.ServiceTypeNodePort {
			continue
		}
		k := appKey{svc.Namespace, app}
		if out[k] == nil {
			out[k] = map[string]*corev1.Service{}
		}
		out[k][color] = svc
	}
	return out
}

// pools builds the color pools of one HTTP port of the app Service svc,
// or none when the app keeps the one-level shape (its load-balancer
// address): when it has no color Service with that port, or when the
// colors its weights need have none yet (the app was promoted before
// color Services existed, and the new color's Service is being created).
//
// Weights come from the tsys-ci.io/edge-weights annotation; without it
// the color the Service selects gets 100 (both selected: equal). A bad
// annotation is the app's problem, reported like any bad claim, and the
// app is served with those default weights meanwhile: the version the
// app Service selects is the one promote last made live.
func (b *builder) pools(svc *corev1.Service, app, backend, port string) []Pool {
	key := appKey{svc.Namespace, svc.Labels[contract.LabelAppName]}
	if key.app == "" {
		key.app = svc.Name
	}
	nodePorts := map[string]int{}
	for color, cs := range b.colors[key] {
		if p, ok := findPort(cs, port); ok && p.NodePort != 0 {
			nodePorts[color] = int(p.NodePort)
		}
	}
	if len(nodePorts) == 0 {
		return nil
	}
	weights := defaultWeights(svc, nodePorts)
	if v, ok := svc.Annotations[contract.AnnotationEdgeWeights]; ok {
		w, err := ParseWeights(v)
		if err == nil {
			err = needServices(w, nodePorts, svc, port)
		}
		if err != nil {
			b.problem("app %s: %v; served with the default weights (%s) until it is fixed", app, err, defaultText(weights))
		} else {
			weights = w
		}
	}
	if needServices(weights, nodePorts, svc, port) != nil {
		return nil // the one-level shape through the Service's address
	}
	var pools []Pool
	for _, color := range slices.Sorted(maps.Keys(nodePorts)) {
		p := Pool{Color: color, Name: backend + "." + color, Weight: weights[color],
			Service: svc.Namespace + "/" + b.colors[key][color].Name}
		for _, n := range b.nodes {
			p.Servers = append(p.Servers, Server{Name: n.Name, Addr: n.Addr, Port: nodePorts[color]})
		}
		pools = append(pools, p)
	}
	return pools
}

// candidate is the color the Service's tsys-ci.io/edge-candidate names,
// if it is one of pools; otherwise none (a promote whose new color's
// Service is still being created, or none under way).
func candidate(svc *corev1.Service, pools []Pool) string {
	c := svc.Annotations[contract.AnnotationEdgeCandidate]
	for _, p := range pools {
		if c != "" && p.Color == c {
			return c
		}
	}
	return ""
}

// defaultWeights: the selected color gets 100; a Service selecting both
// colors (a weighted canary of pod ratios) splits equally between those
// with a color Service.
func defaultWeights(svc *corev1.Service, nodePorts map[string]int) map[string]int {
	if c, ok := svc.Spec.Selector[contract.LabelColor]; ok {
		return map[string]int{c: 100}
	}
	w := map[string]int{}
	colors := slices.Sorted(maps.Keys(nodePorts))
	for i, c := range colors {
		w[c] = 100 / len(colors)
		if i < 100%len(colors) {
			w[c]++
		}
	}
	return w
}

func defaultText(w map[string]int) string {
	if len(w) == 0 {
		return "none"
	}
	return FormatWeights(w)
}

// needServices checks that every color given traffic has a color Service
// with the port.
func needServices(w map[string]int, nodePorts map[string]int, svc *corev1.Service, port string) error {
	for _, c := range slices.Sorted(maps.Keys(w)) {
		if _, ok := nodePorts[c]; w[c] > 0 && !ok {
			return fmt.Errorf("annotation %s gives %s %d%%, but there is no Service %s/%s of type NodePort labelled %s=%s with port %q (rollout creates it with the color's Deployment)",
				contract.AnnotationEdgeWeights, c, w[c], svc.Namespace, contract.ColorServiceName(svc.Labels[contract.LabelAppName], c), contract.LabelColor, c, port)
		}
	}
	return nil
}

// maxABNS is the longest abstract socket name HAProxy 2.6 accepts (the
// 108 bytes of sun_path less the leading NUL; checked with haproxy -c).
const maxABNS = 107

// PoolAddress is the abstract Unix socket (Linux's abstract namespace:
// no file, no permissions to manage, gone with the process) joining an
// app's backend to one color's section. prefix tells HAProxy processes
// sharing the host's network namespace apart (the namespace is per host,
// not per process): empty, the name is the pool's section name; otherwise
// PREFIX:SECTION. A name too long for a socket is shortened to a hash of
// the section name, still unique and stable.
func PoolAddress(prefix, pool string) string {
	name := pool
	if prefix != "" {
		name = prefix + ":" + pool
	}
	if len(name) > maxABNS {
		sum := sha256.Sum256([]byte(pool))
		name = "tsys-ci." + hex.EncodeToString(sum[:16])
		if prefix != "" {
			name = prefix + ":" + name
		}
	}
	return "abns@" + name
}
