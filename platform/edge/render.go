package edge

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/tsys-group/tsys-ci/internal/contract"
)

// The files the edge writes into its directory on the HAProxy host.
const (
	// FileConfig is the configuration fragment: backends and TCP frontends.
	FileConfig = "edge.cfg"
	// FileHostMap maps host names to backends for the HTTPS frontend's
	// use_backend rule.
	FileHostMap = "hosts.map"
	// FileCrtList is the crt-list for the HTTPS bind line: one certificate
	// per routed host name.
	FileCrtList = "crt-list"
	// FileHosts lists the routed host names one per line, for the
	// certificate tooling (certbot and the like).
	FileHosts = "hosts.txt"
)

// DefaultsName is the named defaults section every section of the fragment
// inherits from, so the company's own defaults never change the edge's
// behaviour and the edge's never change theirs.
const DefaultsName = "tsys-ci-edge"

// Files are the rendered contents of the edge directory.
type Files struct {
	Config  []byte
	HostMap []byte
	CrtList []byte
	Hosts   []byte
}

// Names lists the files in the order they are installed: the fragment
// last, so a reload never sees a fragment whose map is missing.
func (f Files) byName() []struct {
	name string
	data []byte
} {
	return []struct {
		name string
		data []byte
	}{{FileHostMap, f.HostMap}, {FileCrtList, f.CrtList}, {FileHosts, f.Hosts}, {FileConfig, f.Config}}
}

const header = `# tsys-ci edge fragment, generated from the cluster by tsys-ci edge render/sync.
# Do not edit: the next sync overwrites it (docs/edge.md says how it is wired).
# Host routes are in hosts.map and certificates in crt-list, beside this file.
`

const defaults = `
defaults ` + DefaultsName + `
    mode http
    option dontlognull
    timeout connect 5s
    timeout client 1m
    timeout server 1m
    timeout http-request 10s
    timeout tunnel 1h
    default-server inter 2s fall 3 rise 2
    # A retry picks the server again and so reads its address again: a
    # connection still being attempted when sync moves a server at run time
    # is retried at the new address, not at the old one until a 503.
    option redispatch 1
`

// PoolDefaultsName is the named defaults of the color sections: the
// settings that ride over a dead node (see poolDefaults).
const PoolDefaultsName = "tsys-ci-edge-pool"

// poolDefaults are the color sections' settings. Each is there for a dead
// or frozen node (docs/edge.md, "Versions at the edge", has the numbers):
//   - timeout connect 1s: a node on the LAN answers a SYN in well under a
//     millisecond; a frozen one never does, and the request waits this
//     long before it is sent elsewhere.
//   - retries 3 with option redispatch 1: every retry picks a server again,
//     so it lands on another node of the same version, not the dead one.
//   - retry-on conn-failure empty-response: also resend a request whose
//     connection closed with no answer (a node or pod that died mid-way),
//     limited to idempotent methods by each section's disable-l7-retry.
//   - observe layer4, error-limit 1, on-error mark-down: the first failed
//     connection by real traffic takes the node out at once, instead of
//     waiting for its checks to fail.
//   - checks every second (fall 2, rise 2, faster while changing state):
//     a node that stopped answering is out in about 2 s even without
//     traffic, and one that is back gets traffic after 2 passing checks.
//   - option http-server-close: a new server connection per request, so
//     no request waits on a kept-alive connection to a node that froze.
const poolDefaults = `
defaults ` + PoolDefaultsName + `
    mode http
    option dontlognull
    timeout connect 1s
    timeout client 1m
    timeout server 1m
    timeout http-request 10s
    timeout check 1s
    option httpchk
    option http-server-close
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
    default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down
`

func hasPools(m *Model) bool {
	for _, b := range m.Backends {
		if len(b.Pools) > 0 {
			return true
		}
	}
	return false
}

