package edge

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tsys-group/tsys-ci/internal/contract"
	corev1 "k8s.io/api/core/v1"
)

// Model is what the edge must serve, built from the cluster's Services. Every
// list is sorted, so rendering a Model is deterministic.
type Model struct {
	Backends     []Backend     // sorted by Name
	Routes       []Route       // sorted by Host
	TCPFrontends []TCPFrontend // sorted by Port
	// Pending names the exposed ports that have no load-balancer address yet;
	// their backends have no servers and answer 503 until one is assigned.
	Pending []string
}

// Backend is one exposed port of one app, aimed at its load-balancer address.
type Backend struct {
	Name     string   // HAProxy backend name: tsys-ci.NAMESPACE.SERVICE.PORTNAME
	App      string   // NAMESPACE/APP, for messages
	PortName string   // the Service port name
	Mode     string   // "http" or "tcp"
	Hosts    []string // sorted; HTTP only
	// Servers are the app's load-balancer addresses, one server each,
	// sorted by Name; empty when Pools are set.
	Servers []Server
	// Candidate, with Pools, is the color being promoted (a Pool's Color,
	// from tsys-ci.io/edge-candidate): requests with the canary header go
	// there whatever the weights. Empty without a promote under way.
	Candidate string
	// ResendAfterMs, with Pools, is the annotation's resendAfterMs: each
	// version's section resends an idempotent request unanswered after it.
	ResendAfterMs int
	// Sticky, with Pools: a cookie keeps each browser on one version
	// while that version has weight.
	Sticky bool
	// Pools, when set, are the app's versions, one per color that has a
	// color Service, sorted by Color: the backend's servers are the
	// colors, weighted, and each color spreads over the nodes (pools.go).
	Pools []Pool
}

// Server is one address of a Backend or Pool; HAProxy knows it as
// Backend.Name/Name (Pool.Name/Name).
type Server struct {
	Name string // lb0, lb1, ... in address order; in a Pool the node's name
	Addr netip.Addr
	Port int
}

// Route sends requests whose Host header is Host to Backend.
type Route struct {
	Host    string
	Backend string
}

// TCPFrontend passes connections on Port of the edge through to Backend.
type TCPFrontend struct {
	Port    int
	Backend string
	App     string
}

// Options are the edge host's own facts: the ports it uses itself, the
// address TCP frontends bind, and where certificates live.
type Options struct {
	// ReservedPorts are the edge's own ports (HTTP, HTTPS, stats...); no
	// pass-through frontend may take them.
	ReservedPorts []int
	// TCPBind is the address pass-through frontends listen on; empty means
	// every address of the edge host.
	TCPBind string
	// CertDir holds one PEM file per host name, HOST.pem (certificate, chain
	// and key), as the company's certificate tooling writes them.
	CertDir string
	// Owners says which namespaces may claim which host names and TCP
	// ports; a claim outside it is left out and reported. nil checks
	// nothing: the CLI always sets it (--owners), tests may not.
	Owners *Owners
	// SocketPrefix starts the names of the abstract sockets that join an
	// app's backend to its color sections (PoolAddress); empty is
	// "tsys-ci". Two HAProxy processes on one host (network namespace)
	// need different prefixes: the abstract namespace is shared.
	SocketPrefix string
	// ByVersion serves an HTTP port of an app that has color Services by
	// version: one weighted server per color, each spreading over the
	// nodes (pools.go), instead of one server on the load-balancer
	// address. Promote then moves traffic by weights that only a syncing
	// edge applies, so it is for an edge kept by 'edge sync --watch'; it
	// also makes the edge read Nodes.
	ByVersion bool
}

// DefaultOptions are the values for a standard edge host.
func DefaultOptions() Options {
	return Options{ReservedPorts: []int{22, 80, 443}, CertDir: "/etc/haproxy/certs"}
}

// InputError lists everything wrong with the cluster's edge wiring. Each
// problem is one app's claim, left out of the Model; the rest of the
// Model is good and is applied (one app's bad claim never stops the other
// apps' updates, issue 17 finding 6).
type InputError struct {
	Problems []string // sorted, each naming the apps involved
}

// BadInput marks the cluster's edge wiring as the user's to fix: the CLI
// exits 2 on it.
func (e *InputError) BadInput() bool { return true }

