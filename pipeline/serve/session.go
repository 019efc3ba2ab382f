package serve

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// Dashboard sessions are signed cookies, not server memory: serve runs two
// replicas behind one Service, and a browser's next request may reach the
// other one. Every replica signs and checks with the same key (serve.yaml
// sessionKeyFile, a mounted Secret); without one each replica makes its
// own at start, and a request that reaches the other replica asks to log
// in again (said in the log at start).
const (
	sessionCookie = "tsys_ci_session"
	// SessionIdle ends a session nobody used for this long; each request
	// renews it, so an open page stays logged in while its live updates run.
	SessionIdle = 30 * time.Minute
	// SessionMax ends every session this long after its login, renewed or
	// not: the directory's group changes reach the dashboard within it.
	SessionMax = 12 * time.Hour
)

// session is what the cookie carries, signed. Namespaces are those whose
// deploy group the user was in at login (serve.yaml access), so a page
// knows which buttons to show without asking the directory again.
type session struct {
	Login      string    `json:"l"`
	Namespaces []string  `json:"n,omitempty"`
	CSRF       string    `json:"c"`
	Issued     time.Time `json:"i"`
	Seen       time.Time `json:"s"`
}

// sessions signs and checks session cookies.
type sessions struct {
	key    []byte
	secure bool // the Secure attribute: serve speaks TLS
	now    func() time.Time
}

func newSessionKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return k
}

func randomToken() string {
	return base64.RawURLEncoding.EncodeToString(newSessionKey())
}

func (m *sessions) sign(payload []byte) string {
	mac := hmac.New(sha256.New, m.key)
	mac.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

var errNoSession = errors.New("not logged in")

// get reads and checks the request's session: signature, idle time and
// age. A session past either limit is no session.
func (m *sessions) get(r *http.Request) (*session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, errNoSession
	}
	body, sig, ok := strings.Cut(c.Value, ".")
	if !ok {
		return nil, errNoSession
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(body)
	got, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return nil, errNoSession
	}
	mac := hmac.New(sha256.New, m.key)
	mac.Write(payload)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return nil, errNoSession
	}
	var s session
	if err := json.Unmarshal(payload, &s); err != nil {
		return nil, errNoSession
	}
	now := m.now()
	if now.Sub(s.Seen) > SessionIdle || now.Sub(s.Issued) > SessionMax || s.Login == "" || s.CSRF == "" {
		return nil, errNoSession
	}
	return &s, nil
}

// set writes (or renews) the session cookie: HttpOnly (no script reads
// it), SameSite=Strict (no other site's page sends it), Secure over TLS.
func (m *sessions) set(w http.ResponseWriter, s *session) {
	s.Seen = m.now()
	payload, _ := json.Marshal(s)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: m.sign(payload), Path: "/ui/",
		HttpOnly: true, Secure: m.secure, SameSite: http.SameSiteStrictMode, MaxAge: int(SessionIdle / time.Second)})
}

// clear ends the session in this browser.
func (m *sessions) clear(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/ui/",
		HttpOnly: true, Secure: m.secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// csrfOK checks a form's token against the session's: a form another site
// made cannot know it, even where SameSite is not honoured.
func (s *session) csrfOK(r *http.Request) bool {
	return hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(s.CSRF))
}
