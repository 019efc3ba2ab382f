package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// payload is the body a webhook of the given format receives.
func payload(format string, ev Event) ([]byte, error) {
	switch format {
	case FormatSlack:
		// Slack's (and Mattermost's) incoming webhooks: a text message.
		return json.Marshal(map[string]string{"text": ev.Text()})
	case FormatTeams:
		// Teams' incoming-webhook connector: a MessageCard
		// (https://learn.microsoft.com/outlook/actionable-messages/message-card-reference).
		return json.Marshal(map[string]any{
			"@type": "MessageCard", "@context": "https://schema.org/extensions",
			"summary": ev.Title(), "title": ev.Title(), "themeColor": color(ev.Kind),
			"text": "<pre>" + htmlEscape(ev.Text()) + "</pre>",
		})
	default:
		return json.Marshal(ev)
	}
}

// color marks failures red and successes green in chat cards.
func color(kind string) string {
	switch kind {
	case KindRolledBack, KindAborted, KindRefused:
		return "C62828"
	case KindPromoted, KindSwitched:
		return "2E7D32"
	}
	return "1565C0"
}

func htmlEscape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// postWebhook delivers one event; any answer outside 2xx is an error (and
// is retried), with the start of the receiver's answer to say why.
func postWebhook(ctx context.Context, hc *http.Client, w *Webhook, ev Event) error {
	target := w.URL
	if w.URLFile != "" {
		var err error
		if target, err = readSecretFile("the webhook URL file", w.URLFile); err != nil {
			return err
		}
		if err := checkURL(target); err != nil {
			return fmt.Errorf("webhook URL file %s: %w", w.URLFile, err)
		}
	}
	body, err := payload(w.Format, ev)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", redact(target), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tsys-ci-notify")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", redact(target), unwrapURLError(err))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s answered %s: %q", redact(target), resp.Status, bytes.TrimSpace(answer))
	}
	return nil
}

// unwrapURLError drops net/url's wrapping, which repeats the URL (and
// with it a webhook's token) in the message.
func unwrapURLError(err error) error {
	if u, ok := err.(interface{ Unwrap() error }); ok {
		if inner := u.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