func (e *InputError) Error() string {
	return fmt.Sprintf("the edge wiring of the cluster has %d problem(s); those claims were left out, everything else is applied:\n  %s",
		len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// Build turns Services and Nodes into the edge Model. Services not managed by tsys-ci
// or without the tsys-ci.io/edge annotation are ignored. A claim that is
// wrong (a Service the edge cannot use, a host name or port outside the
// namespace's Owners, a host or port another app already holds) is left out
// of the Model; all problems are collected into one *InputError, returned
// together with the Model of everything else, so a user fixes them in one
// pass and the other apps are synced meanwhile. When two apps claim one
// host or port, the older Service (creation time, then namespace/name)
// keeps it. Nodes matter only with Options.ByVersion (pools.go).
func Build(services []corev1.Service, nodes []corev1.Node, opts Options) (*Model, error) {
	b := builder{opts: opts, hosts: map[string][]claim{}, tcp: map[int][]claim{}, owner: map[string]string{}}
	sorted := slices.Clone(services)
	slices.SortFunc(sorted, func(x, y corev1.Service) int {
		return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Name, y.Name))
	})
	b.colors = colorServices(sorted)
	b.nodes = EdgeNodes(nodes)
	for i := range sorted {
		b.addService(&sorted[i])
	}
	b.checkClaims()
	m := &b.model
	slices.SortFunc(m.Backends, func(x, y Backend) int { return cmp.Compare(x.Name, y.Name) })
	slices.SortFunc(m.Routes, func(x, y Route) int { return cmp.Compare(x.Host, y.Host) })
	slices.SortFunc(m.TCPFrontends, func(x, y TCPFrontend) int { return cmp.Compare(x.Port, y.Port) })
	sort.Strings(m.Pending)
	if len(b.problems) > 0 {
		sort.Strings(b.problems)
		return m, &InputError{Problems: slices.Compact(b.problems)}
	}
	return m, nil
}

type builder struct {
	opts     Options
	model    Model
	problems []string
	hosts    map[string][]claim // host -> the app ports claiming it
	tcp      map[int][]claim    // tcp frontend port -> the app ports claiming it
	owner    map[string]string  // backend -> "NAMESPACE/APP (port P)"
	colors   map[appKey]map[string]*corev1.Service
	nodes    []Node
}

// claim is one app port's claim of a host name or TCP port.
type claim struct {
	owner     string // "NAMESPACE/APP (port P)"
	namespace string
	backend   string
	created   time.Time
}

// older orders claims: the older Service first, then by name.
func older(x, y claim) int {
	return cmp.Or(x.created.Compare(y.created), cmp.Compare(x.owner, y.owner))
}

func (b *builder) problem(format string, args ...any) {
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// AppOf names the app a Service belongs to as NAMESPACE/APP.
func AppOf(svc *corev1.Service) string {
	name := svc.Labels[contract.LabelAppName]
	if name == "" {
		name = svc.Name
	}
	return svc.Namespace + "/" + name
}

// Managed reports whether the edge looks at svc at all.
func Managed(svc *corev1.Service) bool {
	_, ok := svc.Annotations[contract.AnnotationEdge]
	return ok && svc.Labels[contract.LabelManagedBy] == contract.ManagedBy
}

func (b *builder) addService(svc *corev1.Service) {
	if !Managed(svc) {
		return
	}
	app := AppOf(svc)
	exposures, err := ParseAnnotation(svc.Annotations[contract.AnnotationEdge])
	if err != nil {
		b.problem("app %s (Service %s/%s): %v", app, svc.Namespace, svc.Name, err)
		return
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		b.problem("app %s: Service %s/%s is of type %q; the edge needs a LoadBalancer Service (promote creates one)",
			app, svc.Namespace, svc.Name, svc.Spec.Type)
		return
	}
	addrs, err := ingressAddrs(svc)
	if err != nil {
		b.problem("app %s: %v", app, err)
		return
	}
	for _, e := range exposures {
		b.addExposure(svc, app, e, addrs)
	}
}

func ingressAddrs(svc *corev1.Service) ([]netip.Addr, error) {
	var addrs []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP == "" {
			return nil, fmt.Errorf("Service %s/%s has a load-balancer ingress without an IP (hostname %q); the edge needs addresses (MetalLB gives them)",
				svc.Namespace, svc.Name, in.Hostname)
		}
		a, err := netip.ParseAddr(in.IP)
		if err != nil {
			return nil, fmt.Errorf("Service %s/%s has load-balancer ingress IP %q that is not an IP address", svc.Namespace, svc.Name, in.IP)
		}
		addrs = append(addrs, a.Unmap())
	}
	slices.SortFunc(addrs, func(x, y netip.Addr) int { return x.Compare(y) })
	return slices.Compact(addrs), nil
}

func (b *builder) addExposure(svc *corev1.Service, app string, e Exposure, addrs []netip.Addr) {
	sp, ok := findPort(svc, e.Port)
	if !ok {
		b.problem("app %s: annotation %s names port %q, but Service %s/%s has ports %s",
			app, contract.AnnotationEdge, e.Port, svc.Namespace, svc.Name, portNames(svc))
		return
	}
	if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
		b.problem("app %s: port %q is %s; the edge passes only TCP", app, e.Port, sp.Protocol)
		return
	}
	be := Backend{
		Name:     BackendName(svc.Namespace, svc.Name, e.Port),
		App:      app,
		PortName: e.Port,
		Mode:     "http",
		Hosts:    slices.Sorted(slices.Values(e.Hosts)),
		// Used only by the sections of Pools; kept either way so that the
		// one-level shape renders the same bytes with or without it.
		ResendAfterMs: e.ResendAfterMs,
		Sticky:        e.Sticky,
	}
	owner := fmt.Sprintf("%s (port %s)", app, e.Port)
	c := claim{owner: owner, namespace: svc.Namespace, backend: be.Name, created: svc.CreationTimestamp.Time}
	if e.TCPFrontendPort != 0 {
		be.Mode = "tcp"
		b.tcp[e.TCPFrontendPort] = append(b.tcp[e.TCPFrontendPort], c)
	}
	for _, h := range be.Hosts {
		b.hosts[h] = append(b.hosts[h], c)
	}
	if be.Mode == "http" && b.opts.ByVersion {
		be.Pools = b.pools(svc, app, be.Name, e.Port)
		be.Candidate = candidate(svc, be.Pools)
	}
	if len(be.Pools) == 0 {
		for i, a := range addrs {
			be.Servers = append(be.Servers, Server{Name: "lb" + strconv.Itoa(i), Addr: a, Port: int(sp.Port)})
		}
	}
	b.model.Backends = append(b.model.Backends, be)
	b.owner[be.Name] = owner
}

