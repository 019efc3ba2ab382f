package registry

import (
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ResponseHeaderTimeout bounds how long a registry may take to start
// answering once a request, body included, is sent. go-containerregistry's
// transport has dial and TLS timeouts but none on the answer, and the
// CLI's context has no deadline, so a registry that accepts a request and
// never answers hung a build, push, sign or verify (and a deploy in serve)
// for ever. It does not limit a transfer: a slow blob upload or download
// keeps going. Five minutes leaves room for a registry that finishes a
// large upload by copying it in its storage.
const ResponseHeaderTimeout = 5 * time.Minute

// defaultTransport is what registry calls use when the caller names no
// transport: go-containerregistry's, with ResponseHeaderTimeout.
var defaultTransport = transportWithHeaderTimeout(ResponseHeaderTimeout)

func transportWithHeaderTimeout(d time.Duration) http.RoundTripper {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = d
	return t
}
