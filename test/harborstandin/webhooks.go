package harborstandin

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"
)

// eventList is Harbor v2.12.0's webhook event types, in the order its
// /webhook/events lists them (the chart events of v2.6.2 are gone).
var eventList = []string{"PUSH_ARTIFACT", "PULL_ARTIFACT", "DELETE_ARTIFACT", "QUOTA_EXCEED", "QUOTA_WARNING",
	"SCANNING_FAILED", "SCANNING_STOPPED", "SCANNING_COMPLETED", "REPLICATION", "TAG_RETENTION"}

var eventTypes = func() map[string]bool {
	m := map[string]bool{}
	for _, e := range eventList {
		m[e] = true
	}
	return m
}()

// target is a webhook target as v2.12.0 stores it: payload_format (new in
// v2.8, unknown to go-client v0.26.2) defaults to "Default", and false
// skip_cert_verify is left out.
type target struct {
	Type           string `json:"type"`
	Address        string `json:"address"`
	AuthHeader     string `json:"auth_header,omitempty"`
	SkipCertVerify bool   `json:"skip_cert_verify,omitempty"`
	PayloadFormat  string `json:"payload_format,omitempty"`
}

type webhookPolicy struct {
	ID          int64     `json:"id"`
	ProjectID   int64     `json:"project_id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Enabled     bool      `json:"enabled"`
	EventTypes  []string  `json:"event_types"`
	Targets     []*target `json:"targets"`
	Creator     string    `json:"-"`
	Created     time.Time `json:"-"`
	Updated     time.Time `json:"-"`
}

func (p *webhookPolicy) json() map[string]any {
	return map[string]any{
		"id": p.ID, "project_id": p.ProjectID, "name": p.Name, "description": p.Description,
		"enabled": p.Enabled, "event_types": p.EventTypes, "targets": p.Targets,
		"creation_time": p.Created.UTC().Format(time.RFC3339), "update_time": p.Updated.UTC().Format(time.RFC3339),
	}
}

// validPolicy applies Harbor's checks (handler/notification_policy.go).
func validPolicy(w http.ResponseWriter, p *webhookPolicy) bool {
	if p.Name == "" {
		badRequest(w, "empty name of notification policy")
		return false
	}
	if len(p.EventTypes) == 0 {
		badRequest(w, "empty event type")
		return false
	}
	for _, e := range p.EventTypes {
		if !eventTypes[e] {
			badRequest(w, "unsupported event type "+e)
			return false
		}
	}
	if len(p.Targets) == 0 {
		badRequest(w, "empty notification target with policy "+p.Name)
		return false
	}
	for _, t := range p.Targets {
		if t.Type != "http" && t.Type != "slack" {
			badRequest(w, "unsupported target type "+t.Type+" with policy "+p.Name)
			return false
		}
		u, err := url.Parse(t.Address)
		if err != nil || u.Host == "" {
			badRequest(w, "invalid address "+t.Address+" with policy "+p.Name)
			return false
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			badRequest(w, "invalid scheme: "+u.Scheme)
			return false
		}
		switch t.PayloadFormat {
		case "":
			t.PayloadFormat = "Default"
		case "Default", "CloudEvents":
		default:
			badRequest(w, "unsupported payload format type: "+t.PayloadFormat)
			return false
		}
	}
	return true
}

// webhookEvents lists what policies may use (v2.12.0's answer).
func (s *Server) webhookEvents(w http.ResponseWriter, r *http.Request) {
	if p, _ := s.projectAdmin(w, r); p == nil {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"event_type": eventList, "notify_type": []string{"http", "slack"},
		"payload_formats": []any{map[string]any{"notify_type": "http", "formats": []string{"Default", "CloudEvents"}}},
	})
}

// projectAdmin resolves the path's project for a request that changes it.
func (s *Server) projectAdmin(w http.ResponseWriter, r *http.Request) (*project, user) {
	u := s.authenticate(r)
	p := s.projectOr(w, r, u, "notification-policy", "create")
	return p, u
}

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request) {
	p, _ := s.projectAdmin(w, r)
	if p == nil {
		return
	}
	s.mu.Lock()
	var list []*webhookPolicy
	for _, pol := range s.policies {
		if pol.ProjectID == p.ID {
			list = append(list, pol)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	out := []map[string]any{}
	for _, pol := range list {
		out = append(out, pol.json())
	}
	s.mu.Unlock()
	from, to, ok := paginate(w, r, len(out))
	if ok {
		writeJSON(w, http.StatusOK, out[from:to])
	}
}

func (s *Server) createPolicy(w http.ResponseWriter, r *http.Request) {
	p, u := s.projectAdmin(w, r)
	if p == nil {
		return
	}
	var pol webhookPolicy
	if !decode(w, r, "policy", &pol) || !validPolicy(w, &pol) {
		return
	}
	s.mu.Lock()
	for _, other := range s.policies {
		if other.ProjectID == p.ID && other.Name == pol.Name {
			s.mu.Unlock()
			conflict(w, "notification policy named "+pol.Name+" already exists")
			return
		}
	}
	pol.ID, pol.ProjectID, pol.Creator = s.id(), p.ID, u.name
	pol.Created, pol.Updated = s.opts.Now(), s.opts.Now()
	s.policies[pol.ID] = &pol
	s.mu.Unlock()
	created(w, "/api/v2.0/projects/"+r.PathValue("project")+"/webhook/policies/"+strconv.FormatInt(pol.ID, 10))
}

func (s *Server) policyByPath(w http.ResponseWriter, r *http.Request, p *project) *webhookPolicy {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		badRequest(w, "invalid webhook policy id "+r.PathValue("id"))
		return nil
	}
	pol := s.policies[id]
	if pol == nil || pol.ProjectID != p.ID {
		notFound(w, "notificationPolicy "+r.PathValue("id")+" not found")
		return nil
	}
	return pol
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) {
	p, _ := s.projectAdmin(w, r)
	if p == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if pol := s.policyByPath(w, r, p); pol != nil {
		writeJSON(w, http.StatusOK, pol.json())
	}
}

// updatePolicy takes the whole policy (Harbor's PUT).
func (s *Server) updatePolicy(w http.ResponseWriter, r *http.Request) {
	p, _ := s.projectAdmin(w, r)
	if p == nil {
		return
	}
	var req webhookPolicy
	if !decode(w, r, "policy", &req) || !validPolicy(w, &req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pol := s.policyByPath(w, r, p)
	if pol == nil {
		return
	}
	for _, other := range s.policies {
		if other.ProjectID == p.ID && other.Name == req.Name && other.ID != pol.ID {
			conflict(w, "notification policy named "+req.Name+" already exists")
			return
		}
	}
	pol.Name, pol.Description, pol.Enabled, pol.EventTypes, pol.Targets = req.Name, req.Description, req.Enabled, req.EventTypes, req.Targets
	pol.Updated = s.opts.Now()
	w.WriteHeader(http.StatusOK)
}

func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request) {
	p, _ := s.projectAdmin(w, r)
	if p == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if pol := s.policyByPath(w, r, p); pol != nil {
		delete(s.policies, pol.ID)
		w.WriteHeader(http.StatusOK)
	}
}
