package registry

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Credentials picks the registry login the way the pipeline contract says:
// TSYS_CI_REGISTRY_USERNAME / TSYS_CI_REGISTRY_PASSWORD (what Jenkins'
// usernamePassword binding sets) when present, else the Docker config.
//
// The login from the environment is a Harbor robot's: it is given only to
// the registries it is for (issue 17, finding 2), never to whatever registry
// an image reference happens to name (serve verifies images named by
// webhooks). Those are the hosts in TSYS_CI_REGISTRY (comma-separated
// HOST[:PORT]) and the host of TSYS_CI_REPOSITORY; CredentialsFor adds
// the hosts a user named on the command line. Every other registry is asked
// anonymously. A Client using it also refuses to send the login over plain
// HTTP (go-containerregistry falls back to http:// for loopback and private
// addresses) unless TSYS_CI_REGISTRY_INSECURE allows it: "true" for a
// registry on loopback, or a comma-separated list of HOST[:PORT] named one by
// one (a lab registry on a network the user trusts; never a default), and
// refuses to send it to another host (a token service
// elsewhere, a redirect).
func Credentials(getenv func(string) string) authn.Keychain {
	return CredentialsFor(getenv)
}

// CredentialsFor is Credentials with the login also bound to hosts: the
// registries the user named for this command (push's --repository, the
// IMAGE of sign and verify, promote's --image, build's --base). Not for
// hosts that come from outside input such as a webhook.
func CredentialsFor(getenv func(string) string, hosts ...string) authn.Keychain {
	u := getenv("TSYS_CI_REGISTRY_USERNAME")
	if u == "" {
		return authn.DefaultKeychain
	}
	p := getenv("TSYS_CI_REGISTRY_PASSWORD")
	k := &boundKeychain{
		auth:     authn.FromConfig(authn.AuthConfig{Username: u, Password: p}),
		basic:    "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)),
		hosts:    map[string]bool{},
		insecure: map[string]bool{},
	}
	for _, h := range strings.Split(getenv("TSYS_CI_REGISTRY_INSECURE"), ",") {
		if h = strings.TrimSpace(h); strings.EqualFold(h, "true") {
			k.loopbackHTTP = true
		} else if r, err := name.NewRegistry(h); h != "" && err == nil {
			k.insecure[r.RegistryStr()] = true
		}
	}
	for _, h := range strings.Split(getenv("TSYS_CI_REGISTRY"), ",") {
		k.add(h)
	}
	if r, err := name.NewRepository(getenv("TSYS_CI_REPOSITORY")); err == nil {
		k.add(r.RegistryStr())
	}
	for _, h := range hosts {
		k.add(h)
	}
	return k
}

// WithHost returns kc with its environment login also bound to host (see
// CredentialsFor); any other keychain is returned as it is.
func WithHost(kc authn.Keychain, host string) authn.Keychain {
	b, ok := kc.(*boundKeychain)
	if !ok {
		return kc
	}
	c := *b
	c.hosts = make(map[string]bool, len(b.hosts)+1)
	for h := range b.hosts {
		c.hosts[h] = true
	}
	c.add(host)
	return &c
}

// RemoteOptions are the go-containerregistry options for kc over transport
// t: the keychain, and t guarded so an environment login never leaves for
// another host or over plain HTTP. Code that calls remote.* itself (the base
// image pull of build) uses this instead of remote.WithAuthFromKeychain.
func RemoteOptions(kc authn.Keychain, t http.RoundTripper) []remote.Option {
	if t == nil {
		t = defaultTransport
	}
	if kc == nil {
		return []remote.Option{remote.WithTransport(t)}
	}
	if b, ok := kc.(*boundKeychain); ok {
		t = guardTransport{k: b, next: t}
	}
	return []remote.Option{remote.WithTransport(t), remote.WithAuthFromKeychain(kc)}
}

// boundKeychain gives one login to a fixed set of registry hosts.
type boundKeychain struct {
	auth         authn.Authenticator
	basic        string // the Authorization header the login makes
	hosts        map[string]bool
	loopbackHTTP bool            // TSYS_CI_REGISTRY_INSECURE=true
	insecure     map[string]bool // hosts TSYS_CI_REGISTRY_INSECURE names
}

func (k *boundKeychain) add(host string) {
	host = strings.TrimSpace(host)
	if host == "" {
		return
	}
	if r, err := name.NewRegistry(host); err == nil {
		k.hosts[r.RegistryStr()] = true
	}
}

func (k *boundKeychain) names() string {
	var hs []string
	for h := range k.hosts {
		hs = append(hs, h)
	}
	sort.Strings(hs)
	if len(hs) == 0 {
		return "no registry (TSYS_CI_REGISTRY is not set)"
	}
	return strings.Join(hs, ", ")
}

func (k *boundKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if k.hosts[res.RegistryStr()] {
		return k.auth, nil
	}
	return authn.Anonymous, nil
}

// guardTransport is the last check before a request leaves: the login
// goes only to its hosts, and only over TLS (or to loopback, when opted in).
type guardTransport struct {
	k    *boundKeychain
	next http.RoundTripper
}

func (g guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	a := req.Header.Get("Authorization")
	if a == "" {
		return g.next.RoundTrip(req)
	}
	host := req.URL.Host
	if r, err := name.NewRegistry(host); err == nil {
		host = r.RegistryStr()
	}
	bound := g.k.hosts[host]
	if a == g.k.basic && !bound {
		return nil, fmt.Errorf("refusing to send the registry login (TSYS_CI_REGISTRY_USERNAME) to %s: it is only for %s; if %s is that registry's token service, add it to TSYS_CI_REGISTRY", req.URL.Host, g.k.names(), req.URL.Host)
	}
	if bound && req.URL.Scheme != "https" && !(g.k.loopbackHTTP && isLoopback(req.URL.Hostname())) && !g.k.insecure[host] {
		how := "serve the registry over https"
		if isLoopback(req.URL.Hostname()) {
			how += ", or set TSYS_CI_REGISTRY_INSECURE=true for a registry on loopback"
		} else {
			how += ", or, for a lab registry on a network you trust, name it in TSYS_CI_REGISTRY_INSECURE=" + host
		}
		return nil, fmt.Errorf("refusing to send the registry login (TSYS_CI_REGISTRY_USERNAME) to %s over plain HTTP: %s", req.URL.Host, how)
	}
	return g.next.RoundTrip(req)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
