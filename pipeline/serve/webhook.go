package serve

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"
)

// MaxClockSkew is how far in the future an event's occur_at may be
// (Harbor's clock against ours) before the event is refused.
const MaxClockSkew = 5 * time.Minute

// secretMatches compares the Authorization header with the configured
// value in constant time. Both sides are hashed first so that neither the
// content nor the length of the secret leaks through timing.
func secretMatches(header, secret string) bool {
	a := sha256.Sum256([]byte(header))
	b := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// handleWebhook receives Harbor's webhook deliveries.
func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	log := s.log.With("remote", r.RemoteAddr)
	refuse := func(code int, result, reason string, attrs ...any) {
		s.metrics.WebhookEvents.WithLabelValues(result).Inc()
		log.Warn("webhook refused", append([]any{"result", result, "reason", reason, "status", code}, attrs...)...)
		writeJSON(w, code, map[string]string{"result": result, "error": reason})
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(http.StatusMethodNotAllowed, "bad_request", "only POST")
		return
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		refuse(http.StatusUnauthorized, "unauthorized", "no Authorization header; set the webhook policy's auth header to the project's webhook secret")
		return
	}
	secretOf, known := secretProject(auth, s.webhookSecrets)
	if !known {
		refuse(http.StatusUnauthorized, "unauthorized", "wrong secret in the Authorization header")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			refuse(http.StatusUnsupportedMediaType, "unsupported_media", "Content-Type is not application/json; set the webhook policy's payload format to Default (not CloudEvents)", "contentType", ct)
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			refuse(http.StatusRequestEntityTooLarge, "too_large", "body larger than the largest Harbor event", "limit", MaxWebhookBody)
			return
		}
		refuse(http.StatusBadRequest, "bad_request", "reading the body failed", "err", err)
		return
	}
	ev, err := ParseHarborEvent(body)
	if err != nil {
		refuse(http.StatusBadRequest, "bad_request", "body is not a Harbor event", "err", err)
		return
	}
	evAttrs := []any{"type", ev.Type, "occurAt", ev.OccurAt, "operator", ev.Operator}
	if ev.Type == HarborPushArtifact || ev.Type == HarborPullArtifact || ev.Type == HarborDeleteArtifact {
		evAttrs = append(evAttrs, "repository", ev.EventData.Repository.RepoFullName,
			"digest", ev.EventData.Resources[0].Digest, "tag", ev.EventData.Resources[0].Tag)
		// The secret says which project's webhook sent this; an event about
		// another project's repository is that project's to send.
		if project := ev.Project(); project != secretOf {
			refuse(http.StatusForbidden, "wrong_project", fmt.Sprintf("the Authorization header is the webhook secret of Harbor project %s, but the event is about %s of project %s; each project's webhook sends its own secret", secretOf, ev.EventData.Repository.RepoFullName, project), evAttrs...)
			return
		}
		if host, _ := ev.Registry(); host != s.cfg.Registry {
			refuse(http.StatusBadRequest, "wrong_registry", fmt.Sprintf("the event's image is on registry %s, but serve deploys from %s only (serve.yaml registry)", host, s.cfg.Registry), evAttrs...)
			return
		}
	}
	if !s.isLeader() {
		w.Header().Set("Retry-After", "5")
		refuse(http.StatusServiceUnavailable, "not_leader", "this replica is not the leader; Harbor retries, and the leader acts", evAttrs...)
		return
	}
	now := s.clock.Now()
	occur := ev.Time()
	switch {
	case now.Sub(occur) > s.replay.Window:
		refuse(http.StatusBadRequest, "stale", "event older than the replay window", append(evAttrs, "window", s.replay.Window.String())...)
		return
	case occur.Sub(now) > MaxClockSkew:
		refuse(http.StatusBadRequest, "stale", "event occur_at is in the future; check Harbor's and this host's clocks", evAttrs...)
		return
	}
	// Seen and Record are two steps; two identical deliveries racing each
	// other could both pass. The single-flight lock closes that gap.
	s.webhookMu.Lock()
	defer s.webhookMu.Unlock()
	key := ev.ReplayKey()
	if s.replay.Seen(key, now) {
		refuse(http.StatusConflict, "replay", "this delivery was already accepted", evAttrs...)
		return
	}
	policies, reason := Match(s.cfg.Policies, ev)
	if len(policies) == 0 {
		s.replay.Record(key, now)
		s.metrics.WebhookEvents.WithLabelValues("ignored").Inc()
		log.Info("webhook ignored", append(evAttrs, "reason", reason)...)
		writeJSON(w, http.StatusOK, map[string]string{"result": "ignored", "reason": reason})
		return
	}
	// Harbor's order, kept in the cluster: an event older than the newest
	// push accepted for the app is not deployed (Harbor retried it after a
	// newer one was taken), and the newest one again is a replay another
	// replica accepted.
	mark := PushMark{OccurAt: ev.OccurAt, Tag: ev.Tag(), Digest: ev.EventData.Resources[0].Digest, Key: key}
	for _, p := range policies {
		newest, err := s.order.Newest(r.Context(), p.Namespace, p.App)
		if err != nil {
			w.Header().Set("Retry-After", "30")
			refuse(http.StatusServiceUnavailable, "order_unknown", "the newest push of the app could not be read; Harbor retries", append(evAttrs, "err", err)...)
			return
		}
		switch {
		case newest == nil:
		case newest.Key == key:
			s.replay.Record(key, now)
			refuse(http.StatusConflict, "replay", "this delivery was already accepted (recorded in the cluster)", evAttrs...)
			return
		case mark.Before(*newest):
			s.replay.Record(key, now)
			reason := fmt.Sprintf("push of tag %s (occur_at %d) is older than tag %s (occur_at %d) already accepted for app %s/%s; not deployed (promote it by hand to go back)",
				mark.Tag, mark.OccurAt, newest.Tag, newest.OccurAt, p.Namespace, p.App)
			s.metrics.WebhookEvents.WithLabelValues("superseded").Inc()
			log.Warn("webhook superseded", append(evAttrs, "reason", reason)...)
			writeJSON(w, http.StatusOK, map[string]string{"result": "superseded", "reason": reason})
			return
		}
	}
	reqs := make([]DeployRequest, 0, len(policies))
	for _, p := range policies {
		stage := ""
		if len(p.Stages) > 0 {
			stage = p.Stages[0].Name
		}
		reqs = append(reqs, DeployRequest{
			Kind: DeployPromote, Policy: p.Name, Stage: stage, App: p.App, Namespace: p.Namespace, Strategy: p.Strategy, Spec: p.Spec, EnvSecret: p.EnvSecret,
			Image: ev.Image(), Tag: ev.Tag(), Trigger: "harbor", By: ev.Operator, PushedAt: occur,
		})
	}
	// A staged policy's push is recorded before it is queued, so its end
	// finds the record; the leader's rounds wait meanwhile.
	s.stageMu.Lock()
	defer s.stageMu.Unlock()
	for i, p := range policies {
		s.stageQueued(r.Context(), p, reqs[i], now)
	}
	recs, err := s.queue.EnqueueAll(reqs)
	if err != nil {
		for i, p := range policies {
			s.stageNotQueued(r.Context(), p, reqs[i], err)
		}
		// Nothing was queued: Harbor's retry is taken.
		w.Header().Set("Retry-After", "30")
		refuse(http.StatusServiceUnavailable, "queue_full", err.Error(), evAttrs...)
		return
	}
	ids := make([]string, 0, len(recs))
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	s.replay.Record(key, now)
	for i, p := range policies {
		s.stageDeployID(r.Context(), p, reqs[i], recs[i].ID)
	}
	for _, p := range policies {
		m := mark
		m.Policy = p.Name
		if err := s.order.Record(r.Context(), p.Namespace, p.App, m); err != nil {
			// The deploy is queued; only an older event's refusal after a
			// leader change depends on this record.
			log.Error("newest push not recorded", append(evAttrs, "app", p.Namespace+"/"+p.App, "err", err)...)
		}
	}
	s.metrics.WebhookEvents.WithLabelValues("accepted").Inc()
	log.Info("webhook accepted", append(evAttrs, "deploys", ids)...)
	writeJSON(w, http.StatusAccepted, map[string]any{"result": "accepted", "deploys": ids})
}
