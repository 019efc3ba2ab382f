package serve

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/slapd"
	"github.com/tsys-group/tsys-ci/test/testenv"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

// shopPrevious is the version shop ran before shopImage in dashboardCluster.
var shopPrevious = "harbor.company.example/demo/shop@sha256:" + strings.Repeat("4d", 32)

// shopState is shop's rollout state as promote writes it: shopImage
// serving on green, shopPrevious kept on blue.
func shopState(at time.Time) *rollout.State {
	st := &rollout.State{App: "shop", Phase: rollout.PhaseStable, Strategy: rollout.StrategyBlueGreen,
		Active:   &rollout.Release{Color: "green", Image: shopImage, Revision: "abc1234"},
		Previous: &rollout.Release{Color: "blue", Image: shopPrevious}, UpdatedAt: at}
	st.Record(rollout.HistoryEntry{Release: *st.Previous, Strategy: rollout.StrategyBlueGreen, Result: rollout.ResultPromoted, At: at.Add(-time.Hour)})
	st.Record(rollout.HistoryEntry{Release: *st.Active, Strategy: rollout.StrategyBlueGreen, Result: rollout.ResultPromoted, At: at})
	return st
}

// dashboardCluster is a clientset holding shop's state ConfigMap and
// Service (LoadBalancer address and edge host) as rollout writes them;
// KubeAppReader reads it through the same calls as in a cluster.
func dashboardCluster(t *testing.T, st *rollout.State) kubernetes.Interface {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	edge, _ := json.Marshal([]map[string]any{{"port": "http", "hosts": []string{"shop.apps.example"}}})
	return fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: rollout.StateName("shop")}, Data: map[string]string{"state.json": string(b)}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop", Annotations: map[string]string{contract.AnnotationEdge: string(edge)}},
			Spec:   corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}}}},
	)
}

// dashboardServer is startTestServer with the UCS-shaped directory (alice
// may deploy shop, bob web, carol nothing), shop's cluster state, and
// mutate's changes.
func dashboardServer(t *testing.T, dir *slapd.Server, cs kubernetes.Interface, mutate func(*ServerOptions)) *testServer {
	t.Helper()
	ldapCfg := LDAPConfig{URL: dir.LDAPSURL, CAFile: dir.CAFile, BaseDN: dir.BaseDN}
	d, err := NewDirectory(ldapCfg, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return startTestServer(t, func(o *ServerOptions) {
		cfg := *o.Config
		cfg.LDAP = &ldapCfg
		cfg.Access = map[string]string{"shop": dir.GroupDN("shop-deployers"), "web": dir.GroupDN("web-deployers")}
		o.Config = &cfg
		o.Directory = d
		o.Apps = KubeAppReader{Client: cs}
		if mutate != nil {
			mutate(o)
		}
	})
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so each answer can be looked at.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	code int
	h    http.Header
	body string
}

func (b *browser) do(method, path string, form url.Values, header ...string) answer {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(out)}
}

func (b *browser) get(path string, header ...string) answer {
	return b.do(http.MethodGet, path, nil, header...)
}
func (b *browser) post(path string, form url.Values) answer { return b.do(http.MethodPost, path, form) }

var csrfFieldRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// field is the page's CSRF hidden field.
func field(t *testing.T, a answer) string {
	t.Helper()
	m := csrfFieldRE.FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("no csrf field in %d %s", a.code, a.body)
	}
	return m[1]
}

// login logs the browser in through the form and returns its session's
// CSRF token.
func (b *browser) login(user, pass string) string {
	b.t.Helper()
	form := b.get("/ui/login")
	a := b.post("/ui/login", url.Values{"csrf": {field(b.t, form)}, "login": {user}, "password": {pass}})
	if a.code != http.StatusSeeOther || a.h.Get("Location") != "/ui/" {
		b.t.Fatalf("%s logs in: %d %s %s", user, a.code, a.h.Get("Location"), a.body)
	}
	return field(b.t, b.get("/ui/"))
}

func checkHeaders(t *testing.T, what string, a answer) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
	} {
		if got := a.h.Get(k); got != want {
			t.Errorf("%s: %s = %q, want %q", what, k, got, want)
		}
	}
}

func TestDashboardIsOffWithoutDirectory(t *testing.T) {
	ts := startTestServer(t, nil)
	a := newBrowser(t, ts.url).get("/ui/")
	if a.code != http.StatusNotFound || !strings.Contains(a.body, "no ldap configured") {
		t.Fatalf("GET /ui/ without ldap: %d %q", a.code, a.body)
	}
	checkHeaders(t, "dashboard off", a)
}

