package harborstandin

import (
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// nameRE is Harbor's rule for project and robot names.
var nameRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

type project struct {
	ID           int64
	Name         string
	Owner        string
	Created      time.Time
	Public       bool
	RetentionID  int64
	Repositories map[string]bool
}

func (p *project) json() map[string]any {
	md := map[string]any{"public": strconv.FormatBool(p.Public)}
	if p.RetentionID != 0 {
		md["retention_id"] = strconv.FormatInt(p.RetentionID, 10)
	}
	return map[string]any{
		"project_id": p.ID, "name": p.Name, "owner_name": p.Owner, "owner_id": 1,
		"creation_time": p.Created.UTC().Format(time.RFC3339), "update_time": p.Created.UTC().Format(time.RFC3339),
		"repo_count": len(p.Repositories), "chart_count": 0, "metadata": md,
		"current_user_role_ids": []int{},
	}
}

// canRead reports whether u may see project p (Harbor: public projects to
// everyone, private ones to members; here the admin and the project's robots).
func (u user) canRead(p *project) bool {
	return p.Public || u.admin || (u.robot != nil && u.robot.covers(p.Name, "repository", "pull"))
}

// findProject resolves {project_name_or_id} as Harbor does: a number is an
// id unless X-Is-Resource-Name is true. Caller holds s.mu.
func (s *Server) findProject(r *http.Request, v string) (*project, bool) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && r.Header.Get("X-Is-Resource-Name") != "true" {
		for _, p := range s.projects {
			if p.ID == n {
				return p, true
			}
		}
		return nil, true
	}
	p := s.projects[v]
	return p, false
}

// projectOr answers the errors of a project lookup; nil means it answered.
// Harbor v2.6.2 quirk: a project *name* that does not exist is 403, even
// for the admin; a numeric id that does not exist is 404 for the admin.
func (s *Server) projectOr(w http.ResponseWriter, r *http.Request, u user) *project {
	if u.anonymous() {
		s.mu.Lock()
		p, _ := s.findProject(r, r.PathValue("project"))
		s.mu.Unlock()
		if p == nil || !p.Public {
			unauthorized(w)
			return nil
		}
		return p
	}
	s.mu.Lock()
	p, byID := s.findProject(r, r.PathValue("project"))
	s.mu.Unlock()
	switch {
	case p == nil && byID && u.admin:
		notFound(w, "project "+r.PathValue("project")+" not found")
		return nil
	case p == nil, !u.canRead(p):
		forbidden(w)
		return nil
	}
	return p
}

func (s *Server) headProject(w http.ResponseWriter, r *http.Request) {
	if s.authenticate(r).anonymous() {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	_, ok := s.projects[r.URL.Query().Get("project_name")]
	s.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) {
	u := s.authenticate(r)
	q := r.URL.Query()
	exact := parseQ(q.Get("q"))["name"]
	fuzzy := q.Get("name")
	s.mu.Lock()
	var list []*project
	for _, p := range s.projects {
		if !u.canRead(p) || (exact != "" && p.Name != exact) || (fuzzy != "" && !strings.Contains(p.Name, fuzzy)) {
			continue
		}
		list = append(list, p)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	out := []map[string]any{}
	for _, p := range list {
		out = append(out, p.json())
	}
	s.mu.Unlock()
	from, to, ok := paginate(w, r, len(out))
	if ok {
		writeJSON(w, http.StatusOK, out[from:to])
	}
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request) {
	u := s.authenticate(r)
	if u.anonymous() {
		unauthorized(w)
		return
	}
	// Only the admin (or a system robot with project create) may create
	// projects; project robots never.
	if !u.admin && !(u.robot != nil && u.robot.Level == "system" && u.robot.covers("/", "project", "create")) {
		forbidden(w)
		return
	}
	var req struct {
		ProjectName string            `json:"project_name"`
		Public      *bool             `json:"public"`
		Metadata    map[string]string `json:"metadata"`
	}
	if !decode(w, r, &req) {
		return
	}
	if len(req.ProjectName) > 255 || !nameRE.MatchString(req.ProjectName) {
		badRequest(w, "project name is not in lower case or contains illegal characters")
		return
	}
	public := req.Metadata["public"] == "true" || (req.Public != nil && *req.Public)
	s.mu.Lock()
	if _, ok := s.projects[req.ProjectName]; ok {
		s.mu.Unlock()
		conflict(w, "The project named "+req.ProjectName+" already exists")
		return
	}
	p := &project{ID: s.id(), Name: req.ProjectName, Owner: u.name, Created: s.opts.Now(), Public: public, Repositories: map[string]bool{}}
	s.projects[p.Name] = p
	s.mu.Unlock()
	loc := "/api/v2.0/projects/" + strconv.FormatInt(p.ID, 10)
	if r.Header.Get("X-Resource-Name-In-Location") == "true" {
		loc = "/api/v2.0/projects/" + p.Name
	}
	created(w, loc)
}

func (s *Server) getProject(w http.ResponseWriter, r *http.Request) {
	u := s.authenticate(r)
	p := s.projectOr(w, r, u)
	if p == nil {
		return
	}
	s.mu.Lock()
	body := p.json()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request) {
	u := s.authenticate(r)
	p := s.projectOr(w, r, u)
	if p == nil {
		return
	}
	if !u.admin {
		forbidden(w)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(p.Repositories) > 0 {
		writeError(w, http.StatusPreconditionFailed, "PRECONDITION", "the project contains repositories, can not be deleted")
		return
	}
	delete(s.projects, p.Name)
	for id, rb := range s.robots {
		if rb.Level == "project" && rb.Project == p.Name {
			delete(s.robots, id)
		}
	}
	for id, pol := range s.policies {
		if pol.ProjectID == p.ID {
			delete(s.policies, id)
		}
	}
	w.WriteHeader(http.StatusOK)
}