// checkClaims decides every host and TCP port claim: a claim outside the
// namespace's Owners, of one of the edge's own ports, or of a host or port
// an older claim holds is left out and reported; the rest become routes
// and frontends. Backends left with nothing to serve are dropped.
func (b *builder) checkClaims() {
	routed := map[string][]string{} // backend -> hosts it keeps
	fronted := map[string]bool{}    // backend -> keeps its TCP frontend
	for _, h := range slices.Sorted(maps.Keys(b.hosts)) {
		var allowed []claim
		for _, c := range b.hosts[h] {
			if ok, rule := b.allowHost(c.namespace, h); !ok {
				b.problem("host %q claimed by %s is refused: %s; left out", h, c.owner, rule)
				continue
			}
			allowed = append(allowed, c)
		}
		if len(allowed) == 0 {
			continue
		}
		slices.SortFunc(allowed, older)
		if len(allowed) > 1 {
			b.problem("host %q is claimed by %s; %s, the older claim, keeps it and the others are left out: each host name belongs to one app port, remove it from all but one",
				h, owners(allowed), allowed[0].owner)
		}
		b.model.Routes = append(b.model.Routes, Route{Host: h, Backend: allowed[0].backend})
		routed[allowed[0].backend] = append(routed[allowed[0].backend], h)
	}
	for _, p := range slices.Sorted(maps.Keys(b.tcp)) {
		cs := b.tcp[p]
		slices.SortFunc(cs, older)
		if slices.Contains(b.opts.ReservedPorts, p) {
			b.problem("%s asks for TCP frontend port %d, which the edge itself uses (reserved: %s); choose another tcpFrontendPort; left out",
				owners(cs), p, joinInts(b.opts.ReservedPorts))
			continue
		}
		var allowed []claim
		for _, c := range cs {
			if ok, rule := b.allowPort(c.namespace, p); !ok {
				b.problem("TCP frontend port %d claimed by %s is refused: %s; left out", p, c.owner, rule)
				continue
			}
			allowed = append(allowed, c)
		}
		if len(allowed) == 0 {
			continue
		}
		if len(allowed) > 1 {
			b.problem("TCP frontend port %d is claimed by %s; %s, the older claim, keeps it and the others are left out: give each its own tcpFrontendPort",
				p, owners(allowed), allowed[0].owner)
		}
		b.model.TCPFrontends = append(b.model.TCPFrontends, TCPFrontend{Port: p, Backend: allowed[0].backend, App: appOfBackend(b.model.Backends, allowed[0].backend)})
		fronted[allowed[0].backend] = true
	}
	kept := b.model.Backends[:0]
	for _, be := range b.model.Backends {
		if !fronted[be.Name] && len(routed[be.Name]) == 0 {
			continue // every claim of it was left out
		}
		be.Hosts = slices.Sorted(slices.Values(routed[be.Name]))
		if len(be.Servers) == 0 && len(be.Pools) == 0 {
			b.model.Pending = append(b.model.Pending, b.owner[be.Name])
		}
		kept = append(kept, be)
	}
	b.model.Backends = kept
}

func (b *builder) allowHost(ns, host string) (bool, string) {
	if b.opts.Owners == nil {
		return true, ""
	}
	return b.opts.Owners.hostRule(ns, host)
}

func (b *builder) allowPort(ns string, port int) (bool, string) {
	if b.opts.Owners == nil {
		return true, ""
	}
	return b.opts.Owners.portRule(ns, port)
}

func owners(cs []claim) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.owner
	}
	return strings.Join(s, " and ")
}

func appOfBackend(bs []Backend, name string) string {
	for _, b := range bs {
		if b.Name == name {
			return b.App
		}
	}
	return ""
}

// BackendName is the HAProxy backend of one Service port. Namespaces,
// Service names and port names never contain dots, so the name is unique.
func BackendName(namespace, service, port string) string {
	return "tsys-ci." + namespace + "." + service + "." + port
}

func findPort(svc *corev1.Service, name string) (corev1.ServicePort, bool) {
	for _, p := range svc.Spec.Ports {
		if p.Name == name {
			return p, true
		}
	}
	return corev1.ServicePort{}, false
}

func portNames(svc *corev1.Service) string {
	var names []string
	for _, p := range svc.Spec.Ports {
		names = append(names, strconv.Quote(p.Name))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
