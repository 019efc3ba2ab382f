package harborstandin

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

func (a *artifact) json(p *project, withTags, withAccessory bool) map[string]any {
	out := map[string]any{
		"id": a.ID, "project_id": p.ID, "digest": a.Digest, "media_type": a.MediaType,
		"manifest_media_type": a.MediaType, "size": a.Size, "type": "IMAGE",
		"push_time": a.Pushed.UTC().Format(time.RFC3339), "pull_time": "0001-01-01T00:00:00.000Z",
	}
	if withTags {
		tags := []map[string]any{}
		names := make([]string, 0, len(a.Tags))
		for t := range a.Tags {
			names = append(names, t)
		}
		sort.Strings(names)
		for _, t := range names {
			tags = append(tags, map[string]any{"name": t, "artifact_id": a.ID, "push_time": a.Tags[t].UTC().Format(time.RFC3339), "signed": false, "immutable": false})
		}
		out["tags"] = tags
	}
	if withAccessory {
		acc := a.Accessories
		if acc == nil {
			acc = []*accessory{}
		}
		out["accessories"] = acc
	}
	return out
}

// repoParam reads {repo}: Harbor takes it without the project, with a "/"
// encoded twice (a%252Fb), so one more unescape is needed here.
func repoParam(r *http.Request) string {
	v := r.PathValue("repo")
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

// canList: artifact:list for lists, artifact:read for one artifact, as
// Harbor checks them (the admin and public projects have both; a robot only
// what it was given).
func (s *Server) canList(w http.ResponseWriter, r *http.Request, action string) *project {
	return s.projectOr(w, r, s.authenticate(r), "artifact", action)
}

func boolParam(r *http.Request, name string, def bool) bool {
	switch r.URL.Query().Get(name) {
	case "true":
		return true
	case "false":
		return false
	}
	return def
}

func (s *Server) listArtifacts(w http.ResponseWriter, r *http.Request) {
	p := s.canList(w, r, "list")
	if p == nil {
		return
	}
	repo := p.Name + "/" + repoParam(r)
	withTags, withAcc := boolParam(r, "with_tag", true), boolParam(r, "with_accessory", false)
	s.mu.Lock()
	var list []*artifact
	for _, a := range s.artifacts {
		if a.Repo == repo && a.Subject == "" { // accessories are left out
			list = append(list, a)
		}
	}
	sort.Slice(list, func(i, j int) bool {
		return list[i].Pushed.After(list[j].Pushed) || (list[i].Pushed.Equal(list[j].Pushed) && list[i].ID > list[j].ID)
	})
	out := []map[string]any{}
	for _, a := range list {
		out = append(out, a.json(p, withTags, withAcc))
	}
	s.mu.Unlock()
	// A repository that does not exist lists as empty (200, []), as in Harbor.
	from, to, ok := paginate(w, r, len(out))
	if ok {
		writeJSON(w, http.StatusOK, out[from:to])
	}
}

func (s *Server) getArtifact(w http.ResponseWriter, r *http.Request) {
	p := s.canList(w, r, "read")
	if p == nil {
		return
	}
	repo := p.Name + "/" + repoParam(r)
	ref := r.PathValue("ref")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !p.Repositories[repo] {
		notFound(w, "repository "+repo+" not found")
		return
	}
	var found *artifact
	for _, a := range s.artifacts {
		if a.Repo != repo {
			continue
		}
		if _, tagged := a.Tags[ref]; a.Digest == ref || (!strings.HasPrefix(ref, "sha256:") && tagged) {
			found = a
		}
	}
	if found == nil {
		notFound(w, "artifact "+repo+"@"+ref+" not found")
		return
	}
	writeJSON(w, http.StatusOK, found.json(p, boolParam(r, "with_tag", true), boolParam(r, "with_accessory", false)))
}
