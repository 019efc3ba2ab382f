package serve

import (
	"bytes"
	"context"
	"crypto/hmac"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tsys-group/tsys-ci/rollout"
)

// The dashboard is server-rendered HTML under /ui/ for people who log in
// with their directory account: the apps serve deploys, each app's state
// and history, serve's recent deploys, and rollback and promote buttons
// where the person's group may deploy. Pages work without JavaScript;
// live.js only refreshes <main> every 2 s.

//go:embed ui
var uiFS embed.FS

// MinSessionKey is the shortest serve.yaml dashboard.sessionKeyFile key.
const MinSessionKey = 32

// dashboardCSP allows the dashboard's own style sheet and script only: no
// inline script or style, no framing, forms post to serve alone.
const dashboardCSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'"

// loginCookie carries the login form's CSRF token (the form's hidden field
// must match it), so no other site can log a browser into its own account.
const loginCookie = "tsys_ci_login"

// partialHeader asks for the page's <main> only (live.js).
const partialHeader = "X-Tsys-Partial"

// dashboardPages are the templates under ui/, one set each with the
// layout and the shared parts.
var dashboardPages = []string{"login", "apps", "app", "deploys", "error"}

// sessionKey is the key that signs dashboard sessions: serve.yaml's
// dashboard.sessionKeyFile, or a random one for this process only.
func sessionKey(cfg *Config, warn bool, log *slog.Logger) ([]byte, error) {
	if cfg.Dashboard == nil || cfg.Dashboard.SessionKeyFile == "" {
		if warn {
			log.Warn("dashboard sessions are signed with a random key of this replica: they end when serve restarts and a browser reaching another replica must log in again; set serve.yaml dashboard.sessionKeyFile to a key shared by the replicas")
		}
		return newSessionKey(), nil
	}
	f := cfg.Dashboard.SessionKeyFile
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("reading serve.yaml dashboard.sessionKeyFile: %w", err)
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) < MinSessionKey {
		return nil, fmt.Errorf("dashboard.sessionKeyFile %s holds %d bytes; put at least %d random ones in it (e.g. head -c 48 /dev/urandom | base64)", f, len(b), MinSessionKey)
	}
	return b, nil
}

