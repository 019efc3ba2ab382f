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

// json is the project as Harbor v2.12.0 shows it to u: the admin (owner of
// every project here) has role 1, project admin.
func (p *project) json(u user) map[string]any {
	md := map[string]any{"public": strconv.FormatBool(p.Public)}
	if p.RetentionID != 0 {
		md["retention_id"] = strconv.FormatInt(p.RetentionID, 10)
	}
	created := p.Created.UTC().Format(time.RFC3339)
	out := map[string]any{
		"project_id": p.ID, "name": p.Name, "owner_name": p.Owner, "owner_id": 1,
		"creation_time": created, "update_time": created,
		"repo_count": len(p.Repositories), "metadata": md, "current_user_role_ids": nil,
		"cve_allowlist": map[string]any{"id": p.ID, "project_id": p.ID, "items": []any{},
			"creation_time": created, "update_time": created},
	}
	if u.admin {
		out["current_user_role_id"], out["current_user_role_ids"] = 1, []int{1}
	}
	return out
}

// canSee reports whether u finds project p in lists (Harbor: public
// projects for everyone, private ones for members; here the admin and the
// robots with any right in the project).
func (u user) canSee(p *project) bool {
	return p.Public || u.admin || (u.robot != nil && u.robot.inProject(p.Name))
}

// may reports whether u may do action on resource ("" for the project
// itself) in project p, as Harbor's RequireProjectAccess decides it: the
// admin may do anything, everyone may read and list in a public project, a
// robot only what its permissions grant (so a push/pull robot may not read
// the project itself: GET /projects/{name} is 403 for it).
func (u user) may(p *project, resource, action string) bool {
	switch {
	case u.admin:
		return true
	case p.Public && (action == "read" || action == "list" || action == "pull"):
		return true
	case u.robot != nil:
		if resource == "" {
			resource = "project"
		}
		return u.robot.covers(p.Name, resource, action)
	}
	return false
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

// projectOr finds the path's project and checks that u may do action on
// resource in it; nil means it answered. As in Harbor v2.12.0: anonymous
// users get 401 unless the project is public and the action a read, the
// admin gets 404 for a project (name or id) that does not exist, anyone else
// 403 for a missing project or a missing right. (Harbor v2.6.2 answered 403
// to the admin for a missing name too.)
func (s *Server) projectOr(w http.ResponseWriter, r *http.Request, u user, resource, action string) *project {
	s.mu.Lock()
	p, _ := s.findProject(r, r.PathValue("project"))
	s.mu.Unlock()
	switch {
	case u.anonymous() && (p == nil || !u.may(p, resource, action)):
		unauthorized(w)
		return nil
	case p == nil && u.admin:
		notFound(w, "project "+r.PathValue("project")+" not found")
		return nil
	case p == nil, !u.may(p, resource, action):
		forbidden(w)
		return nil
	}
	return p
}

func (s *Server) headProject(w http.ResponseWriter, r *http.Request) {
	// Any logged-in user, robots included, may ask; errors keep the JSON
	// content type on HEAD.
	if s.authenticate(r).anonymous() {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	_, ok := s.projects[r.URL.Query().Get("project_name")]
	s.mu.Unlock()
	if !ok {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
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
		if !u.canSee(p) || (exact != "" && p.Name != exact) || (fuzzy != "" && !strings.Contains(p.Name, fuzzy)) {
			continue
		}
		list = append(list, p)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	out := []map[string]any{}
	for _, p := range list {
		out = append(out, p.json(u))
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
	// Any user may create projects (Harbor's default "everyone"); of the
	// robots, only system robots with project create.
	if u.robot != nil && u.robot.Level != "system" {
		writeError(w, http.StatusForbidden, "FORBIDDEN", "Only system level robot can create project")
		return
	}
	if u.robot != nil && !u.robot.covers("/", "project", "create") {
		forbidden(w)
		return
	}
	var req struct {
		ProjectName string            `json:"project_name"`
		Public      *bool             `json:"public"`
		Metadata    map[string]string `json:"metadata"`
	}
	if !decode(w, r, "project", &req) {
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
	p := s.projectOr(w, r, u, "", "read")
	if p == nil {
		return
	}
	s.mu.Lock()
	body := p.json(u)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request) {
	u := s.authenticate(r)
	p := s.projectOr(w, r, u, "", "delete")
	if p == nil {
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
