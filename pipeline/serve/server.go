package serve

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tsys-group/tsys-ci/pipeline/notify"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tsys-group/tsys-ci/rollout"
)

// Authenticator checks a person's login; *Directory is the LDAP one.
type Authenticator interface {
	Authenticate(login, password string) (*Identity, error)
}

// GroupReader reads a person's groups as they are now, without their
// password (*Directory with a service account). The dashboard asks it
// before each deploy; without one, a deploy needs a fresh login.
type GroupReader interface {
	Lookup(login string) (*Identity, error)
}

// ServerOptions are everything a Server needs, passed in.
type ServerOptions struct {
	Config *Config
	// WebhookSecrets are, by Harbor project, the exact Authorization
	// header value that project's webhook policy sends (auth_header, e.g.
	// "Bearer <random>"). Nil reads them from Config.WebhookSecretsDir.
	WebhookSecrets map[string]string
	// Directory logs people in; nil turns manual promote and rollback off.
	Directory Authenticator
	Deployer  Deployer
	Events    DeployEventSink // may be nil
	// ReadToken is the bearer token of API reads and /metrics; "" reads
	// Config.ReadTokenFile when set.
	ReadToken string
	// PushOrder keeps each app's newest accepted push where every replica
	// sees it (KubePushOrder); nil keeps it in this process only.
	PushOrder PushOrder
	Registry  *prometheus.Registry
	Log       *slog.Logger
	Clock     rollout.Clock
	// ReplayWindow defaults to DefaultReplayWindow.
	ReplayWindow time.Duration
	// RecentDeploys is how many deploys the API keeps (default 200).
	RecentDeploys int
	// Apps reads the apps' rollout state and addresses for the dashboard
	// (KubeAppReader); nil shows them as unknown (serve without a cluster).
	Apps AppReader
	// Stages keeps the staged policies' records (KubeStageStore); nil
	// turns stages off (serve without a cluster): pushes deploy to the
	// first stage only.
	Stages StageStore
	// StageInterval is how often the leader checks the stages' gates
	// (default DefaultStageInterval).
	StageInterval time.Duration
	// Admission, when set, answers the API server's validating webhook
	// at AdmissionPath, on every replica (leader or not).
	Admission *ImageAdmission
}

// Server is tsys-ci serve's HTTP side: Harbor's webhook, the JSON API and
// metrics, in front of a per-app deploy queue.
type Server struct {
	cfg            *Config
	webhookSecrets map[string]string
	dir            Authenticator
	log            *slog.Logger
	clock          rollout.Clock
	metrics        *Metrics
	registry       *prometheus.Registry
	replay         *ReplayCache
	throttle       *LoginThrottle
	queue          *DeployQueue
	recorder       *DeployRecorder
	webhookMu      sync.Mutex
	tls            *tls.Config // nil: plain HTTP (InsecurePlainHTTP)
	order          PushOrder
	readToken      string
	apps           AppReader
	sessions       *sessions
	pages          map[string]*template.Template
	admission      *ImageAdmission
	stageStore     StageStore
	stageEvents    StageEventSink
	stageInterval  time.Duration
	// stageMu keeps a round of the stages apart from a push's record and
	// its deploy's id (see stageQueued).
	stageMu sync.Mutex

	ready  atomic.Bool
	leader atomic.Bool
}

