package serve

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tsys-group/tsys-ci/test/slapd"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// ucsDirectory starts the UCS-shaped slapd fixture with:
// alice in shop-deployers (posixGroup+univentionGroup: memberUid and
// uniqueMember), bob in web-deployers (groupOfNames: member), carol in no
// group, and "x*", a real user whose name is a filter wildcard, in no group
// either, while xavier is in shop-deployers.
func ucsDirectory(t *testing.T) *slapd.Server {
	s := slapd.Start(t)
	s.LoadLDIF(t, strings.Join([]string{
		s.UserLDIF("alice", "alice-pw"), s.UserLDIF("bob", "bob-pw"), s.UserLDIF("carol", "carol-pw"),
		s.UserLDIF("xavier", "xavier-pw"), s.UserLDIF("x*", "xstar-pw"),
		s.GroupLDIF("shop-deployers", "alice", "xavier"), s.GroupOfNamesLDIF("web-deployers", "bob"),
	}, "\n"))
	return s
}

func apiServer(t *testing.T, dir *slapd.Server, ldapCfg LDAPConfig) *testServer {
	t.Helper()
	d, err := NewDirectory(ldapCfg, func(string) string { return slapd.AdminPassword })
	if err != nil {
		t.Fatal(err)
	}
	return startTestServer(t, func(o *ServerOptions) {
		cfg := *o.Config
		cfg.LDAP = &ldapCfg
		cfg.Access = map[string]string{"shop": dir.GroupDN("shop-deployers"), "web": dir.GroupDN("web-deployers")}
		o.Config = &cfg
		o.Directory = d
	})
}

