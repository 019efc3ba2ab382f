package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A Harbor that accepts the connection and never answers must not hang the
// caller whose context has no deadline (the CLI's): go-client drops its own
// timeout when given a context, so NewHarbor's Timeout is all there is.
func TestHarborCallGivesUpOnAHarborThatNeverAnswers(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	h, err := NewHarbor(srv.URL, "admin", "Harbor12345", nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Timeout = 50 * time.Millisecond
	done := make(chan error, 1)
	go func() {
		_, err := h.ProjectExists(context.Background(), "demo")
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("ProjectExists still waits on a silent Harbor after 20s: no timeout applies")
	}
	if err == nil || !strings.Contains(err.Error(), "no answer within 50ms") || !strings.Contains(err.Error(), "checking project demo") {
		t.Fatalf("ProjectExists on a silent Harbor: err = %v, want one naming the call and the timeout", err)
	}
}
