package harborstandin

import (
	"net/http"
	"sort"
	"strconv"
	"time"
)

type access struct {
	Resource string `json:"resource"`
	Action   string `json:"action"`
	Effect   string `json:"effect,omitempty"`
}

type permission struct {
	Kind      string    `json:"kind"`
	Namespace string    `json:"namespace"`
	Access    []*access `json:"access"`
}

type robot struct {
	ID          int64
	Name        string // as given: "ci"
	Project     string // project-level robots: the project's name
	Level       string // "system" or "project"
	Description string
	Duration    int64
	ExpiresAt   int64 // unix seconds, or -1
	Secret      string
	Disable     bool
	Permissions []*permission
	Created     time.Time
	Updated     time.Time
}

// fullName is how Harbor shows and logs in robots: robot$demo+ci, robot$ci.
func (rb *robot) fullName() string {
	if rb.Level == "project" {
		return "robot$" + rb.Project + "+" + rb.Name
	}
	return "robot$" + rb.Name
}

func (rb *robot) expired(now time.Time) bool {
	return rb.ExpiresAt != -1 && now.Unix() >= rb.ExpiresAt
}

// covers reports whether the robot may do action on resource in namespace (a
// project name, or "/" for the system). A project robot's push brings pull.
func (rb *robot) covers(namespace, resource, action string) bool {
	for _, p := range rb.Permissions {
		if !(p.Namespace == namespace || (p.Kind == "project" && p.Namespace == "*" && namespace != "/")) {
			continue
		}
		for _, a := range p.Access {
			if a.Resource == resource && (a.Action == action || (resource == "repository" && action == "pull" && a.Action == "push")) {
				return true
			}
		}
	}
	return false
}

// inProject reports whether the robot has any right in the project.
func (rb *robot) inProject(project string) bool {
	for _, p := range rb.Permissions {
		if p.Kind == "project" && (p.Namespace == project || p.Namespace == "*") {
			return true
		}
	}
	return false
}

func (rb *robot) json() map[string]any {
	perms := rb.Permissions
	if perms == nil {
		perms = []*permission{}
	}
	return map[string]any{
		"id": rb.ID, "name": rb.fullName(), "description": rb.Description, "level": rb.Level,
		"duration": rb.Duration, "expires_at": rb.ExpiresAt, "disable": rb.Disable, "editable": true,
		"permissions": perms, "creation_time": rb.Created.UTC().Format(time.RFC3339),
		"update_time": rb.Updated.UTC().Format(time.RFC3339), "creator_ref": 1, "creator_type": "local",
	}
}

type robotReq struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Level       string        `json:"level"`
	Duration    int64         `json:"duration"`
	Disable     bool          `json:"disable"`
	Secret      string        `json:"secret"`
	Permissions []*permission `json:"permissions"`
}

// adminOnly answers 401/403 unless the request is the admin's. (Harbor also
// lets project admins manage their project's robots; tsys-ci uses the admin.)
func (s *Server) adminOnly(w http.ResponseWriter, r *http.Request) bool {
	return s.adminOnlyAs(w, r, true)
}

// adminOnlyAs is adminOnly; nameIn403 puts the user's name in the 403's
// message, as Harbor v2.12.0's robot endpoints do (the others say
// "forbidden").
func (s *Server) adminOnlyAs(w http.ResponseWriter, r *http.Request, nameIn403 bool) bool {
	u := s.authenticate(r)
	if u.anonymous() {
		unauthorized(w)
		return false
	}
	if !u.admin && nameIn403 {
		writeError(w, http.StatusForbidden, "FORBIDDEN", u.name)
		return false
	}
	if !u.admin {
		forbidden(w)
		return false
	}
	return true
}

// checkPermissions validates a robot's permissions for its level; it
// returns the project of a project robot. Caller holds s.mu.
func (s *Server) checkPermissions(w http.ResponseWriter, level string, perms []*permission) (string, bool) {
	if len(perms) == 0 {
		badRequest(w, "bad request empty permission")
		return "", false
	}
	for _, p := range perms {
		if len(p.Access) == 0 {
			badRequest(w, "bad request permission: no access")
			return "", false
		}
	}
	switch level {
	case "project":
		if len(perms) != 1 || perms[0].Kind != "project" {
			badRequest(w, "bad request permission: a project level robot takes exactly one project permission")
			return "", false
		}
		if _, ok := s.projects[perms[0].Namespace]; !ok {
			notFound(w, "project "+perms[0].Namespace+" not found") // v2.6.2 answered 403
			return "", false
		}
		return perms[0].Namespace, true
	case "system":
		for _, p := range perms {
			switch {
			case p.Kind == "system" && p.Namespace == "/":
			case p.Kind == "project" && p.Namespace == "*":
			case p.Kind == "project":
				if _, ok := s.projects[p.Namespace]; !ok {
					notFound(w, "project "+p.Namespace+" not found")
					return "", false
				}
			default:
				badRequest(w, "bad request permission: unknown kind "+p.Kind)
				return "", false
			}
		}
		return "", true
	}
	badRequest(w, "bad request level: "+level)
	return "", false
}

