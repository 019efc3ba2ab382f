package notify

import (
	"fmt"
	"time"
)

// Kinds of events, as they appear in the JSON payload and in a target's
// events filter.
const (
	KindStarted    = "started"
	KindSwitched   = "switched"
	KindPromoted   = "promoted"
	KindRolledBack = "rolled-back"
	KindAborted    = "aborted"
	KindRefused    = "refused" // serve refused a deploy (policy, signature, source)
)

// Kinds lists every kind, for validation and docs.
var Kinds = []string{KindStarted, KindSwitched, KindPromoted, KindRolledBack, KindAborted, KindRefused}

// Event is one thing that happened to an app. The JSON form is the
// generic webhook's body.
type Event struct {
	Kind      string    `json:"kind"`
	Namespace string    `json:"namespace"`
	App       string    `json:"app"`
	Image     string    `json:"image,omitempty"`    // the version this event is about
	Previous  string    `json:"previous,omitempty"` // the version serving before
	Strategy  string    `json:"strategy,omitempty"`
	Reason    string    `json:"reason,omitempty"` // why: a rollback's cause, a refusal's rule
	By        string    `json:"by,omitempty"`     // who or what started it: a login, a Jenkins build, a Harbor push
	At        time.Time `json:"at"`
	// Source says which tsys-ci sent it: "serve" or "promote".
	Source string `json:"source"`
}

// Title is the one-line summary used as a chat message's first line and
// an e-mail's subject.
func (e Event) Title() string {
	app := e.Namespace + "/" + e.App
	switch e.Kind {
	case KindStarted:
		return fmt.Sprintf("%s: promote of %s started", app, short(e.Image))
	case KindSwitched:
		return fmt.Sprintf("%s: traffic switched to %s", app, short(e.Image))
	case KindPromoted:
		return fmt.Sprintf("%s: %s is live", app, short(e.Image))
	case KindRolledBack:
		return fmt.Sprintf("%s: %s rolled back", app, short(e.Image))
	case KindAborted:
		return fmt.Sprintf("%s: promote of %s aborted", app, short(e.Image))
	case KindRefused:
		return fmt.Sprintf("%s: deploy of %s refused", app, short(e.Image))
	}
	return fmt.Sprintf("%s: %s %s", app, e.Kind, short(e.Image))
}

// Text is the event in a few lines, for chat and e-mail bodies.
func (e Event) Text() string {
	s := e.Title()
	if e.Reason != "" {
		s += "\nreason: " + e.Reason
	}
	if e.Image != "" {
		s += "\nimage: " + e.Image
	}
	if e.Previous != "" {
		s += "\nprevious: " + e.Previous
	}
	if e.Strategy != "" {
		s += "\nstrategy: " + e.Strategy
	}
	if e.By != "" {
		s += "\nby: " + e.By
	}
	return s + "\nat: " + e.At.UTC().Format(time.RFC3339) + " (tsys-ci " + e.Source + ")"
}

// short drops the registry and repository of an image reference and
// shortens a digest, for titles: "shop:v4" or "shop@sha256:1a2b3c4d5e6f".
func short(image string) string {
	name := image
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			name = name[i+1:]
			break
		}
	}
	for i := 0; i+7 < len(name); i++ {
		if name[i:i+8] == "@sha256:" && len(name) > i+8+12 {
			return name[:i+8+12]
		}
	}
	return name
}