// Render writes the Model as HAProxy reads it. It depends only on its
// arguments, and the Model's lists are sorted, so the same cluster state
// always gives the same bytes.
func Render(m *Model, opts Options) Files {
	var cfg, hostMap, crt, hosts bytes.Buffer
	cfg.WriteString(header)
	cfg.WriteString(defaults)
	if hasPools(m) {
		cfg.WriteString(poolDefaults)
	}
	for _, b := range m.Backends {
		renderBackend(&cfg, b, opts)
	}
	for _, f := range m.TCPFrontends {
		fmt.Fprintf(&cfg, "\nfrontend tsys-ci.tcp.%d from %s\n", f.Port, DefaultsName)
		fmt.Fprintf(&cfg, "    # app %s, passed through to %s\n", f.App, f.Backend)
		cfg.WriteString("    mode tcp\n")
		fmt.Fprintf(&cfg, "    bind %s\n", bindAddr(opts.TCPBind, f.Port))
		fmt.Fprintf(&cfg, "    default_backend %s\n", f.Backend)
	}
	hostMap.WriteString("# host backend: generated by tsys-ci, read by the HTTPS frontend's use_backend rule\n")
	crt.WriteString("# certificate per host name: generated by tsys-ci, read by the HTTPS bind line\n")
	for _, r := range m.Routes {
		fmt.Fprintf(&hostMap, "%s %s\n", r.Host, r.Backend)
		fmt.Fprintf(&crt, "%s %s\n", CertPath(opts, r.Host), r.Host)
		fmt.Fprintf(&hosts, "%s\n", r.Host)
	}
	return Files{Config: cfg.Bytes(), HostMap: hostMap.Bytes(), CrtList: crt.Bytes(), Hosts: hosts.Bytes()}
}

// CertPath is where the certificate of host is expected on the edge host.
func CertPath(opts Options, host string) string {
	return filepath.Join(opts.CertDir, host+".pem")
}

func renderBackend(w *bytes.Buffer, b Backend, opts Options) {
	fmt.Fprintf(w, "\nbackend %s from %s\n", b.Name, DefaultsName)
	switch {
	case len(b.Pools) > 0:
		// The weights are on the server lines only: a comment that
		// repeated them would change the skeleton, and a weight change
		// would then reload instead of going through the runtime API.
		fmt.Fprintf(w, "    # app %s, Service port %s, hosts %s; versions %s, weighed by %s\n",
			b.App, b.PortName, strings.Join(b.Hosts, " "), poolColors(b.Pools), contract.AnnotationEdgeWeights)
	case len(b.Servers) == 0:
		fmt.Fprintf(w, "    # app %s, Service port %s: no load-balancer address yet, so 503 until it has one\n", b.App, b.PortName)
	case b.Mode == "http":
		fmt.Fprintf(w, "    # app %s, Service port %s, hosts %s\n", b.App, b.PortName, strings.Join(b.Hosts, " "))
	default:
		fmt.Fprintf(w, "    # app %s, Service port %s, TCP pass-through\n", b.App, b.PortName)
	}
	fmt.Fprintf(w, "    mode %s\n", b.Mode)
	if len(b.Pools) > 0 {
		// The versions: HAProxy's weights are the percents, changed at run
		// time by sync (set server BACKEND/COLOR weight N). No health
		// check here: each color's section checks its nodes, and a
		// version with no live node answers 503, which these servers
		// count as that version's errors for promote's analysis.
		w.WriteString("    option forwardfor\n")
		w.WriteString("    option http-server-close\n")
		w.WriteString("    http-request set-header X-Forwarded-Proto https if { ssl_fc }\n")
		if b.Candidate != "" {
			// Testers first: the version being promoted, even at weight 0.
			fmt.Fprintf(w, "    use-server %s if { req.hdr(%s) -m str %s }\n", b.Candidate, strings.ToLower(contract.CanaryHeader), contract.CanaryAlways)
		}
		if b.Sticky {
			renderSticky(w, b)
		}
		for _, p := range b.Pools {
			fmt.Fprintf(w, "    server %s %s weight %d\n", p.Color, PoolAddress(opts.SocketPrefix, p.Name), p.Weight)
		}
		for _, p := range b.Pools {
			renderPool(w, b, p, opts)
		}
		return
	}
	if b.Mode == "http" {
		w.WriteString("    option httpchk\n")
		fmt.Fprintf(w, "    http-check send meth GET uri / ver HTTP/1.1 hdr Host %s\n", b.Hosts[0])
		// Any answer but a server error means the app is there; its own
		// readiness probes decide which pods get traffic behind the VIP.
		w.WriteString("    http-check expect rstatus ^[234]\n")
		w.WriteString("    option forwardfor\n")
		// One server connection per request: a keep-alive connection to the
		// server would carry later requests to the old address after a
		// runtime address change (measured: hundreds of requests).
		w.WriteString("    option http-server-close\n")
		w.WriteString("    http-request set-header X-Forwarded-Proto https if { ssl_fc }\n")
	}
	for _, s := range b.Servers {
		fmt.Fprintf(w, "    server %s %s check\n", s.Name, netip.AddrPortFrom(s.Addr, uint16(s.Port)))
	}
}