func (s *Server) parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{"short": shortImage, "ago": s.ago, "promotable": s.promotable}
	pages := map[string]*template.Template{}
	for _, name := range dashboardPages {
		t, err := template.New(name).Funcs(funcs).ParseFS(uiFS, "ui/layout.html", "ui/parts.html", "ui/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// shortImage is an image reference without its registry and project, and
// its digest cut to 12 hex digits: enough to tell versions apart.
func shortImage(ref string) string {
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	if name, digest, ok := strings.Cut(ref, "@sha256:"); ok && len(digest) > 12 {
		return name + "@" + digest[:12]
	}
	return ref
}

// ago says how long before now t was, roughly.
func (s *Server) ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := s.clock.Now().Sub(t)
	switch {
	case d < 10*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}

// promotable says whether a history entry's image could be promoted again:
// by digest, from serve's registry and a policy's repository (what manual
// accepts).
func (s *Server) promotable(image string) bool {
	m := imageByDigestRE.FindStringSubmatch(image)
	if m == nil || m[1] != s.cfg.Registry {
		return false
	}
	return slices.ContainsFunc(s.cfg.Policies, func(p DeployPolicy) bool { return p.Repository == m[2] })
}

// page is what every dashboard template gets.
type page struct {
	Title     string
	Session   *session
	Live      string // non-empty: live.js refreshes <main>
	Error     string
	Notice    string
	Back      string // the error page's link back
	LoginCSRF string
	Apps      []appView
	App       *appView
	MayDeploy bool
	History   []rollout.HistoryEntry // newest first
	Deploys   []DeployRecord
	Policies  []DeployPolicy
}

// appView is one app as the apps list and its page show it.
type appView struct {
	Namespace, App string
	Serving        *rollout.Release
	Previous       *rollout.Release
	// Phase is the rollout phase in lower case with dashes (a CSS class
	// too), "new" when never promoted, "unknown" when unread.
	Phase      string
	State      *rollout.State
	Hosts      []string
	Addresses  []string
	LastDeploy *DeployRecord
}

var upperRE = regexp.MustCompile(`([a-z])([A-Z])`)

func phaseName(p rollout.Phase) string {
	return strings.ToLower(upperRE.ReplaceAllString(string(p), "$1-$2"))
}

// errNoAppReader is the state of every app when serve runs without a
// cluster.
var errNoAppReader = errors.New("serve runs without a cluster (--no-cluster): the apps' rollout state is unknown")

func (s *Server) appView(ctx context.Context, recent []DeployRecord, ns, app string) (appView, error) {
	v := appView{Namespace: ns, App: app, Phase: "unknown"}
	for i := range recent {
		if recent[i].Namespace == ns && recent[i].App == app {
			v.LastDeploy = &recent[i]
			break
		}
	}
	if s.apps == nil {
		return v, errNoAppReader
	}
	info, err := s.apps.AppInfo(ctx, ns, app)
	if err != nil {
		return v, err
	}
	v.Hosts, v.Addresses = info.Hosts, info.Addresses
	if info.State == nil {
		v.Phase = "new"
		return v, nil
	}
	v.State, v.Serving, v.Previous = info.State, info.State.Active, info.State.Previous
	v.Phase = phaseName(info.State.Phase)
	return v, nil
}

// apps are the namespace/app pairs serve.yaml's policies deploy, in the
// order of their first policy.
func (s *Server) appKeys() [][2]string {
	var out [][2]string
	for _, p := range s.cfg.Policies {
		k := [2]string{p.Namespace, p.App}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// namespacesOf are the namespaces whose deploy group (serve.yaml access)
// id is a member of.
func (s *Server) namespacesOf(id *Identity) []string {
	var out []string
	for _, ns := range slices.Sorted(maps.Keys(s.cfg.Access)) {
		if id.InGroup(s.cfg.Access[ns]) {
			out = append(out, ns)
		}
	}
	return out
}

// FreshLogin is how recent a login must be for a dashboard deploy when
// the directory has no service account to read the person's groups again.
const FreshLogin = SessionIdle

// recheckGroups brings the session's namespaces up to date before a
// deploy: a session lives up to SessionMax, and someone removed from a
// deploy group (or from the directory) must lose the button's rights at
// once, not at their next login. With a service account the directory is
// asked; without one, only a login of the last FreshLogin counts.
func (s *Server) recheckGroups(sess *session) *manualError {
	reader, ok := s.dir.(GroupReader)
	var err error
	var id *Identity
	if ok {
		id, err = reader.Lookup(sess.Login)
	}
	switch {
	case !ok || errors.Is(err, ErrNoServiceAccount):
		if s.clock.Now().Sub(sess.Issued) > FreshLogin {
			return &manualError{code: http.StatusUnauthorized, msg: fmt.Sprintf("nothing was done: serve's directory has no service account (serve.yaml ldap.bindDN), so your group is confirmed only by a login in the last %d minutes; log in again, then retry", int(FreshLogin/time.Minute))}
		}
		return nil
	case errors.Is(err, ErrLoginFailed):
		s.log.Warn("dashboard: a session's login is no longer in the directory", "login", sess.Login)
		return &manualError{code: http.StatusForbidden, msg: "nothing was done: your login " + sess.Login + " is no longer found in the directory"}
	case err != nil:
		s.log.Error("dashboard: the directory could not confirm a group", "login", sess.Login, "err", err)
		return &manualError{code: http.StatusServiceUnavailable, msg: "nothing was done: the directory could not be asked to confirm your group; try again later"}
	}
	sess.Namespaces = s.namespacesOf(id)
	return nil
}

// mayDeploy says whether the session's person may promote and roll back
// in namespace ns: their group (at login, or as recheckGroups last read
// it), still listed in serve.yaml.
func (s *Server) mayDeploy(sess *session, ns string) bool {
	_, listed := s.cfg.Access[ns]
	return listed && slices.Contains(sess.Namespaces, ns)
}

// dashboard routes /ui/. Every answer carries the security headers; with
// no directory there is no way to log in, so there is no dashboard.
func (s *Server) dashboard() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/{$}", s.uiPage(s.uiApps))
	mux.HandleFunc("GET /ui/login", s.uiLoginForm)
	mux.HandleFunc("POST /ui/login", s.uiLogin)
	mux.HandleFunc("POST /ui/logout", s.uiLogout)
	mux.HandleFunc("GET /ui/apps/{ns}/{app}", s.uiPage(s.uiApp))
	mux.HandleFunc("POST /ui/apps/{ns}/{app}/{action}", s.uiDeploy)
	mux.HandleFunc("GET /ui/deploys", s.uiPage(s.uiDeploys))
	mux.HandleFunc("GET /ui/static/{file}", s.uiStatic)
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		s.uiError(w, r, nil, http.StatusNotFound, "No such page", "There is no page at "+r.URL.Path+"; start from the apps list.", "/ui/")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", dashboardCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if s.dir == nil {
			h.Set("Cache-Control", "no-store")
			http.Error(w, "the dashboard is off: serve has no ldap configured (serve.yaml ldap), so nobody could log in", http.StatusNotFound)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// render answers a page, or only its <main> when live.js asks.
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, p *page) {
	which := "page"
	if r.Header.Get(partialHeader) == "main" {
		which = "main"
	}
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, which, p); err != nil {
		s.log.Error("rendering dashboard page", "page", name, "err", err)
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "the page could not be made; serve's log says why", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", partialHeader+", Cookie")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes()) // the client went away; nothing to tell it
}

func (s *Server) uiError(w http.ResponseWriter, r *http.Request, sess *session, code int, title, msg, back string) {
	s.render(w, r, code, "error", &page{Title: title, Session: sess, Error: msg, Back: back})
}

// uiPage lets a GET through with a valid session (renewing it) and
// sends anyone else to the login form.
func (s *Server) uiPage(f func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.sessions.get(r)
		if err != nil {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		s.sessions.set(w, sess)
		f(w, r, sess)
	}
}

// appInfoTimeout bounds the cluster reads of one page.
const appInfoTimeout = 5 * time.Second

func (s *Server) uiApps(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx, cancel := context.WithTimeout(r.Context(), appInfoTimeout)
	defer cancel()
	recent := s.recorder.Recent()
	p := &page{Title: "Apps", Session: sess, Live: "main"}
	var failed []string
	var firstErr error
	for _, k := range s.appKeys() {
		v, err := s.appView(ctx, recent, k[0], k[1])
		if err != nil {
			failed = append(failed, k[0]+"/"+k[1])
			if firstErr == nil {
				firstErr = err
			}
		}
		p.Apps = append(p.Apps, v)
	}
	switch {
	case errors.Is(firstErr, errNoAppReader):
		p.Error = firstErr.Error()
	case firstErr != nil:
		s.log.Warn("dashboard: reading app state failed", "apps", strings.Join(failed, ","), "err", firstErr)
		p.Error = fmt.Sprintf("The state of %s could not be read from the cluster (%v); the page retries by itself.", strings.Join(failed, ", "), firstErr)
	}
	s.render(w, r, http.StatusOK, "apps", p)
}

func (s *Server) uiApp(w http.ResponseWriter, r *http.Request, sess *session) {
	ns, app := r.PathValue("ns"), r.PathValue("app")
	if !slices.Contains(s.appKeys(), [2]string{ns, app}) {
		s.uiError(w, r, sess, http.StatusNotFound, "No such app", fmt.Sprintf("No policy deploys app %q in namespace %q (serve.yaml policies); pick one from the apps list.", app, ns), "/ui/")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), appInfoTimeout)
	defer cancel()
	recent := s.recorder.Recent()
	v, err := s.appView(ctx, recent, ns, app)
	p := &page{Title: ns + "/" + app, Session: sess, Live: "main", App: &v, MayDeploy: s.mayDeploy(sess, ns)}
	if err != nil {
		if !errors.Is(err, errNoAppReader) {
			s.log.Warn("dashboard: reading app state failed", "namespace", ns, "app", app, "err", err)
		}
		p.Error = fmt.Sprintf("The app's state could not be read: %v", err)
	}
	if v.State != nil {
		for i := len(v.State.History) - 1; i >= 0; i-- {
			p.History = append(p.History, v.State.History[i])
		}
	}
	for _, d := range recent {
		if d.Namespace == ns && d.App == app {
			p.Deploys = append(p.Deploys, d)
		}
	}
	if id := r.URL.Query().Get("deploy"); id != "" {
		if d := s.recorder.get(id); d.ID != "" && d.Namespace == ns && d.App == app {
			state := d.State
			if d.Result != "" {
				state += ", " + d.Result
			}
			p.Notice = fmt.Sprintf("Your %s was queued as deploy %s: %s.", d.Kind, d.ID, state)
			if d.Error != "" {
				p.Notice += " " + d.Error
			}
		}
	}
	s.render(w, r, http.StatusOK, "app", p)
}

func (s *Server) uiDeploys(w http.ResponseWriter, r *http.Request, sess *session) {
	s.render(w, r, http.StatusOK, "deploys", &page{Title: "Deploys", Session: sess, Live: "main",
		Deploys: s.recorder.Recent(), Policies: s.cfg.Policies})
}

// uiLoginPage shows the login form with a fresh login-CSRF token.
func (s *Server) uiLoginPage(w http.ResponseWriter, r *http.Request, code int, msg string) {
	token := randomToken()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: token, Path: "/ui/login",
		HttpOnly: true, Secure: s.sessions.secure, SameSite: http.SameSiteStrictMode, MaxAge: int(SessionIdle / time.Second)})
	s.render(w, r, code, "login", &page{Title: "Log in", Error: msg, LoginCSRF: token})
}

