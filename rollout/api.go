package rollout

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// API is the app spec's api: section: the app's HTTP API behind the
// platform's gateway (Traefik; platform.yaml gateway). Promote renders it
// into Traefik's own objects, an IngressRoute with one route per entry and
// a Middleware per check, and removes them when the section is removed or
// the app is deleted. The routes reach the app's Service (the version it
// serves), on Port.
type API struct {
	// Port is the name of the app's http port the routes reach; may be
	// left out when the app has one http port.
	Port string `json:"port,omitempty"`
	// Hosts are the host names the gateway answers for the API (the edge
	// sends them to the gateway's address).
	Hosts  []string   `json:"hosts"`
	Routes []APIRoute `json:"routes"`
}

// APIRoute is one path prefix of the API and who may call it.
type APIRoute struct {
	// Name names the route's objects (a DNS label, unique in the app).
	Name       string `json:"name"`
	PathPrefix string `json:"pathPrefix"`
	// Methods allowed (GET, POST, ...); none: every method.
	Methods []string `json:"methods,omitempty"`
	// Groups are directory groups (cn) whose members may call the route,
	// checked by the gateway's auth service from the token's groups
	// claim; none: no login asked.
	Groups []string `json:"groups,omitempty"`
	// RateLimit is requests per second per client address.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// IPAllowList lists the addresses or CIDRs that may call the route;
	// none: any.
	IPAllowList []string `json:"ipAllowList,omitempty"`
}

// RateLimit is Traefik's rateLimit: Average requests per second on
// average, up to Burst at once.
type RateLimit struct {
	Average int `json:"average"`
	Burst   int `json:"burst,omitempty"`
}

// apiMethods are the methods a route may name.
var apiMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// apiPort returns the port the API's routes reach: api.port, or the app's
// only http port.
func apiPort(s *AppSpec) string {
	if s.API == nil {
		return ""
	}
	if s.API.Port != "" {
		return s.API.Port
	}
	var http []string
	for _, p := range s.Ports {
		if p.Protocol == ProtocolHTTP {
			http = append(http, p.Name)
		}
	}
	if len(http) == 1 {
		return http[0]
	}
	return ""
}

