package harborstandin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// These tests check the Harbor stand-in on its own against the behaviour a
// real Harbor v2.12.0 showed (docs/harbor-standin.md).

type client struct {
	t    *testing.T
	base string
	user string
	pass string
}

func start(t *testing.T) (*Server, *client) {
	t.Helper()
	s := New(Options{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, &client{t: t, base: srv.URL, user: "admin", pass: "Harbor12345"}
}

func (c *client) as(user, pass string) *client {
	return &client{t: c.t, base: c.base, user: user, pass: pass}
}

// do sends a request to /api/v2.0 and returns the response and its body.
func (c *client) do(method, path string, body any) (*http.Response, []byte) {
	c.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = strings.NewReader(string(j))
	}
	req, _ := http.NewRequest(method, c.base+"/api/v2.0"+path, r)
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// expectError checks Harbor's error shape: status, JSON content type, code.
func expectError(t *testing.T, what string, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("Harbor stand-in: %s: status %d, want %d (%s)", what, resp.StatusCode, status, body)
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Harbor stand-in: %s: Content-Type %q", what, ct)
	}
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Code != code || e.Errors[0].Message == "" {
		t.Errorf("Harbor stand-in: %s: body %s, want {\"errors\":[{\"code\":%q,...}]}", what, body, code)
	}
}

func TestHarborStandInProjects(t *testing.T) {
	_, c := start(t)
	demo := map[string]any{"project_name": "demo", "metadata": map[string]string{"public": "false"}}

	resp, body := c.as("", "").do("POST", "/projects", demo)
	expectError(t, "create without auth", resp, body, 401, "UNAUTHORIZED")
	resp, body = c.as("admin", "wrong").do("POST", "/projects", demo)
	expectError(t, "create with a bad password (anonymous, as in Harbor)", resp, body, 401, "UNAUTHORIZED")

	resp, body = c.do("POST", "/projects", demo)
	if resp.StatusCode != 201 || len(body) != 0 || !strings.HasPrefix(resp.Header.Get("Location"), "/api/v2.0/projects/") {
		t.Fatalf("Harbor stand-in: create project: %d, Location %q, body %q", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("Harbor stand-in: no X-Request-Id")
	}
	resp, body = c.do("POST", "/projects", demo)
	expectError(t, "duplicate project", resp, body, 409, "CONFLICT")
	if !strings.Contains(string(body), "The project named demo already exists") {
		t.Errorf("Harbor stand-in: duplicate message %s", body)
	}
	resp, body = c.do("POST", "/projects", map[string]any{"project_name": "Bad Name"})
	expectError(t, "bad project name", resp, body, 400, "BAD_REQUEST")
	resp, body = c.do("POST", "/projects", "{broken")
	expectError(t, "broken JSON", resp, body, 422, "UNPROCESSABLE_ENTITY")

	if resp, _ := c.do("HEAD", "/projects?project_name=demo", nil); resp.StatusCode != 200 {
		t.Errorf("Harbor stand-in: HEAD existing project: %d", resp.StatusCode)
	}
	if resp, _ := c.do("HEAD", "/projects?project_name=nope", nil); resp.StatusCode != 404 {
		t.Errorf("Harbor stand-in: HEAD missing project: %d", resp.StatusCode)
	}
	resp, body = c.do("GET", "/projects/demo", nil)
	var p struct {
		ProjectID int64             `json:"project_id"`
		Name      string            `json:"name"`
		Metadata  map[string]string `json:"metadata"`
	}
	if json.Unmarshal(body, &p); resp.StatusCode != 200 || p.Name != "demo" || p.Metadata["public"] != "false" {
		t.Errorf("Harbor stand-in: GET project: %d %s", resp.StatusCode, body)
	}
	resp, body = c.do("GET", "/projects/nope", nil)
	expectError(t, "missing project by name (404 for the admin since v2.7; v2.6.2 said 403)", resp, body, 404, "NOT_FOUND")
	resp, body = c.do("GET", "/projects/9999", nil)
	expectError(t, "missing project by id", resp, body, 404, "NOT_FOUND")
	resp, body = c.do("PATCH", "/projects/demo", "{}")
	expectError(t, "unsupported method", resp, body, 405, "METHOD_NOT_ALLOWED")
	if !strings.Contains(string(body), "method PATCH is not allowed, but [") {
		t.Errorf("Harbor stand-in: 405 message %s", body)
	}

	// Lists: X-Total-Count always, Link only when there is another page.
	for _, n := range []string{"a1", "a2", "a3"} {
		c.do("POST", "/projects", map[string]any{"project_name": n})
	}
	// Five with "library", the public project every Harbor starts with.
	resp, _ = c.do("GET", "/projects?page_size=2", nil)
	if resp.Header.Get("X-Total-Count") != "5" || !strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
		t.Errorf("Harbor stand-in: list headers %v", resp.Header)
	}
	resp, body = c.do("GET", "/projects?q=name%3Ddemo", nil)
	if resp.Header.Get("X-Total-Count") != "1" || resp.Header.Get("Link") != "" || !strings.Contains(string(body), `"demo"`) {
		t.Errorf("Harbor stand-in: exact name query: %v %s", resp.Header, body)
	}
	resp, body = c.do("GET", "/projects?page_size=101", nil)
	expectError(t, "page_size over 100", resp, body, 422, "UNPROCESSABLE_ENTITY")
	// Anonymous users see public projects only: "library" here.
	resp, body = c.as("", "").do("GET", "/projects", nil)
	var names []struct{ Name string }
	if json.Unmarshal(body, &names); resp.StatusCode != 200 || len(names) != 1 || names[0].Name != "library" {
		t.Errorf("Harbor stand-in: anonymous list: %d %s", resp.StatusCode, body)
	}
	resp, body = c.as("", "").do("GET", "/projects/library", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"current_user_role_ids":null`) {
		t.Errorf("Harbor stand-in: anonymous GET of the public project: %d %s", resp.StatusCode, body)
	}
	resp, body = c.as("", "").do("GET", "/projects/demo", nil)
	expectError(t, "anonymous GET of a private project", resp, body, 401, "UNAUTHORIZED")
}

func createProject(t *testing.T, c *client, name string) {
	t.Helper()
	if resp, body := c.do("POST", "/projects", map[string]any{"project_name": name}); resp.StatusCode != 201 {
		t.Fatalf("Harbor stand-in: create %s: %d %s", name, resp.StatusCode, body)
	}
}

func pushRobot(project string) map[string]any {
	return map[string]any{
		"name": "ci", "level": "project", "duration": -1,
		"permissions": []any{map[string]any{"kind": "project", "namespace": project, "access": []any{
			map[string]string{"resource": "repository", "action": "push"},
			map[string]string{"resource": "artifact", "action": "list"},
		}}},
	}
}

func TestHarborStandInRobots(t *testing.T) {
	_, c := start(t)
	createProject(t, c, "demo")
	resp, body := c.do("POST", "/robots", pushRobot("demo"))
	var created struct {
		ID        int64  `json:"id"`
		Name      string `json:"name"`
		Secret    string `json:"secret"`
		ExpiresAt int64  `json:"expires_at"`
	}
	json.Unmarshal(body, &created)
	if resp.StatusCode != 201 || created.Name != "robot$demo+ci" || created.Secret == "" || created.ExpiresAt != -1 ||
		resp.Header.Get("Location") == "" {
		t.Fatalf("Harbor stand-in: create robot: %d %s", resp.StatusCode, body)
	}
	resp, body = c.do("POST", "/robots", pushRobot("demo"))
	expectError(t, "duplicate robot", resp, body, 409, "CONFLICT")
	if !strings.Contains(string(body), "robot account 2:demo+ci already exists") {
		t.Errorf("Harbor stand-in: duplicate robot message %s", body)
	}
	resp, body = c.do("POST", "/robots", pushRobot("nope"))
	expectError(t, "project robot for a missing project (v2.6.2 said 403)", resp, body, 404, "NOT_FOUND")
	zero := pushRobot("demo")
	zero["name"], zero["duration"] = "zero", 0
	resp, body = c.do("POST", "/robots", zero)
	expectError(t, "robot with duration 0 (v2.6.2 took it as 30 days)", resp, body, 400, "BAD_REQUEST")
	empty := pushRobot("demo")
	empty["name"], empty["permissions"] = "other", []any{}
	resp, body = c.do("POST", "/robots", empty)
	expectError(t, "robot without permissions", resp, body, 400, "BAD_REQUEST")
	bad := pushRobot("demo")
	bad["name"] = "has+plus"
	resp, body = c.do("POST", "/robots", bad)
	expectError(t, "robot name with +", resp, body, 400, "BAD_REQUEST")

	// GET /robots lists system robots only; a project's need the q filter.
	resp, body = c.do("GET", "/robots", nil)
	if strings.TrimSpace(string(body)) != "[]" || resp.Header.Get("X-Total-Count") != "0" {
		t.Errorf("Harbor stand-in: system robot list: %s", body)
	}
	_, body = c.do("GET", "/projects/demo", nil)
	var p struct {
		ID int64 `json:"project_id"`
	}
	json.Unmarshal(body, &p)
	_, body = c.do("GET", "/robots?q=Level%3Dproject%2CProjectID%3D"+itoa(p.ID), nil)
	if !strings.Contains(string(body), `"robot$demo+ci"`) || strings.Contains(string(body), created.Secret) {
		t.Errorf("Harbor stand-in: project robot list (must not show the secret): %s", body)
	}
	// The robot logs in to the API, but may not create projects, read the
	// project itself (it has no project:read) or list robots; it may ask
	// whether its project exists, and lists it.
	robot := c.as("robot$demo+ci", created.Secret)
	resp, body = robot.do("POST", "/projects", map[string]any{"project_name": "x"})
	expectError(t, "project robot creating a project", resp, body, 403, "FORBIDDEN")
	if !strings.Contains(string(body), "Only system level robot can create project") {
		t.Errorf("Harbor stand-in: robot create project message %s", body)
	}
	resp, body = robot.do("GET", "/projects/demo", nil)
	expectError(t, "push robot reading its project", resp, body, 403, "FORBIDDEN")
	resp, body = robot.do("GET", "/projects/nope", nil)
	expectError(t, "robot reading a missing project", resp, body, 403, "FORBIDDEN")
	resp, body = robot.do("GET", "/robots", nil)
	expectError(t, "robot listing robots", resp, body, 403, "FORBIDDEN")
	if resp, _ := robot.do("HEAD", "/projects?project_name=demo", nil); resp.StatusCode != 200 {
		t.Errorf("Harbor stand-in: robot HEAD of its project: %d", resp.StatusCode)
	}
	_, body = robot.do("GET", "/projects", nil)
	if !strings.Contains(string(body), `"demo"`) || !strings.Contains(string(body), `"library"`) {
		t.Errorf("Harbor stand-in: robot's project list: %s", body)
	}
	// PUT must repeat level and full name.
	upd := pushRobot("demo")
	resp, body = c.do("PUT", "/robots/"+itoa(created.ID), upd)
	expectError(t, "robot update with the short name", resp, body, 400, "BAD_REQUEST")
	upd["name"] = "robot$demo+ci"
	if resp, body = c.do("PUT", "/robots/"+itoa(created.ID), upd); resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("Harbor stand-in: robot update: %d %s", resp.StatusCode, body)
	}
	if resp, _ = c.do("DELETE", "/robots/"+itoa(created.ID), nil); resp.StatusCode != 200 {
		t.Errorf("Harbor stand-in: robot delete: %d", resp.StatusCode)
	}
	resp, body = c.do("DELETE", "/robots/"+itoa(created.ID), nil)
	expectError(t, "deleting a deleted robot", resp, body, 404, "NOT_FOUND")
}

func TestHarborStandInWebhooksAndRetention(t *testing.T) {
	_, c := start(t)
	createProject(t, c, "demo")
	pol := map[string]any{"name": "tsys-ci", "enabled": true, "event_types": []string{"PUSH_ARTIFACT"},
		"targets": []any{map[string]any{"type": "http", "address": "http://tsys-ci.example:8080/hooks/harbor", "auth_header": "Bearer s3cret"}}}
	resp, body := c.do("POST", "/projects/demo/webhook/policies", pol)
	if resp.StatusCode != 201 || len(body) != 0 || !strings.HasPrefix(resp.Header.Get("Location"), "/api/v2.0/projects/demo/webhook/policies/") {
		t.Fatalf("Harbor stand-in: create policy: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	resp, body = c.do("POST", "/projects/demo/webhook/policies", pol)
	expectError(t, "duplicate policy name", resp, body, 409, "CONFLICT")
	for what, change := range map[string]func(m map[string]any){
		"unknown event type": func(m map[string]any) { m["event_types"] = []string{"PUSHED"} },
		"no event types":     func(m map[string]any) { m["event_types"] = []string{} },
		"no targets":         func(m map[string]any) { m["targets"] = []any{} },
		"ftp address": func(m map[string]any) {
			m["targets"] = []any{map[string]any{"type": "http", "address": "ftp://x"}}
		},
		"chart event (gone since v2.8)": func(m map[string]any) { m["event_types"] = []string{"UPLOAD_CHART"} },
		"unknown payload format": func(m map[string]any) {
			m["targets"] = []any{map[string]any{"type": "http", "address": "http://x/", "payload_format": "Bogus"}}
		},
	} {
		m := map[string]any{}
		for k, v := range pol {
			m[k] = v
		}
		m["name"] = "other"
		change(m)
		resp, body = c.do("POST", "/projects/demo/webhook/policies", m)
		expectError(t, what, resp, body, 400, "BAD_REQUEST")
	}
	resp, body = c.do("GET", "/projects/demo/webhook/policies", nil)
	if resp.Header.Get("X-Total-Count") != "1" || !strings.Contains(string(body), "Bearer s3cret") ||
		!strings.Contains(string(body), `"payload_format":"Default"`) || strings.Contains(string(body), "skip_cert_verify") {
		t.Errorf("Harbor stand-in: policy list (auth header in clear, payload_format Default, no false skip_cert_verify): %s", body)
	}
	resp, body = c.do("GET", "/projects/demo/webhook/events", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"PUSH_ARTIFACT"`) || strings.Contains(string(body), "CHART") {
		t.Errorf("Harbor stand-in: webhook events: %d %s", resp.StatusCode, body)
	}
	resp, body = c.do("GET", "/projects/nope/webhook/policies", nil)
	expectError(t, "policies of a missing project", resp, body, 404, "NOT_FOUND")

	_, body = c.do("GET", "/projects/demo", nil)
	var p struct {
		ID int64 `json:"project_id"`
	}
	json.Unmarshal(body, &p)
	rt := map[string]any{"algorithm": "or", "rules": []any{map[string]any{
		"action": "retain", "template": "latestPushedK", "params": map[string]any{"latestPushedK": 10},
		"tag_selectors":   []any{map[string]string{"kind": "doublestar", "decoration": "matches", "pattern": "**"}},
		"scope_selectors": map[string]any{"repository": []any{map[string]string{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}}},
	}}, "trigger": map[string]any{"kind": "Schedule", "settings": map[string]string{"cron": ""}},
		"scope": map[string]any{"level": "project", "ref": p.ID}}
	resp, body = c.do("POST", "/retentions", rt)
	if resp.StatusCode != 201 || !strings.HasPrefix(resp.Header.Get("Location"), "/api/v2.0/retentions/") {
		t.Fatalf("Harbor stand-in: create retention: %d %s", resp.StatusCode, body)
	}
	_, body = c.do("GET", "/projects/demo", nil)
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/api/v2.0/retentions/")
	if !strings.Contains(string(body), `"retention_id":"`+id+`"`) {
		t.Errorf("Harbor stand-in: project metadata after retention: %s", body)
	}
	resp, body = c.do("POST", "/retentions", rt)
	expectError(t, "second retention policy for a project (400, not 409)", resp, body, 400, "BAD_REQUEST")
	// A schedule gains next_scheduled_time in what GET returns; false
	// "disabled" and rule ids are left out.
	rt["trigger"] = map[string]any{"kind": "Schedule", "settings": map[string]string{"cron": "0 0 3 * * *"}}
	if resp, body = c.do("PUT", "/retentions/"+id, rt); resp.StatusCode != 200 {
		t.Fatalf("Harbor stand-in: update retention: %d %s", resp.StatusCode, body)
	}
	resp, body = c.do("GET", "/retentions/"+id, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"next_scheduled_time":"`) || strings.Contains(string(body), `"disabled"`) {
		t.Errorf("Harbor stand-in: GET retention: %d %s", resp.StatusCode, body)
	}
	resp, body = c.do("GET", "/retentions/9999", nil)
	expectError(t, "missing retention policy (Harbor v2.12.0 answers 500)", resp, body, 500, "UNKNOWN")
}

func TestHarborStandInRegistryRightsSignaturesAndWebhook(t *testing.T) {
	s, c := start(t)
	createProject(t, c, "demo")
	createProject(t, c, "other")
	hooks := make(chan *http.Request, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hooks <- r
	}))
	defer receiver.Close()
	c.do("POST", "/projects/demo/webhook/policies", map[string]any{"name": "tsys-ci", "enabled": true,
		"event_types": []string{"PUSH_ARTIFACT"},
		"targets":     []any{map[string]any{"type": "http", "address": receiver.URL, "auth_header": "Bearer s3cret"}}})
	_, body := c.do("POST", "/robots", pushRobot("demo"))
	var robot struct{ Name, Secret string }
	json.Unmarshal(body, &robot)

	host := strings.TrimPrefix(c.base, "http://")
	auth := remote.WithAuth(&authn.Basic{Username: robot.Name, Password: robot.Secret})
	img, _ := random.Image(100, 1)
	ref, _ := name.ParseReference(host + "/demo/app:v1")
	if err := remote.Write(ref, img, auth); err != nil {
		t.Fatalf("Harbor stand-in: robot push to its project: %v", err)
	}
	otherRef, _ := name.ParseReference(host + "/other/app:v1")
	if err := remote.Write(otherRef, img, auth); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Harbor stand-in: robot push to another project: %v, want 401", err)
	}
	if _, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: robot.Name, Password: "wrong"})); err == nil {
		t.Fatal("Harbor stand-in: pull from a private project with a wrong secret succeeded")
	}

	// A cosign-style signature becomes an accessory and leaves the list.
	d, _ := img.Digest()
	sig := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	sig, _ = mutate.Append(sig, mutate.Addendum{Layer: static.NewLayer([]byte("{}"), "application/vnd.dev.cosign.simplesigning.v1+json")})
	sigRef, _ := name.ParseReference(host + "/demo/app:sha256-" + d.Hex + ".sig")
	if err := remote.Write(sigRef, sig, auth); err != nil {
		t.Fatal(err)
	}
	resp, body := c.do("GET", "/projects/demo/repositories/app/artifacts?with_accessory=true", nil)
	var arts []struct {
		Digest      string `json:"digest"`
		Tags        []struct{ Name string }
		Accessories []struct{ Type, Digest string }
	}
	json.Unmarshal(body, &arts)
	if resp.StatusCode != 200 || resp.Header.Get("X-Total-Count") != "1" || len(arts) != 1 || arts[0].Digest != d.String() ||
		len(arts[0].Accessories) != 1 || arts[0].Accessories[0].Type != "signature.cosign" {
		t.Fatalf("Harbor stand-in: artifacts after signing: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	// A cosign attestation (sha256-<hex>.att, DSSE layers, no OCI subject)
	// is no accessory in Harbor v2.12.0: its cosign middleware links only
	// .sig tags with a simple-signing layer
	// (src/server/middleware/cosign/cosign.go, cosignRe), so the .att is
	// an artifact of its own, tagged, beside the image.
	att := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	att, _ = mutate.Append(att, mutate.Addendum{Layer: static.NewLayer([]byte("{}"), "application/vnd.dsse.envelope.v1+json"),
		Annotations: map[string]string{"predicateType": "https://slsa.dev/provenance/v1", "dev.cosignproject.cosign/signature": ""}})
	attRef, _ := name.ParseReference(host + "/demo/app:sha256-" + d.Hex + ".att")
	if err := remote.Write(attRef, att, auth); err != nil {
		t.Fatal(err)
	}
	resp, body = c.do("GET", "/projects/demo/repositories/app/artifacts?with_accessory=true", nil)
	arts = nil
	json.Unmarshal(body, &arts)
	if resp.StatusCode != 200 || resp.Header.Get("X-Total-Count") != "2" || len(arts) != 2 {
		t.Fatalf("Harbor stand-in: artifacts after an attestation: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	for _, a := range arts {
		switch {
		case a.Digest == d.String() && len(a.Accessories) == 1 && a.Accessories[0].Type == "signature.cosign":
		case a.Digest != d.String() && len(a.Tags) == 1 && a.Tags[0].Name == "sha256-"+d.Hex+".att" && len(a.Accessories) == 0:
		default:
			t.Errorf("Harbor stand-in: after an attestation, artifact %+v", a)
		}
	}
	resp, body = c.do("GET", "/projects/demo/repositories/app/artifacts/v1", nil)
	if resp.StatusCode != 200 || strings.Contains(string(body), "accessories") {
		t.Errorf("Harbor stand-in: artifact by tag (accessories only on request): %d %s", resp.StatusCode, body)
	}
	resp, body = c.do("GET", "/projects/demo/repositories/nope/artifacts", nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-Total-Count") != "0" || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("Harbor stand-in: artifacts of a missing repository: %d %v %s, want 200 []", resp.StatusCode, resp.Header, body)
	}
	resp, body = c.do("GET", "/projects/demo/repositories/nope/artifacts/v1", nil)
	expectError(t, "artifact of a missing repository", resp, body, 404, "NOT_FOUND")
	// The push robot lists artifacts (artifact:list) but may not read one:
	// that takes artifact:read.
	api := c.as(robot.Name, robot.Secret)
	if resp, body = api.do("GET", "/projects/demo/repositories/app/artifacts", nil); resp.StatusCode != 200 {
		t.Errorf("Harbor stand-in: robot with artifact:list lists artifacts: %d %s", resp.StatusCode, body)
	}
	resp, body = api.do("GET", "/projects/demo/repositories/app/artifacts/v1", nil)
	expectError(t, "robot without artifact:read reading an artifact", resp, body, 403, "FORBIDDEN")

	// PUSH_ARTIFACT reached the receiver with the policy's auth header.
	deadline := time.After(10 * time.Second)
	select {
	case r := <-hooks:
		if r.Header.Get("Authorization") != "Bearer s3cret" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("Harbor stand-in: webhook headers %v", r.Header)
		}
	case <-deadline:
		t.Fatal("Harbor stand-in: no webhook delivery within 10 s")
	}
	var payload struct {
		Type      string `json:"type"`
		Operator  string `json:"operator"`
		EventData struct {
			Resources []struct {
				Digest, Tag string
				URL         string `json:"resource_url"`
			} `json:"resources"`
			Repository struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
				FullName  string `json:"repo_full_name"`
			} `json:"repository"`
		} `json:"event_data"`
	}
	// Two pushes (the image by tag, its signature): two deliveries, any order.
	testenv.Eventually(t, "Harbor stand-in: two webhook deliveries", 10*time.Second, func() bool { return len(s.Deliveries()) >= 2 })
	var delivered []byte
	for _, d := range s.Deliveries() {
		if strings.Contains(string(d.Body), `"tag":"v1"`) {
			delivered = d.Body
		}
	}
	json.Unmarshal(delivered, &payload)
	if payload.Type != "PUSH_ARTIFACT" || payload.Operator != "robot$demo+ci" || payload.EventData.Repository.FullName != "demo/app" ||
		payload.EventData.Repository.Name != "app" || len(payload.EventData.Resources) != 1 ||
		payload.EventData.Resources[0].Digest != d.String() {
		t.Errorf("Harbor stand-in: webhook payload %s", delivered)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestHarborStandInRegistryChallengeAndRequestID(t *testing.T) {
	_, c := start(t)
	resp, err := http.Get(c.base + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	host := strings.TrimPrefix(c.base, "http://")
	want := `Bearer realm="http://` + host + `/service/token",service="harbor-registry"`
	if resp.StatusCode != 401 || resp.Header.Get("Www-Authenticate") != want {
		t.Errorf("Harbor stand-in: /v2/ without auth: %d %q, want 401 %q", resp.StatusCode, resp.Header.Get("Www-Authenticate"), want)
	}
	// The token service answers wrong credentials with a token that grants nothing.
	req, _ := http.NewRequest("GET", c.base+"/service/token?service=harbor-registry&scope=repository:demo/app:pull", nil)
	req.SetBasicAuth("admin", "wrong")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 200 || tok.Token == "" {
		t.Fatalf("Harbor stand-in: token with bad credentials: %d %q", resp.StatusCode, tok.Token)
	}
	req, _ = http.NewRequest("GET", c.base+"/v2/demo/app/tags/list", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("Harbor stand-in: a token that grants nothing: %d, want 401", resp.StatusCode)
	}
	// X-Request-Id is echoed, or made up.
	req, _ = http.NewRequest("GET", c.base+"/api/v2.0/ping", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	resp, _ = http.DefaultClient.Do(req)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "abc-123" || string(b) != "Pong" {
		t.Errorf("Harbor stand-in: ping: %q, request id %q", b, resp.Header.Get("X-Request-Id"))
	}
	resp, _ = c.do("GET", "/health", nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("Harbor stand-in: health %d, request id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
}

// TestHarborStandInPushEventsOnTagging: pushing by digest and then tagging
// (what tsys-ci push does) sends PUSH_ARTIFACT for both PUTs, as Harbor up to
// v2.11.0 and from v2.12.1 on do; with PushEventOnCreateOnly only the first,
// untagged one, as on the real Harbor v2.12.0.
func TestHarborStandInPushEventsOnTagging(t *testing.T) {
	for _, onCreate := range []bool{false, true} {
		s := New(Options{PushEventOnCreateOnly: onCreate})
		srv := httptest.NewServer(s)
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		c := &client{t: t, base: srv.URL, user: "admin", pass: "Harbor12345"}
		createProject(t, c, "demo")
		c.do("POST", "/projects/demo/webhook/policies", map[string]any{"name": "tsys-ci", "enabled": true,
			"event_types": []string{"PUSH_ARTIFACT"}, "targets": []any{map[string]any{"type": "http", "address": receiver.URL}}})
		host := strings.TrimPrefix(srv.URL, "http://")
		auth := remote.WithAuth(&authn.Basic{Username: "admin", Password: "Harbor12345"})
		img, _ := random.Image(100, 1)
		d, _ := img.Digest()
		byDigest, _ := name.ParseReference(host + "/demo/app@" + d.String())
		if err := remote.Write(byDigest, img, auth); err != nil {
			t.Fatal(err)
		}
		tag, _ := name.NewTag(host + "/demo/app:v1")
		if err := remote.Tag(tag, img, auth); err != nil {
			t.Fatal(err)
		}
		want := 2
		if onCreate {
			want = 1
		}
		// Deliveries are started before the PUT is answered, and end later.
		s.mu.Lock()
		started := s.sending
		s.mu.Unlock()
		if started != want {
			t.Errorf("Harbor stand-in (PushEventOnCreateOnly=%v): %d deliveries started, want %d", onCreate, started, want)
		}
		testenv.Eventually(t, fmt.Sprintf("Harbor stand-in: %d webhook deliveries", want), 10*time.Second, func() bool { return len(s.Deliveries()) >= want })
		// The tag's event, if any, was sent once the tag's PUT was answered.
		tagged := 0
		for _, dl := range s.Deliveries() {
			if strings.Contains(string(dl.Body), `"tag":"v1"`) {
				tagged++
			}
		}
		if got := len(s.Deliveries()); got != want || tagged != want-1 {
			t.Errorf("Harbor stand-in (PushEventOnCreateOnly=%v): %d deliveries, %d for the tag; want %d, %d", onCreate, got, tagged, want, want-1)
		}
		receiver.Close()
		srv.Close()
	}
}
