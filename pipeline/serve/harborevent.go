package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Harbor webhook event types tsys-ci serve knows. Only PushArtifact
// triggers deploys; the others are accepted and ignored, so a Harbor policy
// subscribed to more events than needed does not pile up retries.
const (
	HarborPushArtifact   = "PUSH_ARTIFACT"
	HarborPullArtifact   = "PULL_ARTIFACT"
	HarborDeleteArtifact = "DELETE_ARTIFACT"
)

// HarborEvent is Harbor's default ("Default", not CloudEvents) webhook
// payload, as Harbor v2.6 sends it for artifact events:
//
//	{"type":"PUSH_ARTIFACT","occur_at":1700000000,"operator":"robot$demo+ci",
//	 "event_data":{"resources":[{"digest":"sha256:…","tag":"v1","resource_url":"harbor.example.com/demo/app:v1"}],
//	  "repository":{"date_created":1699990000,"name":"app","namespace":"demo","repo_full_name":"demo/app","repo_type":"private"}}}
//
// Unknown fields are allowed: newer Harbor versions add some, and the
// payload is authenticated by the shared secret, not by its shape.
type HarborEvent struct {
	Type      string          `json:"type"`
	OccurAt   int64           `json:"occur_at"`
	Operator  string          `json:"operator"`
	EventData HarborEventData `json:"event_data"`
}

// HarborEventData is the event_data object of an artifact event.
type HarborEventData struct {
	Resources  []HarborResource `json:"resources"`
	Repository HarborRepository `json:"repository"`
}

// HarborResource is one pushed artifact. Harbor sends one, with the first
// tag only; an artifact pushed by digest carries its digest in Tag.
type HarborResource struct {
	Digest      string `json:"digest"`
	Tag         string `json:"tag"`
	ResourceURL string `json:"resource_url"`
}

// HarborRepository names the repository the artifact was pushed to.
type HarborRepository struct {
	DateCreated  int64  `json:"date_created"`
	Name         string `json:"name"`
	Namespace    string `json:"namespace"`
	RepoFullName string `json:"repo_full_name"`
	RepoType     string `json:"repo_type"`
}

// MaxWebhookBody is the largest webhook body serve reads. Harbor's artifact
// events are well under 2 KiB; anything near this is not from Harbor.
const MaxWebhookBody = 64 << 10

var (
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	// repoRE is Harbor's repository path: project/name[/name...], lower case.
	repoRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)+$`)
	// tagRE is the OCI distribution spec's tag grammar.
	tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
)

// ParseHarborEvent decodes and checks a webhook body. Artifact events must
// name exactly one resource with a sha256 digest, a repository that matches
// Harbor's grammar, and a resource_url on the same repository, so nothing
// downstream builds an image reference from unchecked input.
func ParseHarborEvent(body []byte) (*HarborEvent, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var ev HarborEvent
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("webhook body is not a Harbor event (JSON): %w", err)
	}
	if dec.More() {
		return nil, errors.New("webhook body holds more than one JSON value")
	}
	if ev.Type == "" {
		return nil, errors.New("webhook event has no \"type\"")
	}
	if ev.OccurAt <= 0 {
		return nil, errors.New("webhook event has no \"occur_at\" (unix seconds)")
	}
	switch ev.Type {
	case HarborPushArtifact, HarborPullArtifact, HarborDeleteArtifact:
	default:
		return &ev, nil // other event types are not checked further: serve ignores them
	}
	repo := ev.EventData.Repository
	if !repoRE.MatchString(repo.RepoFullName) {
		return nil, fmt.Errorf("event_data.repository.repo_full_name %q is not a Harbor repository path (project/name)", repo.RepoFullName)
	}
	if len(ev.EventData.Resources) != 1 {
		return nil, fmt.Errorf("event_data.resources has %d entries; Harbor sends exactly one per artifact event", len(ev.EventData.Resources))
	}
	res := ev.EventData.Resources[0]
	if !digestRE.MatchString(res.Digest) {
		return nil, fmt.Errorf("event_data.resources[0].digest %q is not sha256:<64 hex>", res.Digest)
	}
	if res.Tag != "" && res.Tag != res.Digest && !tagRE.MatchString(res.Tag) {
		return nil, fmt.Errorf("event_data.resources[0].tag %q is not an OCI tag", res.Tag)
	}
	if _, err := ev.Registry(); err != nil {
		return nil, err
	}
	return &ev, nil
}

// Registry is the registry host Harbor put in resource_url (its external
// URL without the scheme), e.g. harbor.example.com or 10.0.0.5:8443.
func (ev *HarborEvent) Registry() (string, error) {
	if len(ev.EventData.Resources) == 0 {
		return "", errors.New("webhook event names no resource")
	}
	u := ev.EventData.Resources[0].ResourceURL
	repo := ev.EventData.Repository.RepoFullName
	host, rest, ok := strings.Cut(u, "/")
	if !ok || host == "" || strings.ContainsAny(host, " @/\\") || !strings.HasPrefix(rest, repo) {
		return "", fmt.Errorf("event_data.resources[0].resource_url %q is not <registry>/%s:<tag> or @<digest>", u, repo)
	}
	if tail := rest[len(repo):]; tail == "" || (tail[0] != ':' && tail[0] != '@') {
		return "", fmt.Errorf("event_data.resources[0].resource_url %q is not <registry>/%s:<tag> or @<digest>", u, repo)
	}
	return host, nil
}

// Project is the Harbor project of the event's repository.
func (ev *HarborEvent) Project() string {
	project, _, _ := strings.Cut(ev.EventData.Repository.RepoFullName, "/")
	return project
}

// Image is the pushed artifact by digest: registry/project/name@sha256:…,
// what promote deploys (a tag can move; a digest cannot).
func (ev *HarborEvent) Image() string {
	host, _ := ev.Registry()
	return host + "/" + ev.EventData.Repository.RepoFullName + "@" + ev.EventData.Resources[0].Digest
}

// Tag is the pushed tag, or "" when the artifact was pushed by digest
// (Harbor then puts the digest in the tag field).
func (ev *HarborEvent) Tag() string {
	r := ev.EventData.Resources[0]
	if r.Tag == r.Digest || strings.HasPrefix(r.Tag, "sha256:") {
		return ""
	}
	return r.Tag
}

// Time is occur_at as a time.
func (ev *HarborEvent) Time() time.Time { return time.Unix(ev.OccurAt, 0).UTC() }

// cosignTag matches the tags cosign pushes beside an image (signature,
// attestation, SBOM). Harbor fires PUSH_ARTIFACT for them too; they are
// never deployed.
var cosignTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}\.(sig|att|sbom)$`)

// IsCosignAccessory reports whether the push is a cosign signature,
// attestation or SBOM rather than an image.
func (ev *HarborEvent) IsCosignAccessory() bool { return cosignTag.MatchString(ev.Tag()) }

// ReplayKey identifies one delivery of one event: Harbor resends the same
// body on every retry, and a real re-push of the same tag has a new
// occur_at. The key is a fixed-size digest so the replay cache's memory is
// bounded by its entry count.
func (ev *HarborEvent) ReplayKey() string {
	var d, tag string
	if len(ev.EventData.Resources) > 0 {
		d, tag = ev.EventData.Resources[0].Digest, ev.EventData.Resources[0].Tag
	}
	return hashKey(ev.Type, fmt.Sprint(ev.OccurAt), ev.EventData.Repository.RepoFullName, d, tag)
}
