package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// recorder is a registry-looking server that asks for a login and records
// every Authorization header it is sent.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	auth []string
}

func newRecorder(t *testing.T, challenge func(r *recorder) string) *recorder {
	rec := &recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if a := req.Header.Get("Authorization"); a != "" {
			rec.mu.Lock()
			rec.auth = append(rec.auth, req.URL.Path+" "+a)
			rec.mu.Unlock()
		}
		w.Header().Set("WWW-Authenticate", challenge(rec))
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (r *recorder) host() string { return strings.TrimPrefix(r.URL, "http://") }

func (r *recorder) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auth...)
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestCredentialsOnlyForTheirRegistry (issue 17, finding 2): the robot login
// from TSYS_CI_REGISTRY_USERNAME/PASSWORD goes only to the registry it is
// for, never to another host that asks (a registry named by an image
// reference, a token service elsewhere), and never over plain HTTP unless
// the registry is on loopback and TSYS_CI_REGISTRY_INSECURE=true.
func TestCredentialsOnlyForTheirRegistry(t *testing.T) {
	ctx := context.Background()
	_, v, _, _ := keyPair(t, "pw")
	env := map[string]string{
		"TSYS_CI_REGISTRY_USERNAME": "ci", "TSYS_CI_REGISTRY_PASSWORD": "secret",
		"TSYS_CI_REGISTRY": "harbor.company.example", "TSYS_CI_REGISTRY_INSECURE": "true",
	}

	// Another registry asks for Basic: it gets no login.
	attacker := newRecorder(t, func(*recorder) string { return `Basic realm="x"` })
	ref, _ := name.ParseReference(attacker.host() + "/demo/shop@sha256:" + strings.Repeat("ab", 32))
	if _, err := (Client{Keychain: Credentials(envOf(env))}).Verify(ctx, ref, v); err == nil {
		t.Error("verify against a registry that refuses everyone succeeded")
	}
	if got := attacker.received(); len(got) != 0 {
		t.Errorf("a registry the login is not for received %q", got)
	}

	// Its own registry over plain HTTP without the opt-in: refused, nothing sent.
	reg := newTestRegistry(t)
	var sent []string
	reg.refuse = func(r *http.Request) bool { sent = append(sent, r.Header.Get("Authorization")); return false }
	env = map[string]string{"TSYS_CI_REGISTRY_USERNAME": "ci", "TSYS_CI_REGISTRY_PASSWORD": "secret"}
	img, _ := random.Image(100, 1)
	repo, _ := ParseRepository(reg.host + "/demo/shop")
	_, err := Client{Keychain: CredentialsFor(envOf(env), reg.host)}.Push(ctx, img, repo, nil, nil, nopWriter{})
	if err == nil || !strings.Contains(err.Error(), "over plain HTTP") || !strings.Contains(err.Error(), "TSYS_CI_REGISTRY_INSECURE=true") {
		t.Errorf("push over plain HTTP without TSYS_CI_REGISTRY_INSECURE: %v, want a refusal saying what to set", err)
	}
	for _, a := range sent {
		if a != "" {
			t.Errorf("the registry received %q over plain HTTP", a)
		}
	}
	// With the opt-in, loopback works (how the tests and a local registry run).
	env["TSYS_CI_REGISTRY_INSECURE"] = "true"
	if _, err := (Client{Keychain: CredentialsFor(envOf(env), reg.host)}).Push(ctx, img, repo, nil, nil, nopWriter{}); err != nil {
		t.Errorf("push to its own loopback registry with TSYS_CI_REGISTRY_INSECURE=true: %v", err)
	}
	// Bound through TSYS_CI_REPOSITORY's host as well.
	env = map[string]string{"TSYS_CI_REGISTRY_USERNAME": "ci", "TSYS_CI_REGISTRY_PASSWORD": "secret",
		"TSYS_CI_REGISTRY_INSECURE": "true", "TSYS_CI_REPOSITORY": reg.host + "/demo/shop"}
	if _, err := (Client{Keychain: Credentials(envOf(env))}).Push(ctx, img, repo, nil, nil, nopWriter{}); err != nil {
		t.Errorf("push to TSYS_CI_REPOSITORY's registry: %v", err)
	}
}

