package harborstandin

import (
	"encoding/json"
	"net/http"
	"strconv"
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

type retentionRule struct {
	ID             int64                           `json:"id,omitempty"`
	Priority       int64                           `json:"priority,omitempty"`
	Disabled       bool                            `json:"disabled"`
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
		badRequest(w, "only 15 rules are allowed at most")
		return nil
	}
	seen := map[string]bool{}
	for _, rule := range rt.Rules {
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
		if seen[string(key)] {
			conflict(w, "contains duplicate rules with template "+rule.Template)
			return nil
		}
		seen[string(key)] = true
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
	badRequest(w, "the project "+strconv.FormatInt(rt.Scope.Ref, 10)+" of the scope does not exist")
	return nil
}

func (s *Server) createRetention(w http.ResponseWriter, r *http.Request) {
	if !s.adminOnly(w, r) {
		return
	}
	var rt retention
	if !decode(w, r, &rt) {
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
		badRequest(w, "project "+p.Name+" already has retention policy "+strconv.FormatInt(p.RetentionID, 10))
		return
	}
	rt.ID = s.id()
	for i, rule := range rt.Rules {
		rule.ID = int64(i + 1)
	}
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
		notFound(w, "retention policy "+r.PathValue("id")+" not found")
	}
	return rt
}

func (s *Server) getRetention(w http.ResponseWriter, r *http.Request) {
	if !s.adminOnly(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt := s.retentionByPath(w, r); rt != nil {
		writeJSON(w, http.StatusOK, rt)
	}
}

func (s *Server) updateRetention(w http.ResponseWriter, r *http.Request) {
	if !s.adminOnly(w, r) {
		return
	}
	var req retention
	if !decode(w, r, &req) {
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
	for i, rule := range req.Rules {
		rule.ID = int64(i + 1)
	}
	rt.Algorithm, rt.Rules, rt.Trigger = req.Algorithm, req.Rules, req.Trigger
	w.WriteHeader(http.StatusOK)
}
