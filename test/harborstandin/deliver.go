package harborstandin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Delivery is one webhook POST the stand-in made, for tests to inspect.
type Delivery struct {
	PolicyID int64
	Address  string
	Status   int    // the receiver's status, 0 on a transport error
	Error    string // the transport error, if any
	Body     []byte
}

// Deliveries returns the webhook POSTs made so far.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.webhookSent...)
}

// firePush sends PUSH_ARTIFACT, in Harbor v2.6.2's default payload, to every
// enabled policy of the project that has it; asynchronously, after the push
// succeeded, with the policy's auth_header verbatim. One attempt: unlike
// Harbor's job service, the stand-in does not retry. Caller holds s.mu.
func (s *Server) firePush(host, operator string, p *project, a *artifact, tag string, now time.Time) {
	name := strings.TrimPrefix(a.Repo, p.Name+"/")
	res := map[string]any{"digest": a.Digest, "tag": tag, "resource_url": host + "/" + a.Repo + ":" + tag}
	if tag == "" {
		res["tag"] = a.Digest
		res["resource_url"] = host + "/" + a.Repo + "@" + a.Digest
	}
	repoType := "private"
	if p.Public {
		repoType = "public"
	}
	body, _ := json.Marshal(map[string]any{
		"type": "PUSH_ARTIFACT", "occur_at": now.Unix(), "operator": operator,
		"event_data": map[string]any{
			"resources": []any{res},
			"repository": map[string]any{
				"date_created": p.Created.Unix(), "name": name, "namespace": p.Name,
				"repo_full_name": a.Repo, "repo_type": repoType,
			},
		},
	})
	for _, pol := range s.policies {
		if pol.ProjectID != p.ID || !pol.Enabled || !slices.Contains(pol.EventTypes, "PUSH_ARTIFACT") {
			continue
		}
		for _, t := range pol.Targets {
			s.sending++
			go s.deliver(pol.ID, t, body)
		}
	}
}

func (s *Server) deliver(policyID int64, t *target, body []byte) {
	d := Delivery{PolicyID: policyID, Address: t.Address, Body: body}
	req, err := http.NewRequest(http.MethodPost, t.Address, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		if t.AuthHeader != "" {
			req.Header.Set("Authorization", t.AuthHeader)
		}
		client := &http.Client{Timeout: 30 * time.Second}
		var resp *http.Response
		if resp, err = client.Do(req); err == nil {
			d.Status = resp.StatusCode
			resp.Body.Close()
		}
	}
	if err != nil {
		d.Error = err.Error()
	}
	s.mu.Lock()
	s.webhookSent = append(s.webhookSent, d)
	s.mu.Unlock()
}