// TestCredentialsNeverPlainHTTPBeyondLoopback: the opt-in covers loopback
// only; a private address (go-containerregistry's http:// fallback) never
// gets the login in clear text, and another host (a token service the
// registry names, a redirect) never gets it at all.
func TestCredentialsNeverPlainHTTPBeyondLoopback(t *testing.T) {
	k := CredentialsFor(envOf(map[string]string{"TSYS_CI_REGISTRY_USERNAME": "ci", "TSYS_CI_REGISTRY_PASSWORD": "secret",
		"TSYS_CI_REGISTRY_INSECURE": "true"}), "10.213.0.200:5000").(*boundKeychain)
	called := false
	g := guardTransport{k: k, next: roundTripFunc(func(*http.Request) (*http.Response, error) { called = true; return nil, nil })}
	req, _ := http.NewRequest(http.MethodGet, "http://10.213.0.200:5000/v2/", nil)
	req.Header.Set("Authorization", k.basic)
	if _, err := g.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "over plain HTTP") || called {
		t.Errorf("login to 10.213.0.200:5000 over http: err %v, sent %v", err, called)
	}
	req, _ = http.NewRequest(http.MethodGet, "https://10.213.0.200:5000/v2/", nil)
	req.Header.Set("Authorization", k.basic)
	if _, err := g.RoundTrip(req); err != nil || !called {
		t.Errorf("login to 10.213.0.200:5000 over https: err %v, sent %v", err, called)
	}
	called = false
	req, _ = http.NewRequest(http.MethodGet, "https://tokens.example/token", nil)
	req.Header.Set("Authorization", k.basic)
	if _, err := g.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "tokens.example") || !strings.Contains(err.Error(), "10.213.0.200:5000") || called {
		t.Errorf("login to another host: err %v, sent %v", err, called)
	}
}

// TestCredentialsPlainHTTPOnlyToNamedInsecureHosts: a lab registry without
// TLS gets the login only when TSYS_CI_REGISTRY_INSECURE names it, and no
// other plain-HTTP host does.
func TestCredentialsPlainHTTPOnlyToNamedInsecureHosts(t *testing.T) {
	k := CredentialsFor(envOf(map[string]string{"TSYS_CI_REGISTRY_USERNAME": "ci", "TSYS_CI_REGISTRY_PASSWORD": "secret",
		"TSYS_CI_REGISTRY": "10.213.0.201:5000", "TSYS_CI_REGISTRY_INSECURE": "10.213.0.200:5000"}), "10.213.0.200:5000").(*boundKeychain)
	sent := 0
	g := guardTransport{k: k, next: roundTripFunc(func(*http.Request) (*http.Response, error) { sent++; return nil, nil })}
	req, _ := http.NewRequest(http.MethodGet, "http://10.213.0.200:5000/v2/", nil)
	req.Header.Set("Authorization", k.basic)
	if _, err := g.RoundTrip(req); err != nil || sent != 1 {
		t.Errorf("login over http to the named insecure host: err %v, sent %d", err, sent)
	}
	req, _ = http.NewRequest(http.MethodGet, "http://10.213.0.201:5000/v2/", nil)
	req.Header.Set("Authorization", k.basic)
	if _, err := g.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "TSYS_CI_REGISTRY_INSECURE=10.213.0.201:5000") || sent != 1 {
		t.Errorf("login over http to a bound host not named insecure: err %v, sent %d", err, sent)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestCredentialsRefusalSaysHowToBindTheLogin: a registry asked
// anonymously because TSYS_CI_REGISTRY does not name it answers 401; the
// error says to name it there.
func TestCredentialsRefusalSaysHowToBindTheLogin(t *testing.T) {
	reg := newTestRegistry(t)
	env := map[string]string{"TSYS_CI_REGISTRY_USERNAME": "ci", "TSYS_CI_REGISTRY_PASSWORD": "secret", "TSYS_CI_REGISTRY_INSECURE": "true"}
	ref, _ := name.ParseReference(reg.host + "/demo/shop:latest")
	_, err := Client{Keychain: Credentials(envOf(env))}.Resolve(context.Background(), ref)
	if err == nil || !strings.Contains(err.Error(), "(401)") || !strings.Contains(err.Error(), "TSYS_CI_REGISTRY names this registry") {
		t.Errorf("resolve at a registry the login is not bound to: %v, want a 401 saying to set TSYS_CI_REGISTRY", err)
	}
}
