// Package jenkinsstandin is a Jenkins stand-in: an http.Handler that answers
// the part of Jenkins' remote API that tsys-ci reaches through gojenkins
// (crumbs, folders, createItem, config.xml, build triggers, the queue, build
// status and the progressive console), with Jenkins' paths, status codes,
// auth and error headers.
//
// No Jenkins server can be obtained on the machines this project runs on, so
// tests of `tsys-ci jenkins seed` and `tsys-ci jenkins run` talk to this
// instead. It is written from Jenkins' own sources (see
// shared/notes/jenkins-api.md for the file each behaviour comes from), it is
// tested on its own (standin_test.go), and it says "stand-in" in its version
// header and every page it serves so no result can pass for real Jenkins.
//
// What it does not do: run pipelines (a Runner supplied by the test writes
// the console and picks the result), index multibranch projects, views,
// nodes, plugins, or re-serialise config.xml the way XStream does (it stores
// the posted XML and serves it back behind Jenkins' XML 1.1 declaration).
package jenkinsstandin

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Version is what the stand-in puts in the X-Jenkins header: a Jenkins LTS
// number with a qualifier, so every client that prints the version also
// prints that it talked to the stand-in.
const Version = "2.479.3-stand-in"

// Permission is a set of the Jenkins permissions the stand-in checks.
type Permission uint

// The permissions, named as Jenkins names them in X-Required-Permission.
const (
	PermRead      Permission = 1 << iota // hudson.model.Hudson.Read
	PermCreate                           // hudson.model.Item.Create
	PermConfigure                        // hudson.model.Item.Configure
	PermDelete                           // hudson.model.Item.Delete
	PermBuild                            // hudson.model.Item.Build
	PermAll       = PermRead | PermCreate | PermConfigure | PermDelete | PermBuild
)

var permissionNames = map[Permission]string{
	PermRead:      "hudson.model.Hudson.Read",
	PermCreate:    "hudson.model.Item.Create",
	PermConfigure: "hudson.model.Item.Configure",
	PermDelete:    "hudson.model.Item.Delete",
	PermBuild:     "hudson.model.Item.Build",
}

// User is a Jenkins account: it logs in with its password (then POSTs need
// a crumb bound to its session) or with one of its API tokens (exempt from
// crumbs, as Jenkins' ApiCrumbExclusion makes them).
type User struct {
	Name        string
	Password    string
	Tokens      []string
	Permissions Permission
}

// Runner executes a build: it writes the console through b and returns the
// result (SUCCESS, UNSTABLE, FAILURE, NOT_BUILT or ABORTED). It runs on its
// own goroutine; the build is complete when it returns.
type Runner func(b *Build) string

// Options configure a stand-in.
type Options struct {
	Users []User
	// QuietPeriod before a queued build starts. Jenkins' default is 5 s;
	// tests set their own, as an administrator can in Jenkins.
	QuietPeriod time.Duration
	// Runner runs builds; nil runs DefaultRunner.
	Runner Runner
	// Now is the clock for timestamps and queue expiry; nil is time.Now.
	Now func() time.Time
}

// DefaultRunner succeeds at once with a console that says no pipeline ran.
func DefaultRunner(b *Build) string {
	b.Logf("Jenkins stand-in: no pipeline is executed for %s #%d\n", b.Job(), b.Number())
	return "SUCCESS"
}

// Server is the stand-in. Create it with New and serve it with
// httptest.NewServer or any http.Server; its zero value is not usable.
type Server struct {
	opts         Options
	cookieName   string
	crumbSecret  string
	mu           sync.Mutex
	root         *item
	sessions     map[string]string // session id -> user name
	queue        map[int]*queueItem
	nextQueueID  int
	runners      sync.WaitGroup
	closed       bool
	pendingTimer map[int]*time.Timer
}

// New returns a stand-in with an empty item tree.
func New(opts Options) *Server {
	if opts.Runner == nil {
		opts.Runner = DefaultRunner
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{
		opts:         opts,
		cookieName:   "JSESSIONID." + randomHex(4),
		crumbSecret:  randomHex(16),
		root:         &item{kind: kindRoot},
		sessions:     map[string]string{},
		queue:        map[int]*queueItem{},
		nextQueueID:  1,
		pendingTimer: map[int]*time.Timer{},
	}
}

// Close stops builds from starting and waits for running builds to finish.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for id, t := range s.pendingTimer {
		t.Stop()
		delete(s.pendingTimer, id)
	}
	s.mu.Unlock()
	s.runners.Wait()
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("Jenkins stand-in: reading random bytes: %v", err))
	}
	return hex.EncodeToString(b)
}

// request is one authenticated request on its way through the routes.
type request struct {
	w        http.ResponseWriter
	r        *http.Request
	user     *User // nil: anonymous
	viaToken bool
}

func (q *request) name() string {
	if q.user == nil {
		return "anonymous"
	}
	return q.user.Name
}