// NewServer builds a server. It is not ready and not the leader until told
// (SetReady, SetLeader); without leader election the caller sets both.
func NewServer(o ServerOptions) (*Server, error) {
	if o.Config == nil {
		return nil, errors.New("no serve config")
	}
	tlsConf, err := serverTLS(o.Config)
	if err != nil {
		return nil, err
	}
	if o.WebhookSecrets == nil {
		secrets, err := LoadWebhookSecrets(o.Config.WebhookSecretsDir, o.Config.Projects())
		if err != nil {
			return nil, err
		}
		o.WebhookSecrets = secrets
	}
	for _, p := range o.Config.Projects() {
		if o.WebhookSecrets[p] == "" {
			return nil, fmt.Errorf("no webhook secret for Harbor project %s; set one (the project's webhook policy's auth header) so anyone on the network cannot trigger deploys", p)
		}
	}
	if o.ReplayWindow == 0 {
		o.ReplayWindow = DefaultReplayWindow
	}
	if o.RecentDeploys == 0 {
		o.RecentDeploys = 200
	}
	if o.ReadToken == "" && o.Config.ReadTokenFile != "" {
		b, err := os.ReadFile(o.Config.ReadTokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading serve.yaml readTokenFile: %w", err)
		}
		o.ReadToken = strings.TrimRight(string(b), "\r\n")
		if len(o.ReadToken) < MinWebhookSecret {
			return nil, fmt.Errorf("readTokenFile %s holds %d characters; use at least %d random ones", o.Config.ReadTokenFile, len(o.ReadToken), MinWebhookSecret)
		}
	}
	if o.PushOrder == nil {
		o.PushOrder = &MemoryPushOrder{}
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		cfg: o.Config, webhookSecrets: o.WebhookSecrets, dir: o.Directory, log: o.Log, clock: o.Clock,
		metrics: NewMetrics(o.Registry), registry: o.Registry, tls: tlsConf, order: o.PushOrder, readToken: o.ReadToken,
		replay:     NewReplayCache(o.ReplayWindow, DefaultReplayMax),
		throttle:   NewLoginThrottle(),
		recorder:   NewDeployRecorder(o.RecentDeploys),
		apps:       o.Apps,
		admission:  o.Admission,
		stageStore: o.Stages, stageInterval: o.StageInterval,
	}
	if s.stageInterval <= 0 {
		s.stageInterval = DefaultStageInterval
	}
	if se, ok := o.Events.(StageEventSink); ok {
		s.stageEvents = se
	}
	key, err := sessionKey(o.Config, o.Directory != nil && o.Log != nil, o.Log)
	if err != nil {
		return nil, err
	}
	s.sessions = &sessions{key: key, secure: tlsConf != nil, now: func() time.Time { return s.clock.Now() }}
	if s.pages, err = s.parsePages(); err != nil {
		return nil, err
	}
	s.queue = &DeployQueue{Deployer: o.Deployer, Recorder: s.recorder, Events: o.Events, Metrics: s.metrics, Log: o.Log, Clock: o.Clock,
		Notify:     notify.New(o.Config.Notifications, notify.Options{Log: o.Log, Metrics: notify.NewMetrics(o.Registry)}),
		OnFinished: s.stageFinished}
	return s, nil
}

// TLS is the server's TLS configuration; nil means plain HTTP.
func (s *Server) TLS() *tls.Config { return s.tls }

// SetReady says whether the server takes traffic (readyz).
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

// SetLeader says whether this replica holds the leader lease and so acts
// on events and deploy requests.
func (s *Server) SetLeader(v bool) { s.leader.Store(v) }

func (s *Server) isLeader() bool { return s.leader.Load() }

// Queue is the server's deploy queue (Drain it on shutdown).
func (s *Server) Queue() *DeployQueue { return s.queue }

// Throttle is the server's login throttle.
func (s *Server) Throttle() *LoginThrottle { return s.throttle }

// Handler routes the server's endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/webhook/harbor", s.handleWebhook)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusOK
		if !s.ready.Load() {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, map[string]any{"ready": s.ready.Load(), "leader": s.isLeader()})
	})
	mux.HandleFunc("GET /api/v1/policies", func(w http.ResponseWriter, r *http.Request) {
		if s.reader(w, r) {
			writeJSON(w, http.StatusOK, map[string]any{"policies": s.cfg.Policies})
		}
	})
	mux.HandleFunc("GET /api/v1/deploys", func(w http.ResponseWriter, r *http.Request) {
		if s.reader(w, r) {
			writeJSON(w, http.StatusOK, map[string]any{"deploys": s.recorder.Recent()})
		}
	})
	mux.HandleFunc("POST /api/v1/promote", s.handleManual(DeployPromote))
	mux.HandleFunc("POST /api/v1/rollback", s.handleManual(DeployRollback))
	mux.HandleFunc("POST /api/v1/abort", s.handleManual(DeployAbort))
	mux.HandleFunc("POST /api/v1/approve", s.handleApprove)
	mux.HandleFunc("GET /api/v1/stages", func(w http.ResponseWriter, r *http.Request) {
		if s.reader(w, r) {
			s.handleStages(w, r)
		}
	})
	metrics := promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if s.reader(w, r) {
			metrics.ServeHTTP(w, r)
		}
	})
	mux.Handle("/ui/", s.dashboard())
	if s.admission != nil {
		mux.Handle("POST "+AdmissionPath, s.admission)
	}
	return mux
}

