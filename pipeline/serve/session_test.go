package serve

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// cookieOf is the session cookie set sets, as the browser sends it back.
func cookieOf(t testing.TB, m *sessions, s *session) *http.Cookie {
	rec := httptest.NewRecorder()
	m.set(rec, s)
	for _, c := range rec.Result().Cookies() {
		if c.Name == sessionCookie {
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	t.Fatal("no session cookie set")
	return nil
}

func requestWith(c *http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/ui/", nil)
	if c != nil {
		r.AddCookie(c)
	}
	return r
}

// A session renewed by use still ends SessionMax after its login.
func TestSessionEndsAtItsMaximumAge(t *testing.T) {
	clock := newTestClock()
	m := &sessions{key: newSessionKey(), now: clock.Now}
	s := &session{Login: "alice", CSRF: randomToken(), Issued: clock.Now()}
	c := cookieOf(t, m, s)
	for clock.Now().Sub(s.Issued) < SessionMax-SessionIdle {
		clock.Advance(SessionIdle - time.Minute)
		got, err := m.get(requestWith(c))
		if err != nil {
			t.Fatalf("%v after login, used every %v: %v", clock.Now().Sub(s.Issued), SessionIdle-time.Minute, err)
		}
		c = cookieOf(t, m, got)
	}
	clock.Advance(SessionIdle - time.Minute)
	if _, err := m.get(requestWith(c)); err == nil {
		t.Fatalf("session accepted %v after login", clock.Now().Sub(s.Issued))
	}
	other := &sessions{key: newSessionKey(), now: clock.Now}
	fresh := cookieOf(t, m, &session{Login: "alice", CSRF: "x", Issued: clock.Now()})
	if _, err := other.get(requestWith(fresh)); err == nil {
		t.Fatal("a session signed with another key was accepted")
	}
}

// FuzzSessionCookie: whatever a browser sends as the session cookie, get
// does not panic and accepts nothing but a payload serve signed.
func FuzzSessionCookie(f *testing.F) {
	clock := newTestClock()
	m := &sessions{key: []byte(strings.Repeat("k", 32)), now: clock.Now}
	valid := cookieOf(f, m, &session{Login: "alice", Namespaces: []string{"shop"}, CSRF: "token", Issued: clock.Now()}).Value
	body, sig, _ := strings.Cut(valid, ".")
	signed, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(body + "." + sig + "x")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"l":"alice","n":["shop","web"],"c":"token"}`)) + "." + sig)
	f.Add("")
	f.Add(".")
	f.Add("e30.")
	f.Fuzz(func(t *testing.T, value string) {
		s, err := m.get(requestWith(&http.Cookie{Name: sessionCookie, Value: value}))
		if err != nil {
			return
		}
		b, _, _ := strings.Cut(value, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(b)
		if !bytes.Equal(payload, signed) || s.Login != "alice" {
			t.Fatalf("accepted a payload serve did not sign: %q -> %+v", payload, s)
		}
	})
}
