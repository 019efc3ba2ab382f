package serve

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// A long error is cut to what the API server accepts, and never inside a
// UTF-8 sequence.
func TestEventMessageIsCutAtARuneBoundary(t *testing.T) {
	for pad := range 4 {
		rec := DeployRecord{DeployRequest: DeployRequest{Kind: DeployPromote, Image: "harbor.company.example/web/blog@sha256:" + strings.Repeat("0b", 32),
			By: "webhook", Trigger: "harbor"}, Result: ResultFailed, Error: strings.Repeat("x", pad) + "Prüfung fehlgeschlagen: " + strings.Repeat("ü", 600)}
		msg := eventMessage(rec)
		if len(msg) > maxEventMessage || !utf8.ValidString(msg) || !strings.HasSuffix(msg, "...") {
			t.Fatalf("pad %d: message of %d bytes, valid UTF-8 %v, ends %q; want at most %d valid bytes ending in ...",
				pad, len(msg), utf8.ValidString(msg), msg[len(msg)-5:], maxEventMessage)
		}
	}
	short := eventMessage(DeployRecord{DeployRequest: DeployRequest{Kind: DeployPromote, Image: "r/a@sha256:x", By: "alice", Trigger: "api"},
		Result: ResultSucceeded, Seconds: 3})
	if short != "promote r/a@sha256:x by alice (api): succeeded after 3s" {
		t.Fatalf("short message = %q", short)
	}
}
