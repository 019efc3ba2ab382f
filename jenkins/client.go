package jenkins

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/bndr/gojenkins"
)

// Client is a connection to one Jenkins controller.
type Client struct {
	j   *gojenkins.Jenkins
	URL string
	// Version is Jenkins' X-Jenkins header (the stand-in's says "stand-in").
	Version string
}

// Connect logs in to Jenkins with a user and API token and checks that the
// user may read it. The http.Client should have a timeout: gojenkins
// ignores contexts.
func Connect(ctx context.Context, hc *http.Client, url, user, token string) (*Client, error) {
	url = strings.TrimRight(url, "/")
	j := gojenkins.CreateJenkins(hc, url, user, token)
	if _, err := j.Init(ctx); err != nil {
		return nil, diagnose(ctx, j, url, user, err)
	}
	return &Client{j: j, URL: url, Version: j.Version}, nil
}

// diagnose turns gojenkins' one "Connection Failed" message into what went
// wrong: Init discards the status code, so ask once more and look at it.
func diagnose(ctx context.Context, j *gojenkins.Jenkins, url, user string, initErr error) error {
	resp, err := j.Requester.GetJSON(ctx, "/", &struct{}{}, nil)
	if err != nil {
		return fmt.Errorf("connecting to Jenkins at %s: %w", url, err)
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("Jenkins at %s rejected the credentials of user %q (HTTP 401): check --user and --token "+
			"(JENKINS_USER, JENKINS_API_TOKEN); make an API token in Jenkins under your user > Security > API Token", url, user)
	case http.StatusForbidden:
		return fmt.Errorf("user %q may not read Jenkins at %s (HTTP 403): it needs Overall/Read, and Job/Create, "+
			"Configure, Delete and Build for seeding and running", user, url)
	case http.StatusOK:
		return fmt.Errorf("connecting to Jenkins at %s: %w", url, initErr)
	default:
		return fmt.Errorf("%s answered HTTP %d to /api/json: is this the Jenkins URL?", url, resp.StatusCode)
	}
}

// split turns "a/b/c" into the parents gojenkins wants and the short name.
func split(full string) (parents []string, name string) {
	parts := strings.Split(full, "/")
	return parts[:len(parts)-1], parts[len(parts)-1]
}

// jenkinsPath is the form gojenkins' UpdateJob, DeleteJob and BuildJob
// take for nested items: "a/job/b/job/c".
func jenkinsPath(full string) string { return strings.ReplaceAll(full, "/", "/job/") }

// errNotFound is what getJob returns for an item Jenkins does not have.
var errNotFound = errors.New("not found")

// getJob fetches an item (job, folder or multibranch project) by full name.
func (c *Client) getJob(ctx context.Context, full string) (*gojenkins.Job, error) {
	parents, name := split(full)
	job, err := c.j.GetJob(ctx, name, parents...)
	if err != nil {
		// gojenkins reports a bare status code as the error text.
		if err.Error() == strconv.Itoa(http.StatusNotFound) {
			return nil, errNotFound
		}
		return nil, fmt.Errorf("reading %s from Jenkins: HTTP %w", full, err)
	}
	return job, nil
}

// config reads an item's config.xml. gojenkins' GetConfig returns the body
// whatever the status (a 403 page would become the "config"), so this asks
// through its requester and checks the status itself.
func (c *Client) config(ctx context.Context, job *gojenkins.Job, full string) ([]byte, error) {
	var body string
	resp, err := c.j.Requester.GetXML(ctx, job.Base+"/config.xml", &body, nil)
	if err != nil {
		return nil, fmt.Errorf("reading config.xml of %s: %w", full, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading config.xml of %s: HTTP %d (the user needs Job/Configure)", full, resp.StatusCode)
	}
	return []byte(body), nil
}

// children lists the items directly in a folder ("" is Jenkins' root).
func (c *Client) children(ctx context.Context, folder string) ([]gojenkins.InnerJob, error) {
	if folder == "" {
		jobs, err := c.j.GetAllJobNames(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing Jenkins' top-level items: %w", err)
		}
		return jobs, nil
	}
	parents, name := split(folder)
	f, err := c.j.GetFolder(ctx, name, parents...)
	if err != nil {
		return nil, fmt.Errorf("listing folder %s: %w", folder, err)
	}
	return f.Raw.Jobs, nil
}

// guard turns a panic inside gojenkins into an error. Its Requester.SetCrumb
// dereferences the crumb response without checking the error, so a Jenkins
// that stops answering between two requests panics every POST.
func guard(what string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: the Jenkins client failed (gojenkins panicked: %v); is Jenkins still answering?", what, r)
	}
}
