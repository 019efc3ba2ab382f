package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// A registry that accepts a request and never answers fails the call instead
// of hanging it, through go-containerregistry's wrapping of the transport
// (here with a 50ms limit; Client's default transport has the same limit
// at ResponseHeaderTimeout, which a test cannot wait for).
func TestRegistryCallGivesUpOnARegistryThatNeverAnswers(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/demo/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	c := Client{Transport: transportWithHeaderTimeout(50 * time.Millisecond)}
	done := make(chan error, 1)
	go func() {
		_, err := c.Resolve(context.Background(), ref)
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("resolving on a silent registry still waits after 60s: no timeout applies")
	}
	if err == nil || !strings.Contains(err.Error(), "timeout awaiting response headers") {
		t.Fatalf("resolving on a silent registry: err = %v, want a timeout awaiting response headers", err)
	}
}