func (s *Server) createRobot(w http.ResponseWriter, r *http.Request) {
	if !s.adminOnly(w, r) {
		return
	}
	var req robotReq
	if !decode(w, r, "robot", &req) {
		return
	}
	if !nameRE.MatchString(req.Name) {
		badRequest(w, "robot name is not in lower case or contains illegal characters")
		return
	}
	if req.Duration == 0 || req.Duration < -1 {
		// v2.6.2 took 0 as its default of 30 days; v2.12.0 refuses it.
		badRequest(w, "bad request error duration input: "+strconv.FormatInt(req.Duration, 10)+", duration must be either -1(Never) or a positive integer")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	projectName, ok := s.checkPermissions(w, req.Level, req.Permissions)
	if !ok {
		return
	}
	now := s.opts.Now()
	rb := &robot{Name: req.Name, Project: projectName, Level: req.Level, Description: req.Description,
		Duration: req.Duration, Disable: req.Disable, Permissions: req.Permissions, Created: now, Updated: now}
	for _, other := range s.robots {
		if other.fullName() == rb.fullName() {
			// Harbor names the stored robot: <project id>:<project>+<name>.
			stored := rb.Name
			if p := s.projects[projectName]; p != nil {
				stored = strconv.FormatInt(p.ID, 10) + ":" + projectName + "+" + rb.Name
			}
			conflict(w, "robot account "+stored+" already exists")
			return
		}
	}
	if rb.Duration == -1 {
		rb.ExpiresAt = -1
	} else {
		rb.ExpiresAt = now.Add(time.Duration(rb.Duration) * 24 * time.Hour).Unix()
	}
	rb.Secret = req.Secret
	if rb.Secret == "" {
		rb.Secret = randomHex(16)
	}
	rb.ID = s.id()
	s.robots[rb.ID] = rb
	w.Header().Set("Location", "/api/v2.0/robots/"+strconv.FormatInt(rb.ID, 10))
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": rb.ID, "name": rb.fullName(), "secret": rb.Secret,
		"creation_time": rb.Created.UTC().Format(time.RFC3339), "expires_at": rb.ExpiresAt,
	})
}

// listRobots lists system robots, or a project's robots with
// q=Level=project,ProjectID=<id>. Secrets are never listed.
func (s *Server) listRobots(w http.ResponseWriter, r *http.Request) {
	if !s.adminOnly(w, r) {
		return
	}
	q := parseQ(r.URL.Query().Get("q"))
	level := q["Level"]
	if level == "" {
		level = "system"
	}
	s.mu.Lock()
	var projectName string
	if level == "project" {
		id, _ := strconv.ParseInt(q["ProjectID"], 10, 64)
		for _, p := range s.projects {
			if p.ID == id {
				projectName = p.Name
			}
		}
	}
	var list []*robot
	for _, rb := range s.robots {
		if rb.Level == level && (level != "project" || rb.Project == projectName) {
			list = append(list, rb)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	out := []map[string]any{}
	for _, rb := range list {
		out = append(out, rb.json())
	}
	s.mu.Unlock()
	from, to, ok := paginate(w, r, len(out))
	if ok {
		writeJSON(w, http.StatusOK, out[from:to])
	}
}

func (s *Server) robotByPath(w http.ResponseWriter, r *http.Request) *robot {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		badRequest(w, "invalid robot id "+r.PathValue("id"))
		return nil
	}
	rb := s.robots[id]
	if rb == nil {
		notFound(w, "robot "+r.PathValue("id")+" not found")
	}
	return rb
}

func (s *Server) getRobot(w http.ResponseWriter, r *http.Request) {
	if !s.adminOnly(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rb := s.robotByPath(w, r); rb != nil {
		writeJSON(w, http.StatusOK, rb.json())
	}
}

// updateRobot takes the whole robot; level and full name must be repeated.
func (s *Server) updateRobot(w http.ResponseWriter, r *http.Request) {
	if !s.adminOnly(w, r) {
		return
	}
	var req robotReq
	if !decode(w, r, "robot", &req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rb := s.robotByPath(w, r)
	if rb == nil {
		return
	}
	if req.Level != rb.Level || req.Name != rb.fullName() {
		badRequest(w, "cannot update the level or name of robot")
		return
	}
	if _, ok := s.checkPermissions(w, req.Level, req.Permissions); !ok {
		return
	}
	if rb.Level == "project" && req.Permissions[0].Namespace != rb.Project {
		badRequest(w, "cannot move a project robot to another project")
		return
	}
	rb.Description, rb.Disable, rb.Permissions, rb.Updated = req.Description, req.Disable, req.Permissions, s.opts.Now()
	if req.Duration != 0 && req.Duration != rb.Duration {
		rb.Duration = req.Duration
		if rb.Duration == -1 {
			rb.ExpiresAt = -1
		} else {
			rb.ExpiresAt = rb.Created.Add(time.Duration(rb.Duration) * 24 * time.Hour).Unix()
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) deleteRobot(w http.ResponseWriter, r *http.Request) {
	if !s.adminOnly(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rb := s.robotByPath(w, r); rb != nil {
		delete(s.robots, rb.ID)
		w.WriteHeader(http.StatusOK)
	}
}
