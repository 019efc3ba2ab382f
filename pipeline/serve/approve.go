package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ApproveRequest is the body of POST /api/v1/approve: a person lets a
// digest into a stage whose approval gate holds it.
type ApproveRequest struct {
	App string `json:"app"`
	// Namespace is the app's first stage's (the policy's) namespace;
	// needed only when two staged policies deploy apps of the same name.
	Namespace string `json:"namespace,omitempty"`
	Stage     string `json:"stage"`
	Digest    string `json:"digest"`
}

func (s *Server) handleApprove(w http.ResponseWriter, r *http.Request) {
	if s.dir == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "approvals are off: serve has no ldap configured, and approvers log in with their directory account"})
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": fmt.Sprintf("Content-Type %q: send the body as application/json", r.Header.Get("Content-Type"))})
		return
	}
	id, ok := s.login(w, r)
	if !ok {
		return
	}
	var req ApproveRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("body is not {\"app\",\"stage\",\"digest\"[,\"namespace\"]}: %v", err)})
		return
	}
	rec, merr := s.approve(r.Context(), id, req)
	if merr != nil {
		merr.write(w)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// approve records id's approval of req.Digest for req.Stage, or says why
// not: every refusal names the gate and what would satisfy it.
func (s *Server) approve(ctx context.Context, id *Identity, req ApproveRequest) (*StageRecord, *manualError) {
	bad := func(code int, format string, args ...any) (*StageRecord, *manualError) {
		return nil, &manualError{code: code, msg: fmt.Sprintf(format, args...)}
	}
	if !s.stagesOn() {
		return bad(http.StatusNotFound, "stages are off: serve runs without a cluster, where their record is kept")
	}
	p, n := s.stagedPolicy(req.Namespace, req.App)
	switch {
	case p == nil:
		return bad(http.StatusNotFound, "no policy with stages deploys app %q%s; see /api/v1/policies", req.App, inNamespace(req.Namespace))
	case n > 1:
		return bad(http.StatusBadRequest, "apps named %q are staged from more than one namespace; say which with its first stage's namespace (--namespace)", req.App)
	}
	idx := -1
	var names []string
	for i, st := range p.Stages {
		names = append(names, st.Name)
		if st.Name == req.Stage {
			idx = i
		}
	}
	if idx < 0 {
		return bad(http.StatusNotFound, "app %s has no stage %q; its stages are %s", p.App, req.Stage, strings.Join(names, ", "))
	}
	conf := p.Stages[idx]
	if conf.Approval == nil {
		return bad(http.StatusBadRequest, "stage %s of %s has no approval gate (its gates: %s); nothing to approve", conf.Name, p.App, conf.gatesText())
	}
	if !digestRE.MatchString(req.Digest) {
		return bad(http.StatusBadRequest, "digest %q is not sha256:<64 hex digits>; 'tsys-ci status %s' shows the digest waiting for %s", req.Digest, p.App, conf.Name)
	}
	if !s.isLeader() {
		return nil, &manualError{code: http.StatusServiceUnavailable, msg: "this replica is not the leader; retry", retryAfter: "5"}
	}
	gate := fmt.Sprintf("the approval gate of stage %s", conf.Name)
	var refusal, event string
	now := s.clock.Now()
	rec, err := s.stageStore.Update(ctx, p.Namespace, p.App, func(r *StageRecord) error {
		refusal, event = "", ""
		r.align(*p)
		st, prev := &r.Stages[idx], &r.Stages[idx-1]
		switch {
		case prev.Digest != req.Digest:
			return fmt.Errorf("%w: stage %s holds %s, not %s: %s approves the digest the stage before it (%s) runs; 'tsys-ci status %s' shows it",
				errNotCandidate, prev.Name, orNothing(prev.Digest), req.Digest, gate, prev.Name, p.App)
		case !inGroup(id, conf.Approval.Group):
			refusal = fmt.Sprintf("%s: %s is not in directory group %s; a member of %s must approve %s", gate, id.Login, conf.Approval.Group, conf.Approval.Group, req.Digest)
		case conf.Approval.FourEyes && strings.EqualFold(id.Login, prev.PushedBy):
			refusal = fmt.Sprintf("%s is four-eyes: %s pushed %s (Harbor operator) and may not approve it; another member of %s must", gate, id.Login, req.Digest, conf.Approval.Group)
		}
		if refusal != "" {
			r.log(StageLogEntry{At: now, Stage: st.Name, Digest: req.Digest, Kind: "refused", Result: "approval refused", By: id.Login, Message: refusal})
			return nil
		}
		if st.approved(req.Digest) == nil {
			st.Approvals = append(st.Approvals, Approval{Digest: req.Digest, By: id.Login, Group: conf.Approval.Group, At: now})
			if len(st.Approvals) > maxApprovals {
				st.Approvals = st.Approvals[len(st.Approvals)-maxApprovals:]
			}
			event = fmt.Sprintf("stage %s: %s approved %s (group %s)", st.Name, id.Login, req.Digest, conf.Approval.Group)
			r.log(StageLogEntry{At: now, Stage: st.Name, Digest: req.Digest, Kind: "approval", Result: "approved", By: id.Login, Message: event})
		}
		return nil
	})
	switch {
	case errors.Is(err, errNotCandidate):
		return bad(http.StatusConflict, "%s", strings.TrimPrefix(err.Error(), errNotCandidate.Error()+": "))
	case err != nil:
		s.log.Error("approval not recorded", "app", p.App, "stage", conf.Name, "login", id.Login, "err", err)
		return nil, &manualError{code: http.StatusServiceUnavailable, msg: "the stage record could not be written; nothing was approved, try again: " + err.Error(), retryAfter: "10"}
	}
	if refusal != "" {
		s.log.Warn("approval refused", "app", p.App, "stage", conf.Name, "login", id.Login, "digest", req.Digest, "reason", refusal)
		s.stageEvent(ctx, conf.Namespace, p.App, corev1.EventTypeWarning, "StageApprovalRefused", refusal)
		return bad(http.StatusForbidden, "%s", refusal)
	}
	if event != "" {
		s.log.Info("approved", "app", p.App, "stage", conf.Name, "login", id.Login, "digest", req.Digest)
		s.stageEvent(ctx, conf.Namespace, p.App, corev1.EventTypeNormal, "StageApproved", event)
	}
	return rec, nil
}

var errNotCandidate = errors.New("not the candidate")

func inNamespace(ns string) string {
	if ns == "" {
		return ""
	}
	return " in namespace " + ns
}

// handleStages answers GET /api/v1/stages?app=APP[&namespace=NS]: the
// app's stage record.
func (s *Server) handleStages(w http.ResponseWriter, r *http.Request) {
	app, ns := r.URL.Query().Get("app"), r.URL.Query().Get("namespace")
	if !s.stagesOn() {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "stages are off: serve runs without a cluster, where their record is kept"})
		return
	}
	p, n := s.stagedPolicy(ns, app)
	switch {
	case p == nil:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no policy with stages deploys app %q%s; see /api/v1/policies", app, inNamespace(ns))})
		return
	case n > 1:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("apps named %q are staged from more than one namespace; add &namespace= with its first stage's namespace", app)})
		return
	}
	rec, err := s.stageStore.Load(r.Context(), p.Namespace, p.App)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	if rec == nil {
		rec = &StageRecord{}
	}
	rec.align(*p)
	writeJSON(w, http.StatusOK, rec)
}