func TestDashboardLoginSessionsAndPermissions(t *testing.T) {
	dir := ucsDirectory(t)
	cs := dashboardCluster(t, shopState(newTestClock().Now().Add(-5*time.Minute)))
	ts := dashboardServer(t, dir, cs, nil)

	anon := newBrowser(t, ts.url)
	a := anon.get("/ui/")
	if a.code != http.StatusSeeOther || a.h.Get("Location") != "/ui/login" {
		t.Fatalf("GET /ui/ without a session: %d %s", a.code, a.h.Get("Location"))
	}
	checkHeaders(t, "redirect to login", a)
	for _, p := range []string{"/ui/deploys", "/ui/apps/shop/shop"} {
		if a := anon.get(p); a.code != http.StatusSeeOther {
			t.Fatalf("GET %s without a session: %d", p, a.code)
		}
	}
	form := anon.get("/ui/login")
	checkHeaders(t, "login page", form)
	if form.code != http.StatusOK || form.h.Get("Cache-Control") != "no-store" || strings.Contains(form.body, "<script") || strings.Contains(form.body, "style=") {
		t.Fatalf("login page: %d %v %s", form.code, form.h, form.body)
	}
	token := field(t, form)

	t.Run("login form needs its cookie's token", func(t *testing.T) {
		other := newBrowser(t, ts.url) // never saw the form: a cross-site login
		a := other.post("/ui/login", url.Values{"csrf": {token}, "login": {"alice"}, "password": {"alice-pw"}})
		if a.code != http.StatusForbidden || !strings.Contains(a.body, "not sent from serve&#39;s own login form") {
			t.Fatalf("login without the form's cookie: %d %q", a.code, a.body)
		}
		for _, c := range a.h.Values("Set-Cookie") {
			if strings.HasPrefix(c, sessionCookie+"=") {
				t.Fatalf("a cross-site login set a session: %s", c)
			}
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		a := anon.post("/ui/login", url.Values{"csrf": {token}, "login": {"alice"}, "password": {"nope"}})
		if a.code != http.StatusUnauthorized || !strings.Contains(a.body, "Login failed: check your directory login and password.") {
			t.Fatalf("wrong password: %d %q", a.code, a.body)
		}
		for _, c := range a.h.Values("Set-Cookie") {
			if strings.HasPrefix(c, sessionCookie+"=") {
				t.Fatalf("a failed login set a session: %s", c)
			}
		}
		ts.clock.Advance(time.Hour) // past the throttle
	})

	alice := newBrowser(t, ts.url)
	form = alice.get("/ui/login")
	a = alice.post("/ui/login", url.Values{"csrf": {field(t, form)}, "login": {"alice"}, "password": {"alice-pw"}})
	if a.code != http.StatusSeeOther || a.h.Get("Location") != "/ui/" {
		t.Fatalf("alice logs in: %d %q", a.code, a.body)
	}
	var cookie string
	for _, c := range a.h.Values("Set-Cookie") {
		if strings.HasPrefix(c, sessionCookie+"=") {
			cookie = c
		}
	}
	for _, attr := range []string{"Path=/ui/", "HttpOnly", "SameSite=Strict", "Max-Age=1800"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("session cookie %q lacks %s", cookie, attr)
		}
	}
	if strings.Contains(cookie, "alice-pw") {
		t.Fatal("the session cookie holds the password")
	}

	apps := alice.get("/ui/")
	checkHeaders(t, "apps", apps)
	for _, want := range []string{`href="/ui/apps/shop/shop"`, `href="/ui/apps/web/blog"`, "shop@sha256:5e5e5e5e5e5e", "abc1234", "phase-stable", "shop.apps.example", "192.0.2.10:80", `<script src="/ui/static/live.js">`, "alice"} {
		if !strings.Contains(apps.body, want) {
			t.Errorf("apps page lacks %q:\n%s", want, apps.body)
		}
	}
	if apps.h.Get("Cache-Control") != "no-store" {
		t.Errorf("apps page Cache-Control %q", apps.h.Get("Cache-Control"))
	}
	csrf := field(t, apps)

	page := alice.get("/ui/apps/shop/shop")
	for _, want := range []string{"Roll back to it", `action="/ui/apps/shop/shop/rollback"`, "Promote this version", `value="` + shopPrevious + `"`, "shop@sha256:4d4d4d4d4d4d"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("alice's shop page lacks %q", want)
		}
	}
	part := alice.get("/ui/apps/shop/shop", partialHeader, "main")
	if part.code != http.StatusOK || strings.Contains(part.body, "<html") || !strings.Contains(part.body, "<h1>shop/shop</h1>") {
		t.Fatalf("partial page: %d %q", part.code, part.body)
	}
	if a := alice.get("/ui/apps/shop/nope"); a.code != http.StatusNotFound || !strings.Contains(a.body, "No policy deploys app") {
		t.Fatalf("unknown app: %d %q", a.code, a.body)
	}

	t.Run("a POST without the CSRF field is refused", func(t *testing.T) {
		for _, f := range []url.Values{{}, {"csrf": {"forged"}}, {"csrf": {token}}} {
			a := alice.post("/ui/apps/shop/shop/rollback", f)
			if a.code != http.StatusForbidden || !strings.Contains(a.body, "did not carry your session&#39;s token") {
				t.Fatalf("rollback with %v: %d %q", f, a.code, a.body)
			}
		}
		if n := len(ts.deployer.Calls()); n != 0 {
			t.Fatalf("%d deploys after refused forms", n)
		}
	})

	a = alice.post("/ui/apps/shop/shop/rollback", url.Values{"csrf": {csrf}})
	if a.code != http.StatusSeeOther || !strings.HasPrefix(a.h.Get("Location"), "/ui/apps/shop/shop?deploy=") {
		t.Fatalf("alice rolls back: %d %s %q", a.code, a.h.Get("Location"), a.body)
	}
	testenv.Eventually(t, "the rollback deployed", 10*time.Second, func() bool { return len(ts.deployer.Calls()) == 1 })
	if c := ts.deployer.Calls()[0]; c.Kind != DeployRollback || c.By != "alice" || c.Namespace != "shop" || c.App != "shop" {
		t.Fatalf("deploy %+v", c)
	}
	after := alice.get(a.h.Get("Location"))
	if !strings.Contains(after.body, "Your rollback was queued as deploy") {
		t.Fatalf("page after the rollback: %q", after.body)
	}
	a = alice.post("/ui/apps/shop/shop/promote", url.Values{"csrf": {csrf}, "image": {shopPrevious}})
	if a.code != http.StatusSeeOther {
		t.Fatalf("alice promotes a version from the history: %d %q", a.code, a.body)
	}
	testenv.Eventually(t, "the promote deployed", 10*time.Second, func() bool { return len(ts.deployer.Calls()) == 2 })
	if c := ts.deployer.Calls()[1]; c.Kind != DeployPromote || c.Image != shopPrevious || c.By != "alice" {
		t.Fatalf("deploy %+v", c)
	}
	a = alice.post("/ui/apps/shop/shop/promote", url.Values{"csrf": {csrf}, "image": {"harbor.company.example/evil/shop@sha256:" + strings.Repeat("5e", 32)}})
	if a.code != http.StatusBadRequest || !strings.Contains(a.body, "promote by digest from the policy") {
		t.Fatalf("promote of another repository's image: %d %q", a.code, a.body)
	}

	for _, who := range [][2]string{{"bob", "bob-pw"}, {"carol", "carol-pw"}} {
		t.Run(who[0]+" may not deploy shop", func(t *testing.T) {
			b := newBrowser(t, ts.url)
			csrf := b.login(who[0], who[1])
			page := b.get("/ui/apps/shop/shop")
			if page.code != http.StatusOK || strings.Contains(page.body, "<button") && !strings.Contains(page.body, "Log out</button>") || strings.Contains(page.body, "/rollback") || strings.Contains(page.body, "/promote") {
				t.Fatalf("%s's shop page shows buttons: %q", who[0], page.body)
			}
			a := b.post("/ui/apps/shop/shop/rollback", url.Values{"csrf": {csrf}})
			if a.code != http.StatusForbidden || !strings.Contains(a.body, who[0]+" may not deploy in namespace &#34;shop&#34;") || !strings.Contains(a.body, "log out and in again") {
				t.Fatalf("%s forges a rollback: %d %q", who[0], a.code, a.body)
			}
			if n := len(ts.deployer.Calls()); n != 2 {
				t.Fatalf("%d deploys after %s's forged rollback", n, who[0])
			}
		})
	}

	t.Run("a tampered session is none", func(t *testing.T) {
		u, _ := url.Parse(ts.url + "/ui/")
		cs := alice.c.Jar.Cookies(u)
		b := newBrowser(t, ts.url)
		for _, c := range cs {
			if c.Name == sessionCookie {
				// alice's signature on a payload that gives her web too.
				_, sig, _ := strings.Cut(c.Value, ".")
				payload, _ := json.Marshal(session{Login: "alice", Namespaces: []string{"shop", "web"}, CSRF: "x", Issued: ts.clock.Now(), Seen: ts.clock.Now()})
				c.Value = base64.RawURLEncoding.EncodeToString(payload) + "." + sig
			}
		}
		b.c.Jar.SetCookies(u, cs)
		if a := b.get("/ui/"); a.code != http.StatusSeeOther {
			t.Fatalf("tampered session: %d", a.code)
		}
	})

	t.Run("idle sessions end", func(t *testing.T) {
		b := newBrowser(t, ts.url)
		b.login("alice", "alice-pw")
		ts.clock.Advance(SessionIdle - time.Minute)
		if a := b.get("/ui/"); a.code != http.StatusOK {
			t.Fatalf("after %v: %d", SessionIdle-time.Minute, a.code)
		}
		ts.clock.Advance(SessionIdle - time.Minute) // renewed by the last request
		if a := b.get("/ui/"); a.code != http.StatusOK {
			t.Fatalf("renewed session: %d", a.code)
		}
		ts.clock.Advance(SessionIdle + time.Second)
		if a := b.get("/ui/"); a.code != http.StatusSeeOther {
			t.Fatalf("idle session: %d", a.code)
		}
		a := b.post("/ui/apps/shop/shop/rollback", url.Values{"csrf": {"whatever"}})
		if a.code != http.StatusUnauthorized || !strings.Contains(a.body, "Your session has ended") {
			t.Fatalf("rollback after the session ended: %d %q", a.code, a.body)
		}
	})

	t.Run("logout", func(t *testing.T) {
		b := newBrowser(t, ts.url)
		csrf := b.login("alice", "alice-pw")
		if a := b.post("/ui/logout", url.Values{}); a.code != http.StatusForbidden {
			t.Fatalf("logout without the token: %d", a.code)
		}
		if a := b.post("/ui/logout", url.Values{"csrf": {csrf}}); a.code != http.StatusSeeOther || a.h.Get("Location") != "/ui/login" {
			t.Fatalf("logout: %d", a.code)
		}
		if a := b.get("/ui/"); a.code != http.StatusSeeOther {
			t.Fatalf("after logout: %d", a.code)
		}
	})

	t.Run("static files", func(t *testing.T) {
		a := anon.get("/ui/static/live.js")
		checkHeaders(t, "live.js", a)
		if a.code != http.StatusOK || a.h.Get("Content-Type") != "text/javascript; charset=utf-8" || !strings.Contains(a.body, "X-Tsys-Partial") {
			t.Fatalf("live.js: %d %v", a.code, a.h)
		}
		if a := anon.get("/ui/static/style.css"); a.code != http.StatusOK || !strings.HasPrefix(a.h.Get("Content-Type"), "text/css") {
			t.Fatalf("style.css: %d %v", a.code, a.h)
		}
		if a := anon.get("/ui/static/layout.html"); a.code != http.StatusNotFound {
			t.Fatalf("a template as a static file: %d", a.code)
		}
	})
}

