// Package harborstandin is a stand-in for the part of Harbor's v2.0 API
// that tsys-ci calls, for tests: no Harbor server can run on these machines.
//
// It serves the paths of go-client v0.26.2's api/v2.0/swagger.yaml with the
// behaviour measured on a real Harbor v2.12.0 (docs/harbor-standin.md lists
// what was compared and what differs): basic auth (bad credentials make a
// request anonymous rather than failing it), status codes (201 with a
// Location and no body on create, 200 with no body on update and delete, 409
// on duplicates, 404 for a missing project when the admin asks, 403 when
// anyone else does), error bodies {"errors":[{"code","message"}]} with
// Harbor's messages, X-Request-Id and X-Total-Count headers, and the public
// project "library" every Harbor starts with. Its /v2/ side is go-containerregistry's real
// registry behind Harbor's token service, so robot accounts' rights are
// enforced on push and pull, and cosign signatures become accessories.
//
// It is a stand-in: results obtained with it say so.
package harborstandin

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// Name is how results obtained against this server must be labelled.
const Name = "Harbor stand-in (Harbor v2.0 API as Harbor v2.12 serves it)"

// Version is what /systeminfo reports.
const Version = "v2.12.0-standin"

// Options configure a stand-in.
type Options struct {
	AdminUser     string // default "admin"
	AdminPassword string // default "Harbor12345", Harbor's installer default
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// PushEventOnCreateOnly makes PUSH_ARTIFACT fire only for the first
	// manifest PUT of a digest in a repository, as Harbor v2.11.1 to v2.12.0
	// do (seen on v2.12.0: tagging an artifact already pushed by digest sends
	// nothing). The default fires on every manifest PUT, as Harbor up to
	// v2.11.0 and from v2.12.1 on do.
	PushEventOnCreateOnly bool
	// HarborVersion is what /systeminfo reports as harbor_version; empty
	// means Version.
	HarborVersion string
}

// Server is the stand-in, an http.Handler. Use it with httptest.NewServer.
type Server struct {
	opts Options
	reg  http.Handler

	mu          sync.Mutex
	nextID      int64
	projects    map[string]*project // by name
	robots      map[int64]*robot
	policies    map[int64]*webhookPolicy
	retentions  map[int64]*retention
	tokens      map[string]grants
	tokenUsers  map[string]string
	artifacts   map[string]*artifact // by repository + "@" + digest
	webhookSent []Delivery
	sending     int // deliveries started, for tests: they end up in webhookSent
}

// New returns a stand-in with no projects but the admin user.
func New(o Options) *Server {
	if o.AdminUser == "" {
		o.AdminUser = "admin"
	}
	if o.AdminPassword == "" {
		o.AdminPassword = "Harbor12345"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HarborVersion == "" {
		o.HarborVersion = Version
	}
	s := &Server{
		opts:       o,
		reg:        ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))),
		nextID:     1,
		projects:   map[string]*project{},
		robots:     map[int64]*robot{},
		policies:   map[int64]*webhookPolicy{},
		retentions: map[int64]*retention{},
		tokens:     map[string]grants{},
		tokenUsers: map[string]string{},
		artifacts:  map[string]*artifact{},
	}
	// Every Harbor starts with the public project "library" (id 1).
	lib := &project{ID: s.id(), Name: "library", Owner: "admin", Created: o.Now(), Public: true, Repositories: map[string]bool{}}
	s.projects[lib.Name] = lib
	return s
}

func (s *Server) id() int64 {
	id := s.nextID
	s.nextID++
	return id
}

// ServeHTTP routes like Harbor's front: /api/v2.0/ to the API, /service/token
// to the token service, /v2/ to the registry.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := r.Header.Get("X-Request-Id")
	if rid == "" {
		rid = uuid()
	}
	w.Header().Set("X-Request-Id", rid)
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/v2.0/"):
		s.api(w, r)
	case r.URL.Path == "/service/token":
		s.token(w, r)
	case r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/"):
		s.registry(w, r)
	default:
		writeError(w, http.StatusNotFound, "NOT_FOUND", "path "+r.URL.Path+" was not found")
	}
}