// ServeHTTP routes like Stapler: empty path segments are ignored (so
// gojenkins' `/job/a//7/api/json` works) and a web method runs even with
// tokens left over (so its doubled `api/json/api/json` works).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Jenkins", Version)
	w.Header().Set("Server", "Jenkins stand-in (tsys-ci test/jenkinsstandin)")
	q, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	if q.user == nil || q.user.Permissions&PermRead == 0 {
		s.forbidden(q, PermRead)
		return
	}
	if r.Method == http.MethodPost && !q.viaToken && !s.validCrumb(q) {
		// CrumbFilter.java: plain 403 with this message.
		http.Error(w, "No valid crumb was included in the request", http.StatusForbidden)
		return
	}
	var tokens []string
	for _, t := range strings.Split(r.URL.Path, "/") {
		if t != "" {
			tokens = append(tokens, t)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(tokens) > 0 {
		switch tokens[0] {
		case "crumbIssuer":
			s.serveCrumb(q, tokens[1:])
			return
		case "queue":
			s.serveQueue(q, tokens[1:])
			return
		}
	}
	s.serveItem(q, s.root, tokens)
}

// authenticate applies HTTP basic auth as BasicHeaderProcessor does: a bad
// user, password or token is a 401 on any URL; no header is anonymous.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*request, bool) {
	q := &request{w: w, r: r}
	name, secret, ok := r.BasicAuth()
	if !ok {
		return q, true
	}
	for i := range s.opts.Users {
		u := &s.opts.Users[i]
		if u.Name != name {
			continue
		}
		for _, t := range u.Tokens {
			if t != "" && t == secret {
				q.user, q.viaToken = u, true
				return q, true
			}
		}
		if u.Password != "" && u.Password == secret {
			q.user = u
			return q, true
		}
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="Jenkins"`)
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	fmt.Fprintf(w, "<html><body><h2>HTTP ERROR 401 Invalid password/token for user: %s</h2><p>Jenkins stand-in</p></body></html>\n", htmlEscape(name))
	return q, false
}

// forbidden answers 403 as Jenkins does: the login page for anonymous,
// X-Required-Permission for a user who lacks the permission.
func (s *Server) forbidden(q *request, p Permission) {
	h := q.w.Header()
	h.Set("Content-Type", "text/html;charset=utf-8")
	if q.user == nil {
		h.Set("X-You-Are-Authenticated-As", "anonymous")
		q.w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(q.w, "<html><body>Authentication required (Jenkins stand-in)</body></html>\n")
		return
	}
	h.Set("X-You-Are-Authenticated-As", q.user.Name)
	h.Set("X-Required-Permission", permissionNames[p])
	q.w.WriteHeader(http.StatusForbidden)
	fmt.Fprintf(q.w, "<html><body>%s is missing the %s permission (Jenkins stand-in)</body></html>\n",
		htmlEscape(q.user.Name), permissionNames[p])
}

func (s *Server) allowed(q *request, p Permission) bool {
	if q.user.Permissions&p == p {
		return true
	}
	s.forbidden(q, p)
	return false
}

// crumbFor binds a crumb to the user and the HTTP session, as
// DefaultCrumbIssuer has since SECURITY-626.
func (s *Server) crumbFor(user, session string) string {
	sum := sha256.Sum256([]byte(s.crumbSecret + ";" + user + ";" + session))
	return hex.EncodeToString(sum[:])
}

func (s *Server) sessionOf(r *http.Request) string {
	c, err := r.Cookie(s.cookieName)
	if err != nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[c.Value]; !ok {
		return ""
	}
	return c.Value
}

func (s *Server) validCrumb(q *request) bool {
	session := s.sessionOf(q.r)
	if session == "" {
		return false
	}
	got := q.r.Header.Get("Jenkins-Crumb")
	if got == "" {
		got = q.r.URL.Query().Get("Jenkins-Crumb")
	}
	return got != "" && got == s.crumbFor(q.name(), session)
}

// serveCrumb is GET /crumbIssuer/api/json; it opens a session when the
// request has none, so a password client must send the cookie back.
func (s *Server) serveCrumb(q *request, rest []string) {
	if !isAPIJSON(rest) {
		notFound(q)
		return
	}
	session := ""
	if c, err := q.r.Cookie(s.cookieName); err == nil {
		if _, ok := s.sessions[c.Value]; ok {
			session = c.Value
		}
	}
	if session == "" {
		session = randomHex(16)
		s.sessions[session] = q.name()
		http.SetCookie(q.w, &http.Cookie{Name: s.cookieName, Value: session, Path: "/", HttpOnly: true})
	}
	writeJSON(q, map[string]any{
		"_class":            "hudson.security.csrf.DefaultCrumbIssuer",
		"crumb":             s.crumbFor(q.name(), session),
		"crumbRequestField": "Jenkins-Crumb",
	})
}