func manual(t *testing.T, ts *testServer, path, user, pass string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, ts.url+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

var shopImage = "harbor.company.example/demo/shop@sha256:" + strings.Repeat("5e", 32)

func TestManualDeploysAgainstUCSDirectory(t *testing.T) {
	dir := ucsDirectory(t)
	modes := map[string]LDAPConfig{
		// Service account, StartTLS verified with the CA file.
		"service account over StartTLS": {URL: dir.URL, StartTLS: true, CAFile: dir.CAFile, BaseDN: dir.BaseDN,
			BindDN: dir.AdminDN, BindPasswordEnv: "LDAP_BIND_PASSWORD"},
		// No service account: users bind directly (DN built with escaping), over LDAPS.
		"direct bind over LDAPS": {URL: dir.LDAPSURL, CAFile: dir.CAFile, BaseDN: dir.BaseDN},
	}
	for name, cfg := range modes {
		t.Run(name, func(t *testing.T) {
			ts := apiServer(t, dir, cfg)
			promote := map[string]string{"namespace": "shop", "app": "shop", "image": shopImage}

			code, reply := manual(t, ts, "/api/v1/promote", "alice", "alice-pw", promote)
			if code != http.StatusAccepted || reply["by"] != "alice" || reply["kind"] != "promote" || reply["trigger"] != "api" {
				t.Fatalf("alice promotes shop: %d %v", code, reply)
			}
			if code, reply := manual(t, ts, "/api/v1/rollback", "alice", "alice-pw", map[string]string{"namespace": "shop", "app": "shop"}); code != http.StatusAccepted || reply["kind"] != "rollback" {
				t.Fatalf("alice rolls back shop: %d %v", code, reply)
			}
			// bob is a member by DN (groupOfNames): web yes, shop no.
			blog := map[string]string{"namespace": "web", "app": "blog", "image": "harbor.company.example/web/blog/frontend@sha256:" + strings.Repeat("0b", 32)}
			if code, reply := manual(t, ts, "/api/v1/promote", "bob", "bob-pw", blog); code != http.StatusAccepted {
				t.Fatalf("bob promotes blog in web: %d %v", code, reply)
			}
			if code, reply := manual(t, ts, "/api/v1/promote", "bob", "bob-pw", promote); code != http.StatusForbidden {
				t.Fatalf("bob promotes shop: %d %v, want 403", code, reply)
			}
			if code, _ := manual(t, ts, "/api/v1/promote", "carol", "carol-pw", promote); code != http.StatusForbidden {
				t.Fatalf("carol (no group) promotes shop: %d, want 403", code)
			}
			if code, _ := manual(t, ts, "/api/v1/promote", "alice", "alice-pw", map[string]string{"namespace": "shop", "app": "shop",
				"image": "harbor.company.example/evil/shop@sha256:" + strings.Repeat("5e", 32)}); code != http.StatusBadRequest {
				t.Fatalf("promote of another repository's image: %d, want 400", code)
			}
			testenv.Eventually(t, "three deploys done", 10*time.Second, func() bool {
				n := 0
				for _, r := range ts.recorder.Recent() {
					if r.State == "done" {
						n++
					}
				}
				return n == 3
			})
			calls := ts.deployer.Calls()
			if len(calls) != 3 || calls[0].Image != shopImage || calls[0].By != "alice" || calls[1].Kind != DeployRollback {
				t.Fatalf("deployer calls %+v", calls)
			}
		})
	}
}

func TestLoginFailuresSayNothingAndInjectionFails(t *testing.T) {
	dir := ucsDirectory(t)
	for name, cfg := range map[string]LDAPConfig{
		"service account": {URL: dir.LDAPSURL, CAFile: dir.CAFile, BaseDN: dir.BaseDN, BindDN: dir.AdminDN, BindPasswordEnv: "X"},
		"direct bind":     {URL: dir.URL, StartTLS: true, CAFile: dir.CAFile, BaseDN: dir.BaseDN},
	} {
		t.Run(name, func(t *testing.T) {
			ts := apiServer(t, dir, cfg)
			promote := map[string]string{"namespace": "shop", "app": "shop", "image": shopImage}
			var first map[string]any
			for _, tc := range []struct{ why, user, pass string }{
				{"wrong password", "alice", "nope"},
				{"unknown user", "nobody", "alice-pw"},
				{"empty password (would be an anonymous bind)", "alice", ""},
				{"filter wildcard", "*", "alice-pw"},
				{"filter injection", "alice)(uid=*", "alice-pw"},
				{"filter injection with or", "*)(|(uid=*", "alice-pw"},
				{"prefix wildcard", "xav*", "xavier-pw"},
				{"DN injection", "alice,cn=users," + dir.BaseDN, "alice-pw"},
				{"DN injection with plus", "alice+cn=x", "alice-pw"},
				{"NUL byte", "alice\x00", "alice-pw"},
			} {
				// A fresh address each time would dodge the throttle; the
				// test's client has one address, so advance past it instead.
				ts.clock.Advance(time.Hour)
				code, reply := manual(t, ts, "/api/v1/promote", tc.user, tc.pass, promote)
				if code != http.StatusUnauthorized {
					t.Fatalf("%s (%q): %d %v, want 401", tc.why, tc.user, code, reply)
				}
				if first == nil {
					first = reply
				} else if reply["error"] != first["error"] {
					t.Fatalf("%s answers %v, the first refusal %v: a failed login must not say what was wrong", tc.why, reply, first)
				}
			}
			// "x*" is a real user: it logs in, and its name does not match
			// xavier's memberUid as a wildcard would.
			ts.clock.Advance(time.Hour)
			if code, reply := manual(t, ts, "/api/v1/promote", "x*", "xstar-pw", promote); code != http.StatusForbidden {
				t.Fatalf("user x* promotes shop: %d %v, want 403 (not a member)", code, reply)
			}
			if len(ts.deployer.Calls()) != 0 {
				t.Fatal("a refused login deployed")
			}
			if got := testutil.ToFloat64(ts.metrics.LoginFailures.WithLabelValues("credentials")); got != 10 {
				t.Fatalf("login failure metric %v, want 10", got)
			}
		})
	}
}

func TestLoginThrottledPerUserAndAddress(t *testing.T) {
	dir := ucsDirectory(t)
	ts := apiServer(t, dir, LDAPConfig{URL: dir.LDAPSURL, CAFile: dir.CAFile, BaseDN: dir.BaseDN, BindDN: dir.AdminDN, BindPasswordEnv: "X"})
	rollback := map[string]string{"namespace": "shop", "app": "shop"}
	for i := 0; i < 4; i++ {
		if code, _ := manual(t, ts, "/api/v1/rollback", "alice", "guess", rollback); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	// Now even the right password waits, for alice and for this address.
	code, reply := manual(t, ts, "/api/v1/rollback", "alice", "alice-pw", rollback)
	if code != http.StatusTooManyRequests || !strings.Contains(reply["error"].(string), "retry in 1 s") {
		t.Fatalf("after 4 failures: %d %v, want 429", code, reply)
	}
	if code, _ := manual(t, ts, "/api/v1/rollback", "bob", "bob-pw", rollback); code != http.StatusTooManyRequests {
		t.Fatalf("another user from the same address: %d, want 429", code)
	}
	ts.clock.Advance(time.Second)
	if code, reply := manual(t, ts, "/api/v1/rollback", "alice", "alice-pw", rollback); code != http.StatusAccepted {
		t.Fatalf("after the wait: %d %v", code, reply)
	}
	if got := testutil.ToFloat64(ts.metrics.LoginFailures.WithLabelValues("throttled")); got != 2 {
		t.Fatalf("throttled metric %v, want 2", got)
	}
}

// Issue 17 finding 7: one spelling per login. Spaces around it, a
// no-break space, full-width letters are refused like a wrong password;
// another case logs in as the directory's name and is recorded so.
func TestLoginNamesCanonical(t *testing.T) {
	dir := ucsDirectory(t)
	for name, cfg := range map[string]LDAPConfig{
		"service account": {URL: dir.LDAPSURL, CAFile: dir.CAFile, BaseDN: dir.BaseDN, BindDN: dir.AdminDN, BindPasswordEnv: "X"},
		"direct bind":     {URL: dir.LDAPSURL, CAFile: dir.CAFile, BaseDN: dir.BaseDN},
	} {
		t.Run(name, func(t *testing.T) {
			ts := apiServer(t, dir, cfg)
			promote := map[string]string{"namespace": "shop", "app": "shop", "image": shopImage}
			for _, login := range []string{" alice", "alice ", "  alice  ", "\u00a0alice", "ａｌｉｃｅ", "alice\t", "al ice"} {
				if code, reply := manual(t, ts, "/api/v1/promote", login, "alice-pw", promote); code != http.StatusUnauthorized || reply["error"] != "login failed" {
					t.Errorf("login %q with alice's password: %d %v, want 401 login failed", login, code, reply)
				}
				ts.clock.Advance(10 * time.Minute) // past the address's back-off
			}
			code, reply := manual(t, ts, "/api/v1/promote", "ALICE", "alice-pw", promote)
			if code != http.StatusAccepted || reply["by"] != "alice" {
				t.Fatalf("ALICE: %d %v, want 202 by alice", code, reply)
			}
		})
	}
}

// Issue 17 finding 10: POST promote and rollback take application/json
// only (a browser sends text/plain and forms across sites without a
// preflight) and one JSON value.
func TestManualPostNeedsJSON(t *testing.T) {
	dir := ucsDirectory(t)
	ts := apiServer(t, dir, LDAPConfig{URL: dir.LDAPSURL, CAFile: dir.CAFile, BaseDN: dir.BaseDN, BindDN: dir.AdminDN, BindPasswordEnv: "X"})
	body := `{"namespace":"shop","app":"shop","image":"` + shopImage + `"}`
	for _, tc := range []struct {
		name, ctype, body string
		code              int
	}{
		{"text/plain", "text/plain", body, 415},
		{"text/plain;charset", "text/plain;charset=UTF-8", body, 415},
		{"form", "application/x-www-form-urlencoded", body, 415},
		{"multipart", "multipart/form-data; boundary=x", body, 415},
		{"none", "", body, 415},
		{"trailing garbage", "application/json", body + "}}}garbage", 400},
		{"two objects", "application/json", body + body, 400},
		{"json", "application/json; charset=utf-8", body, 202},
	} {
		for _, path := range []string{"/api/v1/promote", "/api/v1/rollback"} {
			b := tc.body
			want := tc.code
			if path == "/api/v1/rollback" {
				b = strings.Replace(b, `,"image":"`+shopImage+`"`, "", -1)
			}
			req, _ := http.NewRequest(http.MethodPost, ts.url+path, strings.NewReader(b))
			req.SetBasicAuth("alice", "alice-pw")
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if code, r := do(t, req); code != want {
				t.Errorf("%s %s: %d %v, want %d", path, tc.name, code, r, want)
			}
		}
	}
}

// Issue 17 finding 9: the API reads and /metrics need the read token or a
// directory login.
func TestReadsNeedLogin(t *testing.T) {
	dir := ucsDirectory(t)
	ts := apiServer(t, dir, LDAPConfig{URL: dir.LDAPSURL, CAFile: dir.CAFile, BaseDN: dir.BaseDN, BindDN: dir.AdminDN, BindPasswordEnv: "X"})
	for _, path := range []string{"/api/v1/policies", "/api/v1/deploys", "/metrics"} {
		for _, tc := range []struct {
			name, auth string
			code       int
		}{
			{"nothing", "", 401},
			{"wrong token", "Bearer not-the-read-token-0000", 401},
			{"webhook secret", testSecret, 401},
			{"read token", "Bearer " + testReadToken, 200},
			{"carol (no group)", "carol:carol-pw", 200},
			{"carol, wrong password", "carol:nope", 401},
		} {
			req, _ := http.NewRequest(http.MethodGet, ts.url+path, nil)
			if u, p, ok := strings.Cut(tc.auth, ":"); ok {
				req.SetBasicAuth(u, p)
			} else if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("GET %s with %s: %d, want %d", path, tc.name, resp.StatusCode, tc.code)
			}
		}
	}
	// Without ldap and without a read token, reads are closed.
	closed := startTestServer(t, func(o *ServerOptions) { o.ReadToken = "" })
	code, r := do(t, func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, closed.url+"/api/v1/deploys", nil)
		return req
	}())
	if msg, _ := r["error"].(string); code != 401 || !strings.Contains(msg, "readTokenFile") {
		t.Fatalf("reads without ldap or token: %d %v", code, r)
	}
}