// api checks the api: section.
func (c *checker) api(s *AppSpec, ports map[string]Port) {
	a := s.API
	if a == nil {
		return
	}
	var http []string
	for _, p := range s.Ports {
		if p.Protocol == ProtocolHTTP {
			http = append(http, p.Name)
		}
	}
	switch {
	case a.Port == "" && len(http) == 0:
		c.add("api.port", "the app has no http port for the gateway to reach; add one under ports")
	case a.Port == "" && len(http) > 1:
		c.add("api.port", "missing; the app has several http ports (%s): name the one the API is on", strings.Join(http, ", "))
	case a.Port != "":
		p, ok := ports[a.Port]
		switch {
		case !ok:
			c.add("api.port", "%q is not one of the app's ports; write one of: %s", a.Port, strings.Join(portNames(s.Ports), ", "))
		case p.Protocol != ProtocolHTTP:
			c.add("api.port", "%q is a %s port; the gateway routes HTTP: name an http port", a.Port, p.Protocol)
		}
	}
	if len(a.Hosts) == 0 {
		c.add("api.hosts", "missing; list the host names the API is called at (e.g. [api.shop.tsys.example]), which the edge sends to the gateway")
	}
	for i, h := range a.Hosts {
		if msgs := validation.IsDNS1123Subdomain(h); len(msgs) > 0 {
			c.add(fmt.Sprintf("api.hosts[%d]", i), "%q is not a host name (lower-case letters, digits, '-' and '.'), e.g. api.shop.tsys.example", h)
		}
	}
	if len(a.Routes) == 0 {
		c.add("api.routes", "missing; list at least one route, e.g. {name: orders, pathPrefix: /orders}")
	}
	names := map[string]bool{}
	prefixes := map[string]string{}
	for i, r := range a.Routes {
		f := fmt.Sprintf("api.routes[%d]", i)
		for _, msg := range validation.IsDNS1123Label(r.Name) {
			c.add(f+".name", "%q is not a valid name: %s; write e.g. orders", r.Name, msg)
		}
		if len(s.Name)+1+len(r.Name)+len("-ratelimit") > validation.DNS1123LabelMaxLength {
			c.add(f+".name", "%q is too long: %s-%s-ratelimit must fit in 63 characters; shorten it", r.Name, s.Name, r.Name)
		}
		if names[r.Name] {
			c.add(f+".name", "%q is used by another route; give each route its own name", r.Name)
		}
		names[r.Name] = true
		switch {
		case !strings.HasPrefix(r.PathPrefix, "/"):
			c.add(f+".pathPrefix", "%q does not start with /; write e.g. /orders", r.PathPrefix)
		case strings.ContainsAny(r.PathPrefix, "`?# \t\n"):
			c.add(f+".pathPrefix", "%q holds a character a path prefix cannot (` ? # or space); write the path only, e.g. /orders", r.PathPrefix)
		default:
			methods := strings.Join(sortedCopy(r.Methods), ",")
			if other, dup := prefixes[r.PathPrefix+" "+methods]; dup {
				c.add(f+".pathPrefix", "%s with the same methods is also route %s; merge the two or tell them apart by methods", r.PathPrefix, other)
			}
			prefixes[r.PathPrefix+" "+methods] = r.Name
		}
		seen := map[string]bool{}
		for j, m := range r.Methods {
			if !slices.Contains(apiMethods, m) {
				c.add(fmt.Sprintf("%s.methods[%d]", f, j), "%q is not a method the gateway routes; write one of %s (upper case)", m, strings.Join(apiMethods, ", "))
			}
			if seen[m] {
				c.add(fmt.Sprintf("%s.methods[%d]", f, j), "%q is listed twice", m)
			}
			seen[m] = true
		}
		for j, g := range r.Groups {
			if g == "" || strings.ContainsAny(g, ",=&?# ") {
				c.add(fmt.Sprintf("%s.groups[%d]", f, j), "%q is not a directory group name; write the group's cn, e.g. shop-api-users", g)
			}
		}
		if rl := r.RateLimit; rl != nil {
			if rl.Average < 1 {
				c.add(f+".rateLimit.average", "is %d; give the requests per second a client may make on average, 1 or more", rl.Average)
			}
			if rl.Burst < 0 || (rl.Burst > 0 && rl.Burst < rl.Average) {
				c.add(f+".rateLimit.burst", "is %d; give at least average (%d), or leave it out for average", rl.Burst, rl.Average)
			}
		}
		for j, a := range r.IPAllowList {
			if _, err := netip.ParsePrefix(a); err != nil {
				if _, err := netip.ParseAddr(a); err != nil {
					c.add(fmt.Sprintf("%s.ipAllowList[%d]", f, j), "%q is neither an address nor a CIDR; write e.g. 10.251.0.0/16 or 10.251.50.7", a)
				}
			}
		}
	}
}

func portNames(ports []Port) []string {
	var out []string
	for _, p := range ports {
		out = append(out, p.Name)
	}
	return out
}

func sortedCopy(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return out
}

// Traefik's CRD group and the resources promote writes.
const (
	TraefikGroup   = "traefik.io"
	TraefikVersion = "v1alpha1"
)

// GatewayConfig is the pool's gateway settings (platform.yaml gateway,
// rendered into pool.json): where the auth service answers forwardAuth.
type GatewayConfig struct {
	// AuthURL is the forwardAuth address; a route with groups asks it,
	// with allowed_groups=GROUP,... added to its query (oauth2-proxy v7's
	// /oauth2/auth answers 202, 401 without a valid token, 403 when the
	// token's groups claim holds none of them).
	AuthURL string `json:"authURL"`
}

// Validate says what is wrong with the gateway settings.
func (g *GatewayConfig) Validate() error {
	u, err := url.Parse(g.AuthURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("gateway.authURL: %q is not an http(s) URL; write the auth service's forwardAuth address, e.g. \"http://oauth2-proxy.kube-system.svc.cluster.local:4180/oauth2/auth\"", g.AuthURL)
	}
	return nil
}

// AuthResponseHeaders are the headers the auth service answers with that
// the gateway passes on to the app: who called, and their groups.
var AuthResponseHeaders = []string{"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups", "X-Auth-Request-Preferred-Username"}

// IngressRouteName is the app's IngressRoute.
func IngressRouteName(app string) string { return app + "-api" }

