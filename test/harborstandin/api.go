package harborstandin

import (
	"net/http"
)

// api serves /api/v2.0/ with Harbor's paths.
func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	mux := http.NewServeMux()
	p := "/api/v2.0"
	mux.HandleFunc("GET "+p+"/ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("Pong"))
	})
	mux.HandleFunc("GET "+p+"/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "healthy", "components": []map[string]string{
			{"name": "core", "status": "healthy"}, {"name": "registry", "status": "healthy"},
		}})
	})
	mux.HandleFunc("GET "+p+"/systeminfo", s.systemInfo)
	mux.HandleFunc("HEAD "+p+"/projects", s.headProject)
	mux.HandleFunc("GET "+p+"/projects", s.listProjects)
	mux.HandleFunc("POST "+p+"/projects", s.createProject)
	mux.HandleFunc("GET "+p+"/projects/{project}", s.getProject)
	mux.HandleFunc("DELETE "+p+"/projects/{project}", s.deleteProject)
	mux.HandleFunc("GET "+p+"/projects/{project}/webhook/policies", s.listPolicies)
	mux.HandleFunc("POST "+p+"/projects/{project}/webhook/policies", s.createPolicy)
	mux.HandleFunc("GET "+p+"/projects/{project}/webhook/policies/{id}", s.getPolicy)
	mux.HandleFunc("PUT "+p+"/projects/{project}/webhook/policies/{id}", s.updatePolicy)
	mux.HandleFunc("DELETE "+p+"/projects/{project}/webhook/policies/{id}", s.deletePolicy)
	mux.HandleFunc("GET "+p+"/projects/{project}/repositories/{repo}/artifacts", s.listArtifacts)
	mux.HandleFunc("GET "+p+"/projects/{project}/repositories/{repo}/artifacts/{ref}", s.getArtifact)
	mux.HandleFunc("GET "+p+"/robots", s.listRobots)
	mux.HandleFunc("POST "+p+"/robots", s.createRobot)
	mux.HandleFunc("GET "+p+"/robots/{id}", s.getRobot)
	mux.HandleFunc("PUT "+p+"/robots/{id}", s.updateRobot)
	mux.HandleFunc("DELETE "+p+"/robots/{id}", s.deleteRobot)
	mux.HandleFunc("POST "+p+"/retentions", s.createRetention)
	mux.HandleFunc("GET "+p+"/retentions/{id}", s.getRetention)
	mux.HandleFunc("PUT "+p+"/retentions/{id}", s.updateRetention)
	h, pattern := mux.Handler(r)
	if pattern == "" {
		// Unknown path or method: Harbor answers with its JSON error body.
		rec := &statusOnly{}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method not allowed")
			return
		}
		notFound(w, "not found")
		return
	}
	mux.ServeHTTP(w, r)
}

// statusOnly records the status a ServeMux would answer with.
type statusOnly struct {
	status int
	h      http.Header
}

func (s *statusOnly) Header() http.Header {
	if s.h == nil {
		s.h = http.Header{}
	}
	return s.h
}
func (s *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusOnly) WriteHeader(code int)        { s.status = code }

func (s *Server) systemInfo(w http.ResponseWriter, r *http.Request) {
	info := map[string]any{"auth_mode": "db_auth", "harbor_version": Version, "self_registration": false}
	if !s.authenticate(r).anonymous() {
		info["external_url"] = "http://" + r.Host
		info["registry_url"] = r.Host
		info["project_creation_restriction"] = "adminonly"
	}
	writeJSON(w, http.StatusOK, info)
}