func TestReadOnlyAPI(t *testing.T) {
	ts := startTestServer(t, nil)
	get := func(path string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, ts.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+testReadToken)
		return do(t, req)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, r := get("/readyz"); code != 200 || r["leader"] != true {
		t.Fatalf("readyz %d %v", code, r)
	}
	ts.SetReady(false)
	if code, _ := get("/readyz"); code != 503 {
		t.Fatalf("readyz while not ready: %d", code)
	}
	if code, r := get("/api/v1/policies"); code != 200 || len(r["policies"].([]any)) != 3 {
		t.Fatalf("policies %d %v", code, r)
	}
	post(t, ts.url+"/webhook/harbor", testSecret, "application/json", harborPush("demo/shop", "main-9", ts.clock.Now().Unix(), 9))
	testenv.Eventually(t, "the deploy", 10*time.Second, func() bool { r := ts.recorder.Recent(); return len(r) == 1 && r[0].State == "done" })
	code, r := get("/api/v1/deploys")
	d := r["deploys"].([]any)
	if code != 200 || len(d) != 1 || d[0].(map[string]any)["result"] != "succeeded" || d[0].(map[string]any)["policy"] != "shop-main" {
		t.Fatalf("deploys %d %v", code, r)
	}
	// Without ldap, manual deploys are off.
	if code, _ := manual(t, ts, "/api/v1/promote", "alice", "alice-pw", map[string]string{}); code != http.StatusNotFound {
		t.Fatalf("manual promote without ldap: %d", code)
	}
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testReadToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	for _, m := range []string{`tsys_ci_serve_webhook_events_total{result="accepted"} 1`, `tsys_ci_serve_deploys_total{kind="promote",result="succeeded"} 1`, "tsys_ci_serve_deploy_duration_seconds_bucket"} {
		if !strings.Contains(buf.String(), m) {
			t.Fatalf("/metrics lacks %q:\n%s", m, buf.String())
		}
	}
}