// StickyCookie is the cookie that keeps a browser on one version of an
// app whose port is sticky.
const StickyCookie = "tsys_ci_version"

// renderSticky keeps a browser on the version its cookie names while that
// version has weight (srv_weight follows the runtime API, so a version
// set to 0 loses its sticky users at once, without a reload), and sets
// the cookie to whichever version answered when it differs. Rules, not
// HAProxy's cookie persistence: that one keeps sending to a server at
// weight 0, which after a promote is a version scaled to nothing.
func renderSticky(w *bytes.Buffer, b Backend) {
	fmt.Fprintf(w, "    http-request set-var(txn.tsys_version) req.cook(%s)\n", StickyCookie)
	for _, p := range b.Pools {
		fmt.Fprintf(w, "    use-server %s if { var(txn.tsys_version) -m str %s } { srv_weight(%s/%s) gt 0 }\n", p.Color, p.Color, b.Name, p.Color)
	}
	fmt.Fprintf(w, "    http-response set-header Set-Cookie \"%s=%%[srv_name]; Path=/; HttpOnly; Secure; SameSite=Lax\" unless { srv_name,strcmp(txn.tsys_version) eq 0 }\n", StickyCookie)
}

// renderPool writes one version's section: reached only from its
// backend's server through the abstract socket, spreading over the nodes.
func renderPool(w *bytes.Buffer, b Backend, p Pool, opts Options) {
	fmt.Fprintf(w, "\nlisten %s from %s\n", p.Name, PoolDefaultsName)
	fmt.Fprintf(w, "    # app %s, version %s: Service %s, one server per node on its NodePort\n", b.App, p.Color, p.Service)
	fmt.Fprintf(w, "    bind %s\n", PoolAddress(opts.SocketPrefix, p.Name))
	// The node port reaches only that node's pods (externalTrafficPolicy
	// Local): a node without a pod of this version fails its check.
	fmt.Fprintf(w, "    http-check send meth GET uri / ver HTTP/1.1 hdr Host %s\n", b.Hosts[0])
	w.WriteString("    http-check expect rstatus ^[234]\n")
	// A request that got no answer at all may be sent again only if
	// sending it twice does no harm.
	w.WriteString("    http-request disable-l7-retry unless METH_GET || METH_OPTIONS || METH_PUT || METH_DELETE || METH_TRACE\n")
	if b.ResendAfterMs > 0 {
		// A node that froze after it took the request never answers:
		// resend an idempotent one elsewhere after the app's resendAfter
		// instead of waiting the minute of the defaults (issue 25). Other
		// methods keep the minute: they are never resent, so a short
		// timeout would only cut a slow answer off.
		fmt.Fprintf(w, "    http-request set-timeout server %dms if METH_GET || METH_OPTIONS || METH_PUT || METH_DELETE || METH_TRACE\n", b.ResendAfterMs)
		w.WriteString("    retry-on conn-failure empty-response response-timeout\n")
	}
	if len(p.Servers) == 0 {
		w.WriteString("    # no node to send it to yet, so 503\n")
	}
	for _, s := range p.Servers {
		fmt.Fprintf(w, "    server %s %s check\n", s.Name, netip.AddrPortFrom(s.Addr, uint16(s.Port)))
	}
}

func poolColors(pools []Pool) string {
	var parts []string
	for _, p := range pools {
		parts = append(parts, p.Color)
	}
	return strings.Join(parts, ", ")
}

func bindAddr(addr string, port int) string {
	if addr == "" {
		return ":" + strconv.Itoa(port)
	}
	if a, err := netip.ParseAddr(addr); err == nil && a.Is6() {
		return "[" + addr + "]:" + strconv.Itoa(port)
	}
	return addr + ":" + strconv.Itoa(port)
}

var (
	serverLine = regexp.MustCompile(`(?m)^(    server \S+ )(\S+)( .*)$`)
	weightWord = regexp.MustCompile(` weight \d+`)
)

// Skeleton is the fragment with every server's IP address and port and
// every weight blanked out. Two fragments with the same skeleton differ
// only in those, which the runtime API changes without a reload. An
// abstract socket address is kept: it names a section, and only a reload
// changes that.
func Skeleton(cfg []byte) string {
	return serverLine.ReplaceAllStringFunc(string(cfg), func(line string) string {
		m := serverLine.FindStringSubmatch(line)
		addr := m[2]
		if !strings.HasPrefix(addr, "abns@") {
			addr = "ADDR"
		}
		return m[1] + addr + weightWord.ReplaceAllString(m[3], " weight W")
	})
}