// ManualRequest is the body of POST /api/v1/promote, /api/v1/rollback and
// /api/v1/abort.
type ManualRequest struct {
	Namespace string `json:"namespace"`
	App       string `json:"app"`
	// Image is required for promote: registry/project/name@sha256:… of the
	// app's policy repository.
	Image string `json:"image,omitempty"`
}

var imageByDigestRE = regexp.MustCompile(`^([^/@\s]+)/([a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)+)@(sha256:[0-9a-f]{64})$`)

func (s *Server) handleManual(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.dir == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "manual deploys are off: serve has no ldap configured"})
			return
		}
		// Only JSON: a browser sends text/plain and form bodies across
		// sites without asking (no CORS preflight), with Basic credentials
		// it has cached for serve; application/json it does not.
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": fmt.Sprintf("Content-Type %q: send the body as application/json", r.Header.Get("Content-Type"))})
			return
		}
		id, ok := s.login(w, r)
		if !ok {
			return
		}
		var req ManualRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("body is not {\"namespace\",\"app\",\"image\"}: %v", err)})
			return
		}
		if _, err := dec.Token(); err != io.EOF {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body holds more than one JSON object; send one"})
			return
		}
		rec, merr := s.manual(kind, id.Login, req, func(ns string) bool {
			group, listed := s.cfg.Access[ns]
			return listed && id.InGroup(group)
		})
		if merr != nil {
			merr.write(w)
			return
		}
		writeJSON(w, http.StatusAccepted, rec)
	}
}

// manualError is why a manual deploy was not queued, as an HTTP answer.
type manualError struct {
	code       int
	msg        string
	retryAfter string
}

func (e *manualError) write(w http.ResponseWriter) {
	if e.retryAfter != "" {
		w.Header().Set("Retry-After", e.retryAfter)
	}
	writeJSON(w, e.code, map[string]string{"error": e.msg})
}

// manual queues a promote, rollback or abort that a person asked for, through
// the API or the dashboard: login is who asked, may says whether they may
// deploy in a namespace (their directory group, serve.yaml access).
func (s *Server) manual(kind, login string, req ManualRequest, may func(ns string) bool) (DeployRecord, *manualError) {
	if !may(req.Namespace) {
		s.metrics.LoginFailures.WithLabelValues("forbidden").Inc()
		s.log.Warn("manual deploy forbidden", "login", login, "namespace", req.Namespace, "app", req.App, "kind", kind)
		return DeployRecord{}, &manualError{code: http.StatusForbidden, msg: fmt.Sprintf("%s may not deploy in namespace %q: ask to be added to the namespace's deploy group", login, req.Namespace)}
	}
	var policy *DeployPolicy
	for i := range s.cfg.Policies {
		if p := &s.cfg.Policies[i]; p.Namespace == req.Namespace && p.App == req.App {
			policy = p
			break
		}
	}
	if policy == nil {
		return DeployRecord{}, &manualError{code: http.StatusNotFound, msg: fmt.Sprintf("no policy deploys app %q in namespace %q; see /api/v1/policies", req.App, req.Namespace)}
	}
	dr := DeployRequest{Kind: kind, Policy: policy.Name, App: policy.App, Namespace: policy.Namespace,
		Strategy: policy.Strategy, Spec: policy.Spec, EnvSecret: policy.EnvSecret, Trigger: "api", By: login}
	if kind == DeployPromote {
		m := imageByDigestRE.FindStringSubmatch(req.Image)
		if m == nil || m[2] != policy.Repository {
			return DeployRecord{}, &manualError{code: http.StatusBadRequest, msg: fmt.Sprintf("image %q is not %s/%s@sha256:<digest>; promote by digest from the policy's repository", req.Image, s.cfg.Registry, policy.Repository)}
		}
		if m[1] != s.cfg.Registry {
			return DeployRecord{}, &manualError{code: http.StatusBadRequest, msg: fmt.Sprintf("image %q is from registry %s, but serve deploys from %s only (serve.yaml registry); promote %s/%s@%s", req.Image, m[1], s.cfg.Registry, s.cfg.Registry, policy.Repository, m[3])}
		}
		dr.Image = req.Image
	} else if req.Image != "" && kind == DeployAbort {
		return DeployRecord{}, &manualError{code: http.StatusBadRequest, msg: "abort takes no image: it stops the promote in progress, whichever version it deploys"}
	} else if req.Image != "" {
		return DeployRecord{}, &manualError{code: http.StatusBadRequest, msg: "rollback takes no image: it returns to the version before the current one"}
	}
	if !s.isLeader() {
		return DeployRecord{}, &manualError{code: http.StatusServiceUnavailable, msg: "this replica is not the leader; retry", retryAfter: "5"}
	}
	rec, err := s.queue.Enqueue(dr)
	if err != nil {
		return DeployRecord{}, &manualError{code: http.StatusServiceUnavailable, msg: err.Error(), retryAfter: "30"}
	}
	return rec, nil
}

