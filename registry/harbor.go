package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	v2client "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
)

// Harbor talks to Harbor's v2.0 API through goharbor/go-client.
type Harbor struct {
	URL string // as given, for messages
	// Timeout bounds each API call, answer included (DefaultHarborTimeout
	// from NewHarbor; 0: none). go-client's runtime drops its own 30s
	// timeout as soon as a context is passed, and the CLI's context has no
	// deadline, so without this a Harbor that accepts the connection and
	// never answers hangs a push or a setup for ever.
	Timeout time.Duration
	api     *v2client.HarborAPI
}

// DefaultHarborTimeout is NewHarbor's Timeout: generous for one API call
// (Harbor answers in well under a second when healthy).
const DefaultHarborTimeout = 30 * time.Second

// NewHarbor connects to the Harbor at rawURL (https://harbor.example.com)
// with basic auth. Unlike go-client's NewClientSet it verifies TLS (the
// transport is the caller's; nil means http.DefaultTransport) and it cannot
// lose the /api/v2.0 base path to a trailing slash.
func NewHarbor(rawURL, user, password string, transport http.RoundTripper) (*Harbor, error) {
	u, err := url.Parse(strings.TrimRight(rawURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &UsageError{fmt.Sprintf("Harbor URL %q must look like https://harbor.example.com", rawURL)}
	}
	if transport == nil {
		transport = http.DefaultTransport
	}
	u.Path = strings.TrimSuffix(u.Path, "/api/v2.0") + "/api/v2.0"
	h := &Harbor{URL: rawURL, Timeout: DefaultHarborTimeout}
	h.api = v2client.New(v2client.Config{
		URL: u, Transport: timeoutTransport{next: transport, timeout: &h.Timeout}, AuthInfo: httptransport.BasicAuth(user, password),
	})
	return h, nil
}

// timeoutTransport gives each request *timeout to be answered and read; the
// deadline ends when the answer's body is closed (go-client reads it whole
// before it returns).
type timeoutTransport struct {
	next    http.RoundTripper
	timeout *time.Duration
}

func (t timeoutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if *t.timeout <= 0 {
		return t.next.RoundTrip(req)
	}
	ctx, cancel := context.WithTimeout(req.Context(), *t.timeout)
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("no answer within %s: %w", *t.timeout, err)
		}
		return nil, err
	}
	resp.Body = cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelOnClose releases a request's deadline once its answer is read.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// status digs the HTTP status out of go-client's errors: typed responses
// know theirs (IsCode), undeclared ones come as *runtime.APIError.
func status(err error) int {
	var ae *runtime.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	var c interface{ IsCode(int) bool }
	if errors.As(err, &c) {
		for _, code := range []int{400, 401, 403, 404, 405, 409, 412, 422, 500} {
			if c.IsCode(code) {
				return code
			}
		}
	}
	return 0
}

// fail explains a failed Harbor call: what was being done, Harbor's own
// error message, and what to do.
func (h *Harbor) fail(doing string, err error) error {
	msg := err.Error()
	var p interface{ GetPayload() *models.Errors }
	if errors.As(err, &p) && p.GetPayload() != nil && len(p.GetPayload().Errors) > 0 {
		var parts []string
		for _, e := range p.GetPayload().Errors {
			parts = append(parts, e.Code+": "+e.Message)
		}
		msg = strings.Join(parts, "; ")
	}
	switch status(err) {
	case http.StatusUnauthorized:
		return fmt.Errorf("Harbor %s: %s: not logged in (401: %s); check the Harbor user and password", h.URL, doing, msg)
	case http.StatusForbidden:
		return fmt.Errorf("Harbor %s: %s: forbidden (403: %s); the account lacks the right for this (a robot made before tsys-ci asked for artifact:read needs 'tsys-ci registry setup' again), or, for an account that is not an admin, the project does not exist", h.URL, doing, msg)
	case 0:
		return fmt.Errorf("Harbor %s: %s: %w; check the URL and that Harbor is running", h.URL, doing, err)
	}
	return fmt.Errorf("Harbor %s: %s: %s", h.URL, doing, msg)
}

// ProjectExists asks with HEAD /projects?project_name=, Harbor's clean
// existence check (GET answers 403 for a missing name).
func (h *Harbor) ProjectExists(ctx context.Context, name string) (bool, error) {
	_, err := h.api.Project.HeadProject(ctx, &project.HeadProjectParams{ProjectName: name})
	if err == nil {
		return true, nil
	}
	if status(err) == http.StatusNotFound {
		return false, nil
	}
	return false, h.fail("checking project "+name, err)
}

// EnsureProject creates the project unless it exists; it reports whether it
// created it. A project created at the same moment by someone else (409)
// counts as existing.
func (h *Harbor) EnsureProject(ctx context.Context, name string, public bool) (bool, error) {
	ok, err := h.ProjectExists(ctx, name)
	if err != nil || ok {
		return false, err
	}
	_, err = h.api.Project.CreateProject(ctx, &project.CreateProjectParams{Project: &models.ProjectReq{
		ProjectName: name, Metadata: &models.ProjectMetadata{Public: strconv.FormatBool(public)},
	}})
	if status(err) == http.StatusConflict {
		return false, nil
	}
	if err != nil {
		return false, h.fail("creating project "+name, err)
	}
	return true, nil
}

// project reads a project by name.
func (h *Harbor) project(ctx context.Context, name string) (*models.Project, error) {
	isName := true
	ok, err := h.api.Project.GetProject(ctx, &project.GetProjectParams{ProjectNameOrID: name, XIsResourceName: &isName})
	if err != nil {
		return nil, h.fail("reading project "+name, err)
	}
	return ok.Payload, nil
}

// SignatureShown reports whether Harbor lists a cosign signature accessory
// for the artifact repo@digest (repo is PROJECT/NAME), which is what makes
// Harbor show the image as signed.
func (h *Harbor) SignatureShown(ctx context.Context, repo, digest string) (bool, error) {
	projectName, name, ok := strings.Cut(repo, "/")
	if !ok {
		return false, &UsageError{fmt.Sprintf("repository %q has no project part", repo)}
	}
	with := true
	a, err := h.api.Artifact.GetArtifact(ctx, &artifact.GetArtifactParams{
		ProjectName: projectName, RepositoryName: url.PathEscape(name), Reference: digest, WithAccessory: &with,
	})
	if err != nil {
		return false, h.fail("reading artifact "+repo+"@"+digest, err)
	}
	for _, acc := range a.Payload.Accessories {
		if acc.Type == "signature.cosign" {
			return true, nil
		}
	}
	return false, nil
}
