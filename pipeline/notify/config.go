package notify

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"strings"
)

// Target is one place events go, with the events it wants. It is the
// same YAML in serve.yaml (notifications:) and in the file `tsys-ci
// promote --notify-config FILE` reads (LoadFile), so a team configures it
// once.
type Target struct {
	// Name identifies the target in logs and metrics.
	Name string `json:"name"`
	// Namespaces and Apps select the events (empty: all). An app is
	// NAME (in any selected namespace) or NAMESPACE/NAME.
	Namespaces []string `json:"namespaces,omitempty"`
	Apps       []string `json:"apps,omitempty"`
	// Events lists the kinds wanted (empty: all): started, switched,
	// promoted, rolled-back, aborted, refused.
	Events []string `json:"events,omitempty"`
	// Exactly one of Webhook and Email.
	Webhook *Webhook `json:"webhook,omitempty"`
	Email   *Email   `json:"email,omitempty"`
}

// Webhook is an HTTP POST of the event.
type Webhook struct {
	// URL, or URLFile holding it: Slack and Teams incoming-webhook URLs
	// carry their token, so keep them in a mounted Secret (URLFile).
	URL     string `json:"url,omitempty"`
	URLFile string `json:"urlFile,omitempty"`
	// Format is json (the Event as JSON, the default), slack ({"text":
	// ...}, what Slack's and Mattermost's incoming webhooks take) or teams
	// (a MessageCard, what Teams' incoming-webhook connector takes).
	Format string `json:"format,omitempty"`
}

// Email is a message over SMTP.
type Email struct {
	// SMTP is HOST:PORT of the company's mail relay.
	SMTP string   `json:"smtp"`
	From string   `json:"from"`
	To   []string `json:"to"`
	// Username and PasswordFile log in (PLAIN, only over TLS); both or
	// neither.
	Username     string `json:"username,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
	// CAFile verifies the relay's certificate (default: the system's).
	CAFile string `json:"caFile,omitempty"`
	// InsecurePlaintext sends without STARTTLS, knowingly (a relay on the
	// same host, a lab). Without it a relay that offers no STARTTLS is
	// refused, since deploy notices name internal hosts and versions.
	InsecurePlaintext bool `json:"insecurePlaintext,omitempty"`
}

// Formats of a webhook.
const (
	FormatJSON  = "json"
	FormatSlack = "slack"
	FormatTeams = "teams"
)

// Validate checks targets; path is where they sit in their file (e.g.
// "notifications"), so messages name the field.
func Validate(path string, targets []Target) error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	names := map[string]bool{}
	for i, t := range targets {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case t.Name == "":
			add("%s.name: required (it names the target in logs and metrics)", p)
		case names[t.Name]:
			add("%s.name: %q is used twice", p, t.Name)
		}
		names[t.Name] = true
		for j, k := range t.Events {
			if !slices.Contains(Kinds, k) {
				add("%s.events[%d]: %q is not an event; known: %s", p, j, k, strings.Join(Kinds, ", "))
			}
		}
		switch {
		case (t.Webhook == nil) == (t.Email == nil):
			add("%s: give exactly one of webhook and email", p)
		case t.Webhook != nil:
			validateWebhook(p+".webhook", t.Webhook, add)
		default:
			validateEmail(p+".email", t.Email, add)
		}
	}
	if len(problems) > 0 {
		return &ConfigError{Problems: problems}
	}
	return nil
}

// ConfigError lists every problem of a notifications configuration.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string {
	return "notifications: " + strings.Join(e.Problems, "; ")
}

// BadInput marks the configuration as the user's to fix (exit 2).
func (e *ConfigError) BadInput() bool { return true }

func validateWebhook(p string, w *Webhook, add func(string, ...any)) {
	switch {
	case (w.URL == "") == (w.URLFile == ""):
		add("%s: give exactly one of url and urlFile", p)
	case w.URL != "":
		if err := checkURL(w.URL); err != nil {
			add("%s.url: %v", p, err)
		}
	}
	switch w.Format {
	case "", FormatJSON, FormatSlack, FormatTeams:
	default:
		add("%s.format: %q; want json, slack or teams", p, w.Format)
	}
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", redact(s))
	}
	return nil
}

// redact keeps a URL's scheme and host only: webhook URLs carry tokens.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + "/..."
}

func validateEmail(p string, e *Email, add func(string, ...any)) {
	if _, _, err := net.SplitHostPort(e.SMTP); err != nil || e.SMTP == "" {
		add("%s.smtp: %q is not HOST:PORT (e.g. mail.company.example:587)", p, e.SMTP)
	}
	if _, err := mail.ParseAddress(e.From); err != nil {
		add("%s.from: %q is not an e-mail address", p, e.From)
	}
	if len(e.To) == 0 {
		add("%s.to: at least one address", p)
	}
	for i, to := range e.To {
		if _, err := mail.ParseAddress(to); err != nil {
			add("%s.to[%d]: %q is not an e-mail address", p, i, to)
		}
	}
	if (e.Username == "") != (e.PasswordFile == "") {
		add("%s: give both username and passwordFile, or neither", p)
	}
	if e.Username != "" && e.InsecurePlaintext {
		add("%s: a password is never sent without TLS; drop insecurePlaintext or the login", p)
	}
}

// wants reports whether t selects ev.
func (t *Target) wants(ev Event) bool {
	if len(t.Events) > 0 && !slices.Contains(t.Events, ev.Kind) {
		return false
	}
	if len(t.Namespaces) > 0 && !slices.Contains(t.Namespaces, ev.Namespace) {
		return false
	}
	if len(t.Apps) > 0 && !slices.Contains(t.Apps, ev.App) && !slices.Contains(t.Apps, ev.Namespace+"/"+ev.App) {
		return false
	}
	return true
}

// readSecretFile reads a one-line secret (a URL, a password), trimmed.
func readSecretFile(what, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", what, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s %s is empty", what, path)
	}
	return s, nil
}
