package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/platform"
	"github.com/tsys-group/tsys-ci/registry"
	"github.com/tsys-group/tsys-ci/test/harborstandin"
	"github.com/tsys-group/tsys-ci/test/jenkinsstandin"
	"github.com/tsys-group/tsys-ci/test/pki"
)

// examplePlatform is the platform.yaml a company starts from: domains.base
// tsys.example, paas.serve with TLS in namespace tsys-ci.
const examplePlatform = "../../templates/platform/platform.yaml"

func loadExamplePlatform(t *testing.T) *platform.Spec {
	t.Helper()
	spec, err := platform.LoadSpec(examplePlatform)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// The order of every setting: the flag (or its environment variable), else
// platform.yaml, else an error naming both.
func TestPlatformSettingResolution(t *testing.T) {
	spec := loadExamplePlatform(t)
	noServe := loadExamplePlatform(t)
	noServe.PaaS.Serve = nil
	serveURL := "https://tsys-ci-serve.tsys-ci.svc.cluster.local/webhook/harbor"
	for _, tc := range []struct {
		name        string
		setting     platformSetting
		flag        string
		spec        *platform.Spec
		want        string
		fromPlatfom bool
	}{
		{"harbor: flag wins", harborURLSetting, "https://other.example", spec, "https://other.example", false},
		{"harbor: platform gives", harborURLSetting, "", spec, "https://harbor.tsys.example", true},
		{"harbor: neither", harborURLSetting, "", nil, "", false},
		{"harbor: flag without platform", harborURLSetting, "https://h.example", nil, "https://h.example", false},
		{"webhook: flag wins", serveWebhookSetting, "https://hook.example/webhook/harbor", spec, "https://hook.example/webhook/harbor", false},
		{"webhook: platform gives serve's Service", serveWebhookSetting, "", spec, serveURL, true},
		{"webhook: platform without paas.serve", serveWebhookSetting, "", noServe, "", false},
		{"jenkins: flag wins", jenkinsURLSetting, "https://ci.example", spec, "https://ci.example", false},
		{"jenkins: platform gives", jenkinsURLSetting, "", spec, "https://jenkins.tsys.example", true},
		{"jenkins: neither", jenkinsURLSetting, "", nil, "", false},
	} {
		got, from := tc.setting.resolve(tc.flag, tc.spec)
		if got != tc.want || from != tc.fromPlatfom {
			t.Errorf("%s: %q (from platform.yaml %v), want %q (%v)", tc.name, got, from, tc.want, tc.fromPlatfom)
		}
	}
}

func TestRegistrySetupFlagsWithPlatform(t *testing.T) {
	spec := loadExamplePlatform(t)
	noServe := loadExamplePlatform(t)
	noServe.PaaS.Serve = nil
	for _, tc := range []struct {
		name                string
		f                   registrySetupFlags
		spec                *platform.Spec
		wantHarbor, wantURL string
		wantNote, wantErr   string
	}{
		{"platform gives both", registrySetupFlags{opts: registry.SetupOptions{Project: "demo"}}, spec,
			"https://harbor.tsys.example", "https://tsys-ci-serve.tsys-ci.svc.cluster.local/webhook/harbor", "from p.yaml's domains.harbor", ""},
		{"flags win", registrySetupFlags{harbor: "https://h.example", opts: registry.SetupOptions{Project: "demo", WebhookURL: "https://s.example/webhook/harbor"}}, spec,
			"https://h.example", "https://s.example/webhook/harbor", "", ""},
		{"no paas.serve: no webhook, said", registrySetupFlags{opts: registry.SetupOptions{Project: "demo"}}, noServe,
			"https://harbor.tsys.example", "", "p.yaml has no paas.serve and no --webhook-url", ""},
		{"neither", registrySetupFlags{opts: registry.SetupOptions{Project: "demo"}}, nil,
			"", "", "", "needs --harbor (TSYS_CI_HARBOR_URL) or --platform FILE (its domains.harbor)"},
	} {
		f := tc.f
		f.withPlatform(tc.spec, "p.yaml")
		checkValidate(t, tc.name, f.validate(), tc.wantErr)
		if f.harbor != tc.wantHarbor || f.opts.WebhookURL != tc.wantURL {
			t.Errorf("%s: Harbor %q, webhook %q; want %q, %q", tc.name, f.harbor, f.opts.WebhookURL, tc.wantHarbor, tc.wantURL)
		}
		if notes := strings.Join(f.notes, "\n"); (tc.wantNote == "") != (notes == "") || !strings.Contains(notes, tc.wantNote) {
			t.Errorf("%s: notes %q, want %q", tc.name, notes, tc.wantNote)
		}
	}
}

func TestJenkinsFlagsWithPlatform(t *testing.T) {
	spec := loadExamplePlatform(t)
	for _, tc := range []struct {
		name              string
		f                 jenkinsFlags
		spec              *platform.Spec
		wantURL, wantNote string
		wantErr           string
	}{
		{"platform gives", jenkinsFlags{user: "u", token: "t"}, spec, "https://jenkins.tsys.example", "from p.yaml's domains.jenkins", ""},
		{"flag wins", jenkinsFlags{url: "https://ci.example", user: "u", token: "t"}, spec, "https://ci.example", "", ""},
		{"neither", jenkinsFlags{user: "u", token: "t"}, nil, "", "", "set --url (JENKINS_URL) or --platform FILE (its domains.jenkins)"},
	} {
		f := tc.f
		f.withPlatform(tc.spec, "p.yaml")
		checkValidate(t, tc.name, f.validate(), tc.wantErr)
		if f.url != tc.wantURL || (tc.wantNote == "") != (f.note == "") || !strings.Contains(f.note, tc.wantNote) {
			t.Errorf("%s: URL %q, note %q; want %q, %q", tc.name, f.url, f.note, tc.wantURL, tc.wantNote)
		}
	}
}

// serveAs serves h over TLS as https://host (port 443) answers: with a
// certificate for host from a test CA, and for the rest of the test
// http.DefaultTransport (which the Harbor and Jenkins clients use) trusts
// that CA and dials this server for host:443, as DNS would send the name to
// the edge. The command under test calls https://host unchanged.
func serveAs(t *testing.T, host string, h http.Handler) {
	t.Helper()
	ca, err := pki.NewCA("tsys-ci test CA")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(pki.Request{CommonName: host, DNSNames: []string{host}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == host+":443" {
			addr = srv.Listener.Addr().String()
		}
		return d.DialContext(ctx, network, addr)
	}
	old := http.DefaultTransport
	http.DefaultTransport = tr
	t.Cleanup(func() { http.DefaultTransport = old })
}

// TestRegistrySetupWithPlatformAgainstTheStandIn runs registry setup as a
// user does with only --platform and --project, against the Harbor
// stand-in answering as https://harbor.tsys.example: the webhook policy it
// registers calls serve's address from platform.yaml; --webhook-url then
// wins over it.
func TestRegistrySetupWithPlatformAgainstTheStandIn(t *testing.T) {
	standin := harborstandin.New(harborstandin.Options{})
	serveAs(t, "harbor.tsys.example", standin)
	dir := t.TempDir()
	t.Setenv("TSYS_CI_HARBOR_URL", "")
	t.Setenv("TSYS_CI_HARBOR_PASSWORD", "Harbor12345")
	args := []string{"registry", "setup", "--platform", examplePlatform, "--project", "demo",
		"--robot-secret-file", filepath.Join(dir, "robot.json"), "--webhook-secrets-dir", filepath.Join(dir, "hooks")}
	stdout, stderr, code := run(t, args...)
	if code != 0 {
		t.Fatalf("Harbor stand-in: registry setup --platform: exit %d: %s", code, stderr)
	}
	serveURL := "https://tsys-ci-serve.tsys-ci.svc.cluster.local/webhook/harbor"
	for _, want := range []string{"Harbor https://harbor.tsys.example: from " + examplePlatform + "'s domains.harbor",
		"webhook URL " + serveURL + ": tsys-ci serve's, from " + examplePlatform + "'s paas.serve"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("Harbor stand-in: registry setup --platform: stderr lacks %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(stdout, "created webhook policy tsys-ci") {
		t.Errorf("Harbor stand-in: registry setup --platform made no webhook policy:\n%s", stdout)
	}
	if got := policyAddresses(t); got != serveURL {
		t.Errorf("Harbor stand-in: the webhook policy calls %q, want serve's %q from platform.yaml", got, serveURL)
	}

	other := "https://tsys-ci.tsys.example/webhook/harbor"
	if _, stderr, code := run(t, append(args, "--webhook-url", other)...); code != 0 {
		t.Fatalf("Harbor stand-in: registry setup --platform --webhook-url: exit %d: %s", code, stderr)
	}
	if got := policyAddresses(t); got != other {
		t.Errorf("Harbor stand-in: with --webhook-url the policy calls %q, want the flag's %q", got, other)
	}
}

// policyAddresses asks the Harbor stand-in (through the test's
// DefaultTransport) where project demo's webhook policies post.
func policyAddresses(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://harbor.tsys.example/api/v2.0/projects/demo/webhook/policies", nil)
	req.SetBasicAuth("admin", "Harbor12345")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var policies []struct {
		Targets []struct{ Address string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&policies); err != nil {
		t.Fatalf("Harbor stand-in: webhook policies: HTTP %d: %v", resp.StatusCode, err)
	}
	var addrs []string
	for _, p := range policies {
		for _, tg := range p.Targets {
			addrs = append(addrs, tg.Address)
		}
	}
	return strings.Join(addrs, " ")
}

// TestJenkinsSeedWithPlatformAgainstTheStandIn seeds the Jenkins stand-in,
// answering as https://jenkins.tsys.example, with --platform and -f: the
// URL comes from platform.yaml's domains.
func TestJenkinsSeedWithPlatformAgainstTheStandIn(t *testing.T) {
	s := jenkinsstandin.New(jenkinsstandin.Options{Users: []jenkinsstandin.User{
		{Name: "seeder", Tokens: []string{"tok"}, Permissions: jenkinsstandin.PermAll},
	}})
	t.Cleanup(s.Close)
	serveAs(t, "jenkins.tsys.example", s)
	t.Setenv("JENKINS_URL", "")
	t.Setenv("JENKINS_USER", "seeder")
	t.Setenv("JENKINS_API_TOKEN", "tok")
	jobs := filepath.Join("..", "..", "templates", "jenkins", "jobs.yaml")

	out, errOut, err := runApp(t, "jenkins", "seed", "--platform", examplePlatform, "-f", jobs)
	if err != nil || !strings.Contains(out, "4 created") ||
		!strings.Contains(errOut, "Jenkins https://jenkins.tsys.example: from "+examplePlatform+"'s domains.jenkins") {
		t.Fatalf("Jenkins stand-in: seed --platform: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	t.Setenv("TSYS_CI_PLATFORM", examplePlatform)
	if out, errOut, err = runApp(t, "jenkins", "seed", "-f", jobs); err != nil || !strings.Contains(out, "no changes") {
		t.Fatalf("Jenkins stand-in: second seed, platform.yaml from TSYS_CI_PLATFORM: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	// --url wins over platform.yaml: a closed port on loopback is tried, and fails.
	if _, _, err = runApp(t, "jenkins", "seed", "--url", "https://127.0.0.1:1", "-f", jobs); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Jenkins stand-in: --url did not win over platform.yaml: %v", err)
	}
	if _, _, err = runApp(t, "jenkins", "seed", "--platform", "missing.yaml", "-f", jobs); exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "--platform") {
		t.Errorf("Jenkins stand-in: a missing platform file: %v (exit %d), want exit 2 naming --platform", err, exitCode(err))
	}
}
