package harborstandin

import (
	"net/http"
	"strings"
)

// api serves /api/v2.0/ with Harbor's paths.
func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	mux := http.NewServeMux()
	p := "/api/v2.0"
	mux.HandleFunc("GET "+p+"/ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("Pong"))
	})
	mux.HandleFunc("GET "+p+"/health", func(w http.ResponseWriter, r *http.Request) {
		var comps []map[string]string
		for _, c := range []string{"core", "database", "jobservice", "portal", "redis", "registry", "registryctl"} {
			comps = append(comps, map[string]string{"name": c, "status": "healthy"})
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "healthy", "components": comps})
	})
	mux.HandleFunc("GET "+p+"/systeminfo", s.systemInfo)
	mux.HandleFunc("HEAD "+p+"/projects", s.headProject)
	mux.HandleFunc("GET "+p+"/projects", s.listProjects)
	mux.HandleFunc("POST "+p+"/projects", s.createProject)
	mux.HandleFunc("GET "+p+"/projects/{project}", s.getProject)
	mux.HandleFunc("DELETE "+p+"/projects/{project}", s.deleteProject)
	mux.HandleFunc("GET "+p+"/projects/{project}/webhook/events", s.webhookEvents)
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
			// Harbor: "method PATCH is not allowed, but [HEAD,GET,POST] are".
			allow := strings.ReplaceAll(rec.Header().Get("Allow"), ", ", ",")
			writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method "+r.Method+" is not allowed, but ["+allow+"] are")
			return
		}
		notFound(w, "path "+r.URL.Path+" was not found")
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

// systemInfo answers as Harbor v2.12.0 does: a few fields for anyone, more
// once logged in.
func (s *Server) systemInfo(w http.ResponseWriter, r *http.Request) {
	info := map[string]any{"auth_mode": "db_auth", "harbor_version": s.opts.HarborVersion, "self_registration": false,
		"banner_message": "", "oidc_provider_name": "", "primary_auth_mode": false}
	if !s.authenticate(r).anonymous() {
		info["external_url"] = "http://" + r.Host
		info["registry_url"] = r.Host
		info["project_creation_restriction"] = "everyone"
		info["current_time"] = s.opts.Now().UTC().Format("2006-01-02T15:04:05.000Z")
		info["has_ca_root"] = false
		info["notification_enable"] = true
		info["read_only"] = false
		info["registry_storage_provider_name"] = "filesystem"
	}
	writeJSON(w, http.StatusOK, info)
}