func (s *Server) uiLoginForm(w http.ResponseWriter, r *http.Request) {
	if _, err := s.sessions.get(r); err == nil {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	s.uiLoginPage(w, r, http.StatusOK, "")
}

// maxForm bounds a dashboard form's body.
const maxForm = 16 << 10

func (s *Server) uiLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		s.uiLoginPage(w, r, http.StatusBadRequest, "The login form could not be read; log in with this form.")
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || c.Value == "" || !hmac.Equal([]byte(c.Value), []byte(r.PostFormValue("csrf"))) {
		s.uiLoginPage(w, r, http.StatusForbidden, "This login was not sent from serve's own login form, or the form is older than 30 minutes; log in with this form (your browser must accept cookies from serve).")
		return
	}
	id, merr := s.checkLogin(r.PostFormValue("login"), r.PostFormValue("password"), clientAddr(r))
	if merr != nil {
		if merr.retryAfter != "" {
			w.Header().Set("Retry-After", merr.retryAfter)
		}
		msg := merr.msg
		if merr.code == http.StatusUnauthorized {
			msg = "Login failed: check your directory login and password."
		}
		s.uiLoginPage(w, r, merr.code, msg)
		return
	}
	s.sessions.set(w, &session{Login: id.Login, Namespaces: s.namespacesOf(id), CSRF: randomToken(), Issued: s.clock.Now()})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/ui/login",
		HttpOnly: true, Secure: s.sessions.secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (s *Server) uiLogout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	sess, err := s.sessions.get(r)
	if err == nil && !sess.csrfOK(r) {
		s.uiError(w, r, sess, http.StatusForbidden, "Not logged out", "The logout was not sent from a dashboard page of this session; use the Log out button.", "/ui/")
		return
	}
	s.sessions.clear(w)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// uiDeploy is a rollback, promote or abort button: a session, its CSRF token and
// the person's group for the namespace, then the API's checks (manual).
// A queued deploy redirects back to the app's page (post, redirect, get),
// which shows it.
func (s *Server) uiDeploy(w http.ResponseWriter, r *http.Request) {
	ns, app := r.PathValue("ns"), r.PathValue("app")
	kind, ok := map[string]string{"rollback": DeployRollback, "promote": DeployPromote, "abort": DeployAbort}[r.PathValue("action")]
	if !ok {
		s.uiError(w, r, nil, http.StatusNotFound, "No such action", "An app can be rolled back, promoted or its promote aborted only.", "/ui/")
		return
	}
	back := "/ui/apps/" + url.PathEscape(ns) + "/" + url.PathEscape(app)
	sess, err := s.sessions.get(r)
	if err != nil {
		s.uiLoginPage(w, r, http.StatusUnauthorized, "Your session has ended (30 minutes unused or 12 hours after login), so nothing was done; log in, then try again.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		s.uiError(w, r, sess, http.StatusBadRequest, "Nothing done", "The form could not be read; go back to the app's page and use its button.", back)
		return
	}
	if !sess.csrfOK(r) {
		s.log.Warn("dashboard: form without the session's CSRF token", "login", sess.Login, "namespace", ns, "app", app, "kind", kind, "remote", clientAddr(r))
		s.uiError(w, r, sess, http.StatusForbidden, "Nothing done", "This form did not carry your session's token: it was not sent from a dashboard page, or the page is older than your login. Reload the app's page and use its button.", back)
		return
	}
	if merr := s.recheckGroups(sess); merr != nil {
		if merr.code == http.StatusUnauthorized {
			s.sessions.clear(w)
			s.uiLoginPage(w, r, merr.code, merr.msg+".")
			return
		}
		if merr.code == http.StatusForbidden {
			s.sessions.clear(w)
		}
		s.uiError(w, r, sess, merr.code, "Nothing done", merr.msg+".", back)
		return
	}
	s.sessions.set(w, sess)
	req := ManualRequest{Namespace: ns, App: app}
	if kind == DeployPromote {
		req.Image = r.PostFormValue("image")
	}
	rec, merr := s.manual(kind, sess.Login, req, func(n string) bool { return s.mayDeploy(sess, n) })
	if merr != nil {
		if merr.retryAfter != "" {
			w.Header().Set("Retry-After", merr.retryAfter)
		}
		msg := merr.msg
		if merr.code == http.StatusForbidden {
			msg += "; the directory was asked just now (or at your login, without a service account): ask for your group, then log out and in again."
		}
		s.uiError(w, r, sess, merr.code, "Nothing done", msg, back)
		return
	}
	s.log.Info("dashboard deploy queued", "login", sess.Login, "namespace", ns, "app", app, "kind", kind, "id", rec.ID)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, back+"?deploy="+url.QueryEscape(rec.ID), http.StatusSeeOther)
}

var staticTypes = map[string]string{"style.css": "text/css; charset=utf-8", "live.js": "text/javascript; charset=utf-8"}

func (s *Server) uiStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	ct, ok := staticTypes[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	b, err := uiFS.ReadFile("ui/" + name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b) // the client went away; nothing to tell it
}
