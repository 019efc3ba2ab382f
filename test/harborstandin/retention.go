package harborstandin

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

var retentionTemplates = map[string]bool{
	"latestPushedK": true, "latestPulledN": true, "nDaysSinceLastPush": true, "nDaysSinceLastPull": true, "always": true,
}

type retentionSelector struct {
	Kind       string `json:"kind"`
	Decoration string `json:"decoration"`
	Pattern    string `json:"pattern"`
	Extras     string `json:"extras,omitempty"`
}

// retentionRule is a rule as v2.12.0 returns it: no id, and false
// "disabled" left out.
type retentionRule struct {
	ID             int64                           `json:"id,omitempty"`
	Priority       int64                           `json:"priority,omitempty"`
	Disabled       bool                            `json:"disabled,omitempty"`
	Action         string                          `json:"action"`
	Template       string                          `json:"template"`
	Params         map[string]any                  `json:"params"`
	TagSelectors   []*retentionSelector            `json:"tag_selectors"`
	ScopeSelectors map[string][]*retentionSelector `json:"scope_selectors"`
}

type retention struct {
	ID        int64            `json:"id"`
	Algorithm string           `json:"algorithm"`
	Rules     []*retentionRule `json:"rules"`
	Trigger   map[string]any   `json:"trigger"`
	Scope     *struct {
		Level string `json:"level"`
		Ref   int64  `json:"ref"`
	} `json:"scope"`
}

// validRetention applies Harbor's checks (handler/retention.go); it returns
// the project the policy is for.
func (s *Server) validRetention(w http.ResponseWriter, rt *retention) *project {
	if len(rt.Rules) > 15 {
		badRequest(w, "bad request: only 15 rules are allowed at most")
		return nil
	}
	seen := map[string]int{}
	for i, rule := range rt.Rules {
		if !retentionTemplates[rule.Template] || rule.Action != "retain" {
			badRequest(w, "invalid retention rule: template "+rule.Template+", action "+rule.Action)
			return nil
		}
		key, _ := json.Marshal(struct {
			T  string
			P  map[string]any
			TS []*retentionSelector
			SS map[string][]*retentionSelector
		}{rule.Template, rule.Params, rule.TagSelectors, rule.ScopeSelectors})
		if j, dup := seen[string(key)]; dup {
			conflict(w, "resource conflict: rule "+strconv.Itoa(i)+" is conflict with rule "+strconv.Itoa(j))
			return nil
		}
		seen[string(key)] = i
	}
	if rt.Scope == nil || rt.Scope.Level != "project" {
		badRequest(w, "scope level must be project")
		return nil
	}
	for _, p := range s.projects {
		if p.ID == rt.Scope.Ref {
			return p
		}
	}
	badRequest(w, "bad request: invalid Project id "+strconv.FormatInt(rt.Scope.Ref, 10))
	return nil
}

func (s *Server) createRetention(w http.ResponseWriter, r *http.Request) {
	if !s.adminOnlyAs(w, r, false) {
		return
	}
	var rt retention
	if !decode(w, r, "policy", &rt) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.validRetention(w, &rt)
	if p == nil {
		return
	}
	if p.RetentionID != 0 {
		// Harbor answers 400, not 409, when the project has a policy.
		badRequest(w, "bad request: project "+strconv.FormatInt(p.ID, 10)+" already has retention policy "+strconv.FormatInt(p.RetentionID, 10))
		return
	}
	rt.ID = s.id()
	s.retentions[rt.ID] = &rt
	p.RetentionID = rt.ID
	created(w, "/api/v2.0/retentions/"+strconv.FormatInt(rt.ID, 10))
}

func (s *Server) retentionByPath(w http.ResponseWriter, r *http.Request) *retention {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		badRequest(w, "invalid retention id "+r.PathValue("id"))
		return nil
	}
	rt := s.retentions[id]
	if rt == nil {
		// Harbor v2.12.0 answers a missing policy with a 500 ("no such
		// Retention policy with id N" in its log only).
		internalError(w)
	}
	return rt
}

// getRetention returns the policy; a scheduled trigger gains
// next_scheduled_time, as in Harbor (here a day from now, not worked out
// from the cron).
func (s *Server) getRetention(w http.ResponseWriter, r *http.Request) {
	if !s.adminOnlyAs(w, r, false) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.retentionByPath(w, r)
	if rt == nil {
		return
	}
	out := *rt
	old, _ := rt.Trigger["settings"].(map[string]any)
	if cron, _ := old["cron"].(string); cron != "" {
		settings := map[string]any{}
		for k, v := range old {
			settings[k] = v
		}
		settings["next_scheduled_time"] = s.opts.Now().Add(24 * time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")
		out.Trigger = map[string]any{}
		for k, v := range rt.Trigger {
			out.Trigger[k] = v
		}
		out.Trigger["settings"] = settings
	}
	writeJSON(w, http.StatusOK, &out)
}

func (s *Server) updateRetention(w http.ResponseWriter, r *http.Request) {
	if !s.adminOnlyAs(w, r, false) {
		return
	}
	var req retention
	if !decode(w, r, "policy", &req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.retentionByPath(w, r)
	if rt == nil {
		return
	}
	p := s.validRetention(w, &req)
	if p == nil {
		return
	}
	if p.RetentionID != rt.ID {
		badRequest(w, "the scope of a retention policy cannot change")
		return
	}
	rt.Algorithm, rt.Rules, rt.Trigger = req.Algorithm, req.Rules, req.Trigger
	w.WriteHeader(http.StatusOK)
}
