package harborstandin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// grants are the actions a registry token allows, by repository.
type grants map[string]map[string]bool

func (g grants) allows(repo, action string) bool { return g[repo][action] }

// allowed reports whether u may do action ("pull", "push", "delete") on the
// repository repo (PROJECT/NAME...). Caller holds s.mu.
func (s *Server) allowed(u user, repo, action string) bool {
	projectName, _, _ := strings.Cut(repo, "/")
	p := s.projects[projectName]
	if p == nil {
		return false
	}
	switch {
	case u.admin:
		return true
	case u.robot != nil:
		return u.robot.covers(p.Name, "repository", action)
	default:
		return action == "pull" && p.Public
	}
}

// token is Harbor's token service. Like Harbor, wrong credentials still get
// a token: one that grants nothing.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	u := s.authenticate(r)
	g := grants{}
	s.mu.Lock()
	for _, scope := range r.URL.Query()["scope"] {
		parts := strings.Split(scope, ":")
		if len(parts) != 3 || parts[0] != "repository" {
			continue
		}
		for _, a := range strings.Split(parts[2], ",") {
			if a == "*" {
				a = "delete"
			}
			if s.allowed(u, parts[1], a) {
				if g[parts[1]] == nil {
					g[parts[1]] = map[string]bool{}
				}
				g[parts[1]][a] = true
			}
		}
	}
	t := randomHex(24)
	s.tokens[t] = g
	s.tokenUsers[t] = u.name
	s.mu.Unlock()
	// Harbor's token is a JWT in "token", with "access_token" empty; this
	// one is opaque, which clients do not look into.
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{
		"token": t, "access_token": "", "expires_in": 1800,
		"issued_at": s.opts.Now().UTC().Format(time.RFC3339),
	})
}

// repoOf splits a /v2/ path into the repository and the kind of request.
func repoOf(path string) (repo, kind, ref string) {
	rest := strings.TrimPrefix(path, "/v2/")
	for _, k := range []string{"/manifests/", "/blobs/", "/tags/", "/referrers/"} {
		if i := strings.LastIndex(rest, k); i > 0 {
			return rest[:i], strings.Trim(k, "/"), rest[i+len(k):]
		}
	}
	return "", "", ""
}

// registry serves /v2/ with go-containerregistry's registry behind Harbor's
// token auth (basic auth is taken too, as Harbor does).
func (s *Server) registry(w http.ResponseWriter, r *http.Request) {
	repo, kind, ref := repoOf(r.URL.Path)
	action := "pull"
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodDelete:
		action = "delete"
	default:
		action = "push"
	}
	var ok bool
	var operator string
	if t, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
		s.mu.Lock()
		g, known := s.tokens[t]
		if known {
			ok = repo == "" || g.allows(repo, action)
			operator = s.tokenUsers[t]
		}
		s.mu.Unlock()
	} else if _, _, has := r.BasicAuth(); has {
		who := s.authenticate(r)
		s.mu.Lock()
		ok = !who.anonymous() && (repo == "" || s.allowed(who, repo, action))
		s.mu.Unlock()
		operator = who.name
	}
	if !ok {
		challenge := fmt.Sprintf(`Bearer realm="http://%s/service/token",service="harbor-registry"`, r.Host)
		if repo != "" {
			challenge += fmt.Sprintf(`,scope="repository:%s:%s"`, repo, map[string]string{"pull": "pull", "push": "pull,push", "delete": "delete"}[action])
		}
		w.Header().Set("Www-Authenticate", challenge)
		w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		if repo == "" {
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized: unauthorized"}]}`)
			return
		}
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized to access repository: `+repo+`, action: `+action+`: unauthorized to access repository: `+repo+`, action: `+action+`"}]}`)
		return
	}
	if r.URL.Path == "/v2/" || r.URL.Path == "/v2" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
		io.WriteString(w, "{}")
		return
	}
	if kind == "manifests" && r.Method == http.MethodPut {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err != nil {
			writeError(w, http.StatusBadRequest, "BAD_REQUEST", err.Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &statusRecorder{ResponseWriter: w}
		s.reg.ServeHTTP(rec, r)
		if rec.status == http.StatusCreated {
			s.manifestPushed(r.Host, operator, repo, ref, r.Header.Get("Content-Type"), body)
		}
		return
	}
	s.reg.ServeHTTP(w, r)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// artifact is what Harbor records for a pushed manifest.
type artifact struct {
	ID          int64
	Project     string
	Repo        string // PROJECT/NAME
	Digest      string
	MediaType   string
	Size        int64
	Tags        map[string]time.Time
	Pushed      time.Time
	Accessories []*accessory
	Subject     string // for an accessory: the digest it belongs to
}

type accessory struct {
	ID       int64  `json:"id"`
	Artifact int64  `json:"artifact_id"`
	Subject  int64  `json:"subject_artifact_id"`
	Size     int64  `json:"size"`
	Digest   string `json:"digest"`
	Type     string `json:"type"`
	Icon     string `json:"icon"`
	Created  string `json:"creation_time"`
}

// manifestPushed records the artifact, spots cosign signatures as Harbor
// does (a 201 to PUT manifests/sha256-<hex>.sig with a simple-signing layer
// whose subject is already in the repository) and fires PUSH_ARTIFACT.
func (s *Server) manifestPushed(host, operator, repo, ref, mediaType string, body []byte) {
	sum := sha256.Sum256(body)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	now := s.opts.Now()
	projectName, _, _ := strings.Cut(repo, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projects[projectName]
	if p == nil {
		return
	}
	p.Repositories[repo] = true
	key := repo + "@" + digest
	a := s.artifacts[key]
	created := a == nil
	if created {
		a = &artifact{ID: s.id(), Project: projectName, Repo: repo, Digest: digest, MediaType: mediaType, Size: int64(len(body)), Tags: map[string]time.Time{}}
		s.artifacts[key] = a
	}
	a.Pushed = now
	tag := ""
	if !strings.HasPrefix(ref, "sha256:") {
		tag = ref
		for _, other := range s.artifacts {
			if other.Repo == repo {
				delete(other.Tags, tag)
			}
		}
		a.Tags[tag] = now
	}
	if hexSubject, ok := strings.CutSuffix(strings.TrimPrefix(tag, "sha256-"), ".sig"); ok && strings.HasPrefix(tag, "sha256-") && hasSimpleSigningLayer(body) {
		if subject := s.artifacts[repo+"@sha256:"+hexSubject]; subject != nil && a.Subject == "" {
			a.Subject = subject.Digest
			subject.Accessories = append(subject.Accessories, &accessory{
				ID: s.id(), Artifact: a.ID, Subject: subject.ID, Size: a.Size, Digest: a.Digest,
				Type: "signature.cosign", Icon: "sha256:20401d5b3a0f6dbc607c8d732eb08471af4ae6b19811a4efce8c6a724aed2882",
				Created: now.UTC().Format(time.RFC3339),
			})
		}
	}
	if created || !s.opts.PushEventOnCreateOnly {
		s.firePush(host, operator, p, a, tag, now)
	}
}

func hasSimpleSigningLayer(manifest []byte) bool {
	var m struct {
		Layers []struct {
			MediaType string `json:"mediaType"`
		} `json:"layers"`
	}
	if json.Unmarshal(manifest, &m) != nil {
		return false
	}
	for _, l := range m.Layers {
		if l.MediaType == "application/vnd.dev.cosign.simplesigning.v1+json" {
			return true
		}
	}
	return false
}