// reader lets API reads and /metrics through for the read token (bearer,
// compared in constant time) or a directory login (any person the
// directory knows); it answers the refusal itself. They show who deployed
// what, the policies' repositories and spec paths, and error texts.
func (s *Server) reader(w http.ResponseWriter, r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	if s.readToken != "" && strings.HasPrefix(auth, "Bearer ") {
		if secretMatches(auth, "Bearer "+s.readToken) {
			return true
		}
		s.metrics.LoginFailures.WithLabelValues("read_token").Inc()
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "wrong read token"})
		return false
	}
	if s.dir == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "reads need the read token (Authorization: Bearer, serve.yaml readTokenFile) or a directory login (serve.yaml ldap)"})
		return false
	}
	_, ok := s.login(w, r)
	return ok
}

// login checks HTTP basic credentials against the directory, slowed down
// per login and per client address. Every refusal of credentials answers
// the same words, whatever was wrong.
func (s *Server) login(w http.ResponseWriter, r *http.Request) (*Identity, bool) {
	user, pass, ok := r.BasicAuth()
	addr := clientAddr(r)
	if !ok {
		s.metrics.LoginFailures.WithLabelValues("no_credentials").Inc()
		w.Header().Set("WWW-Authenticate", `Basic realm="tsys-ci", charset="UTF-8"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "log in with your directory account (HTTP basic)"})
		return nil, false
	}
	id, merr := s.checkLogin(user, pass, addr)
	if merr != nil {
		if merr.code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="tsys-ci", charset="UTF-8"`)
		}
		merr.write(w)
		return nil, false
	}
	return id, true
}

// checkLogin asks the directory, slowed down per login and per client
// address; the API's basic login and the dashboard's form share it.
func (s *Server) checkLogin(user, pass, addr string) (*Identity, *manualError) {
	userKey, addrKey := "user:"+strings.ToLower(user), "addr:"+addr
	now := s.clock.Now()
	if wait := s.throttle.Wait(now, userKey, addrKey); wait > 0 {
		s.metrics.LoginFailures.WithLabelValues("throttled").Inc()
		s.log.Warn("login throttled", "login", user, "remote", addr, "wait", wait.String())
		secs := int((wait + time.Second - 1) / time.Second)
		return nil, &manualError{code: http.StatusTooManyRequests, msg: fmt.Sprintf("too many failed logins; retry in %d s", secs), retryAfter: strconv.Itoa(secs)}
	}
	id, err := s.dir.Authenticate(user, pass)
	switch {
	case errors.Is(err, ErrLoginFailed):
		s.throttle.Fail(now, userKey, addrKey)
		s.metrics.LoginFailures.WithLabelValues("credentials").Inc()
		s.log.Warn("login failed", "login", user, "remote", addr)
		return nil, &manualError{code: http.StatusUnauthorized, msg: "login failed"}
	case err != nil:
		s.metrics.LoginFailures.WithLabelValues("directory_error").Inc()
		s.log.Error("login impossible", "login", user, "remote", addr, "err", err)
		return nil, &manualError{code: http.StatusServiceUnavailable, msg: "the directory could not be asked; try again later"}
	}
	s.throttle.Succeed(userKey)
	s.log.Info("login", "login", id.Login, "dn", id.DN, "remote", addr)
	return id, nil
}

// clientAddr is the peer's IP. Forwarded headers are not trusted: anyone
// could set them to dodge the per-address throttle.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to tell it
}