// RenderAPI renders the app's gateway objects as unstructured objects,
// Middlewares first (the IngressRoute names them): per route an
// ipAllowList, a rateLimit and a forwardAuth (groups) Middleware where the
// route asks for one, then the IngressRoute. gw is the pool's gateway
// settings; a route with groups needs gw.AuthURL. Nil for a spec without
// api:.
func RenderAPI(spec *AppSpec, gw *GatewayConfig, owner *metav1.OwnerReference) ([]map[string]any, error) {
	a := spec.API
	if a == nil {
		return nil, nil
	}
	port := apiPort(spec)
	meta := func(name string) map[string]any {
		labels := map[string]any{}
		for k, v := range AppLabels(spec.Name) {
			labels[k] = v
		}
		m := map[string]any{"name": name, "namespace": spec.Namespace, "labels": labels}
		if owner != nil {
			m["ownerReferences"] = []any{map[string]any{
				"apiVersion": owner.APIVersion, "kind": owner.Kind, "name": owner.Name, "uid": string(owner.UID),
			}}
		}
		return m
	}
	middleware := func(name string, spec map[string]any) map[string]any {
		return map[string]any{"apiVersion": TraefikGroup + "/" + TraefikVersion, "kind": "Middleware", "metadata": meta(name), "spec": spec}
	}
	var hosts []string
	for _, h := range a.Hosts {
		hosts = append(hosts, "Host(`"+h+"`)")
	}
	hostRule := strings.Join(hosts, " || ")
	if len(hosts) > 1 {
		hostRule = "(" + hostRule + ")"
	}
	var out []map[string]any
	var routes []any
	for _, r := range a.Routes {
		base := spec.Name + "-" + r.Name
		var mws []any
		if len(r.IPAllowList) > 0 {
			name := base + "-allow"
			out = append(out, middleware(name, map[string]any{"ipAllowList": map[string]any{
				"sourceRange": toAny(r.IPAllowList),
				// The client as the edge saw it: HAProxy adds it last to
				// X-Forwarded-For (the gateway trusts the edge's headers:
				// platform.yaml gateway.trustedProxies).
				"ipStrategy": map[string]any{"depth": int64(1)},
			}}))
			mws = append(mws, map[string]any{"name": name})
		}
		if rl := r.RateLimit; rl != nil {
			burst := rl.Burst
			if burst == 0 {
				burst = rl.Average
			}
			name := base + "-ratelimit"
			out = append(out, middleware(name, map[string]any{"rateLimit": map[string]any{
				"average": int64(rl.Average), "burst": int64(burst), "period": "1s",
				"sourceCriterion": map[string]any{"ipStrategy": map[string]any{"depth": int64(1)}},
			}}))
			mws = append(mws, map[string]any{"name": name})
		}
		if len(r.Groups) > 0 {
			if gw == nil || gw.AuthURL == "" {
				return nil, fmt.Errorf("app %s: api.routes %s names groups (%s), but the gateway has no auth service to check them: set gateway.authURL in platform.yaml and run `tsys-ci platform apply` (it writes the pool ConfigMap), or remove the groups", spec.Name, r.Name, strings.Join(r.Groups, ", "))
			}
			address, err := withAllowedGroups(gw.AuthURL, r.Groups)
			if err != nil {
				return nil, fmt.Errorf("app %s: %w", spec.Name, err)
			}
			name := base + "-auth"
			out = append(out, middleware(name, map[string]any{"forwardAuth": map[string]any{
				"address":             address,
				"authResponseHeaders": toAny(AuthResponseHeaders),
			}}))
			mws = append(mws, map[string]any{"name": name})
		}
		match := hostRule + " && PathPrefix(`" + r.PathPrefix + "`)"
		if len(r.Methods) > 0 {
			var ms []string
			for _, m := range r.Methods {
				ms = append(ms, "Method(`"+m+"`)")
			}
			m := strings.Join(ms, " || ")
			if len(ms) > 1 {
				m = "(" + m + ")"
			}
			match += " && " + m
		}
		route := map[string]any{
			"kind": "Rule", "match": match,
			"services": []any{map[string]any{"name": spec.Name, "port": port}},
		}
		if len(mws) > 0 {
			route["middlewares"] = mws
		}
		routes = append(routes, route)
	}
	out = append(out, map[string]any{
		"apiVersion": TraefikGroup + "/" + TraefikVersion, "kind": "IngressRoute",
		"metadata": meta(IngressRouteName(spec.Name)),
		"spec":     map[string]any{"routes": routes},
	})
	return out, nil
}

// withAllowedGroups adds allowed_groups to the auth service's address.
func withAllowedGroups(authURL string, groups []string) (string, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", fmt.Errorf("the gateway's authURL %q: %w", authURL, err)
	}
	q := u.Query()
	q.Set("allowed_groups", strings.Join(groups, ","))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func toAny(in []string) []any {
	out := make([]any, len(in))
	for i, s := range in {
		out[i] = s
	}
	return out
}