// user is who a request is from: the admin, a robot, or nobody.
type user struct {
	name  string
	admin bool
	robot *robot
}

func (u user) anonymous() bool { return u.name == "" }

// authenticate reads basic auth. As in Harbor, wrong credentials do not fail
// the request: it just becomes anonymous.
func (s *Server) authenticate(r *http.Request) user {
	name, pass, ok := r.BasicAuth()
	if !ok {
		return user{}
	}
	if name == s.opts.AdminUser && pass == s.opts.AdminPassword {
		return user{name: name, admin: true}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rb := range s.robots {
		if rb.fullName() == name && rb.Secret == pass && !rb.Disable && !rb.expired(s.opts.Now()) {
			return user{name: name, robot: rb}
		}
	}
	return user{}
}

type errorBody struct {
	Errors []errorItem `json:"errors"`
}

type errorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError writes Harbor's error body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody{Errors: []errorItem{{Code: code, Message: msg}}})
}

func unauthorized(w http.ResponseWriter) {
	writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "unauthorized")
}

func forbidden(w http.ResponseWriter) {
	writeError(w, http.StatusForbidden, "FORBIDDEN", "forbidden")
}

// internalError is Harbor's answer to an error it does not classify (it
// hides the message).
func internalError(w http.ResponseWriter) {
	writeError(w, http.StatusInternalServerError, "UNKNOWN", "internal server error")
}

func notFound(w http.ResponseWriter, msg string) {
	writeError(w, http.StatusNotFound, "NOT_FOUND", msg)
}

func badRequest(w http.ResponseWriter, msg string) {
	writeError(w, http.StatusBadRequest, "BAD_REQUEST", msg)
}

func conflict(w http.ResponseWriter, msg string) {
	writeError(w, http.StatusConflict, "CONFLICT", msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// created answers a create: 201, no body, a Location relative to the host.
func created(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusCreated)
}

// decode reads a JSON body; broken JSON is Harbor's 422 (swagger
// validation), what names the body as Harbor's message does ("project").
func decode(w http.ResponseWriter, r *http.Request, what string, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY",
			"validation failure list:\nparsing "+what+" body from \"\" failed, because "+err.Error())
		return false
	}
	return true
}

// paginate applies page and page_size and sets X-Total-Count and Link as
// Harbor's list handlers do; it returns the slice bounds or false after
// answering a bad page size.
func paginate(w http.ResponseWriter, r *http.Request, total int) (int, int, bool) {
	page, size := int64(1), int64(10)
	if v := r.URL.Query().Get("page"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			writeError(w, http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY", "validation failure list:\npage in query should be greater than or equal to 1")
			return 0, 0, false
		}
		page = n
	}
	if v := r.URL.Query().Get("page_size"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			writeError(w, http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY", "validation failure list:\npage_size in query should be greater than or equal to 1")
			return 0, 0, false
		}
		if n > 100 {
			writeError(w, http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY", "validation failure list:\npage_size in query should be less than or equal to 100")
			return 0, 0, false
		}
		size = n
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	var links []string
	link := func(p int64, rel string) string {
		q := r.URL.Query()
		q.Set("page", strconv.FormatInt(p, 10))
		q.Set("page_size", strconv.FormatInt(size, 10))
		return fmt.Sprintf("<%s?%s>; rel=%q", r.URL.Path, q.Encode(), rel)
	}
	if page > 1 {
		links = append(links, link(page-1, "prev"))
	}
	if page*size < int64(total) {
		links = append(links, link(page+1, "next"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, " , "))
	}
	start := min(int((page-1)*size), total)
	return start, min(start+int(size), total), true
}

// parseQ reads Harbor's q parameter: k=v pairs joined by commas (exact
// matches only, which is all tsys-ci uses).
func parseQ(q string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(q, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// uuid is a random (version 4) UUID, the form of Harbor's X-Request-Id.
func uuid() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