// ApproveClient asks a serve over its API, as `tsys-ci approve` does:
// the person's directory login (HTTP basic) at serve's address.
type ApproveClient struct {
	// URL is serve's address, https://serve.example (no path).
	URL      string
	Login    string
	Password string
	HTTP     *http.Client
}

// Approve posts req to /api/v1/approve and returns the stage record as
// serve wrote it; a refusal is an error with serve's words (which gate,
// what would satisfy it) and the HTTP status.
func (c *ApproveClient) Approve(ctx context.Context, req ApproveRequest) (*StageRecord, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding the approval: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.URL, "/")+"/api/v1/approve", strings.NewReader(string(body)))
	if err != nil {
		return nil, fmt.Errorf("serve address %q: %w", c.URL, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.SetBasicAuth(c.Login, c.Password)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("asking serve at %s to approve: %w", c.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading serve's answer from %s: %w", c.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return nil, &ApproveError{Status: resp.StatusCode, Message: e.Error}
	}
	var rec StageRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("serve at %s answered 200 with something other than a stage record: %w", c.URL, err)
	}
	return &rec, nil
}

// ApproveError is serve's refusal of an approval.
type ApproveError struct {
	Status  int
	Message string
}

func (e *ApproveError) Error() string {
	return fmt.Sprintf("serve refused the approval (%d %s): %s", e.Status, http.StatusText(e.Status), e.Message)
}

// BadInput: a refusal for who asked or what was asked (4xx) is the
// user's to fix; the CLI exits 2 on it.
func (e *ApproveError) BadInput() bool { return e.Status >= 400 && e.Status < 500 }