func TestDashboardSessionKeyIsSharedByReplicas(t *testing.T) {
	dir := ucsDirectory(t)
	cs := dashboardCluster(t, shopState(newTestClock().Now()))
	keyFile := filepath.Join(t.TempDir(), "session.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("k", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withKey := func(o *ServerOptions) {
		cfg := *o.Config
		cfg.Dashboard = &DashboardConfig{SessionKeyFile: keyFile}
		o.Config = &cfg
	}
	one, two := dashboardServer(t, dir, cs, withKey), dashboardServer(t, dir, cs, withKey)
	other := dashboardServer(t, dir, cs, nil)
	if len(other.logs.Lines("dashboard sessions are signed with a random key of this replica: they end when serve restarts and a browser reaching another replica must log in again; set serve.yaml dashboard.sessionKeyFile to a key shared by the replicas")) != 1 {
		t.Errorf("no warning about the random key: %s", other.logs.String())
	}
	if len(one.logs.Lines("dashboard sessions are signed with a random key of this replica: they end when serve restarts and a browser reaching another replica must log in again; set serve.yaml dashboard.sessionKeyFile to a key shared by the replicas")) != 0 {
		t.Error("warned about the random key with a key file")
	}
	b := newBrowser(t, one.url)
	b.login("alice", "alice-pw")
	u1, _ := url.Parse(one.url + "/ui/")
	for _, srv := range []*testServer{two, other} {
		c := newBrowser(t, srv.url)
		u, _ := url.Parse(srv.url + "/ui/")
		c.c.Jar.SetCookies(u, b.c.Jar.Cookies(u1))
		a := c.get("/ui/")
		if srv == two && a.code != http.StatusOK || srv == other && a.code != http.StatusSeeOther {
			t.Errorf("session of replica one on %s: %d", srv.url, a.code)
		}
	}

	if err := os.WriteFile(keyFile, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig("testdata/serve/serve.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dashboard = &DashboardConfig{SessionKeyFile: keyFile}
	if _, err := NewServer(ServerOptions{Config: cfg, WebhookSecrets: testSecrets}); err == nil || !strings.Contains(err.Error(), "holds 5 bytes; put at least 32 random ones") {
		t.Fatalf("short key: %v", err)
	}
	cfg.Dashboard.SessionKeyFile = filepath.Join(t.TempDir(), "absent")
	if _, err := NewServer(ServerOptions{Config: cfg, WebhookSecrets: testSecrets}); err == nil || !strings.Contains(err.Error(), "dashboard.sessionKeyFile") {
		t.Fatalf("absent key: %v", err)
	}
}
