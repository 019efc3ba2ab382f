package registry

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/robot"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/tsys-group/tsys-ci/test/harborstandin"
)

// These tests run against the Harbor stand-in (test/harborstandin), not a
// real Harbor: none can run on these machines.

func startHarbor(t *testing.T) (*httptest.Server, *Harbor) {
	t.Helper()
	srv := httptest.NewServer(harborstandin.New(harborstandin.Options{}))
	t.Cleanup(srv.Close)
	h, err := NewHarbor(srv.URL, "admin", "Harbor12345", nil)
	if err != nil {
		t.Fatal(err)
	}
	return srv, h
}

func setupOptions() SetupOptions {
	return SetupOptions{Project: "demo", Robot: "ci", WebhookURL: "https://tsys-ci.example:8443/hooks/harbor",
		KeepLatest: 10, RetentionCron: "0 0 3 * * *"}
}

func TestSetupIsIdempotentAgainstHarborStandIn(t *testing.T) {
	_, h := startHarbor(t)
	ctx := context.Background()
	dry := setupOptions()
	dry.DryRun = true
	plan, err := h.Setup(ctx, dry)
	if err != nil {
		t.Fatalf("Harbor stand-in: dry run: %v", err)
	}
	if len(plan.Changes) != 4 || !strings.HasPrefix(plan.Changes[0], "would create project demo") {
		t.Fatalf("Harbor stand-in: dry run on an empty Harbor planned %q", plan.Changes)
	}
	if exists, _ := h.ProjectExists(ctx, "demo"); exists {
		t.Fatal("Harbor stand-in: the dry run created the project")
	}
	first, err := h.Setup(ctx, setupOptions())
	if err != nil {
		t.Fatalf("Harbor stand-in: first setup: %v", err)
	}
	want := []string{"created project demo", "created robot robot$demo+ci", "created webhook policy tsys-ci", "created tag retention"}
	if len(first.Changes) != len(want) {
		t.Fatalf("Harbor stand-in: first setup changed %q, want %d changes", first.Changes, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(first.Changes[i], w) {
			t.Errorf("Harbor stand-in: change %d = %q, want it to start with %q", i, first.Changes[i], w)
		}
	}
	if first.RobotSecret == "" || first.RobotName != "robot$demo+ci" {
		t.Errorf("Harbor stand-in: robot %q secret %q", first.RobotName, first.RobotSecret)
	}
	if !strings.HasPrefix(first.WebhookAuthHeader, "Bearer ") || len(first.WebhookAuthHeader) < 40 {
		t.Fatalf("Harbor stand-in: the webhook's new secret %q", first.WebhookAuthHeader)
	}
	saved := setupOptions()
	saved.WebhookAuthHeader = first.WebhookAuthHeader
	second, err := h.Setup(ctx, saved)
	if err != nil {
		t.Fatalf("Harbor stand-in: second setup: %v", err)
	}
	if len(second.Changes) != 0 || second.RobotSecret != "" {
		t.Fatalf("Harbor stand-in: second setup changed %q (secret %q), want nothing", second.Changes, second.RobotSecret)
	}
	// A changed option changes exactly that.
	o := saved
	o.WebhookURL, o.KeepLatest = "https://tsys-ci.example:9443/hooks/harbor", 5
	third, err := h.Setup(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(third.Changes) != 2 || !strings.HasPrefix(third.Changes[0], "updated webhook policy") || !strings.HasPrefix(third.Changes[1], "updated tag retention") {
		t.Fatalf("Harbor stand-in: third setup changed %q, want the webhook and the retention updated", third.Changes)
	}
	if again, _ := h.Setup(ctx, o); len(again.Changes) != 0 {
		t.Fatalf("Harbor stand-in: repeating the third setup changed %q", again.Changes)
	}
	// A dry run against the set-up project plans exactly the differences.
	dry = saved
	dry.DryRun = true
	plan, err = h.Setup(ctx, dry)
	if err != nil || len(plan.Changes) != 2 || !strings.HasPrefix(plan.Changes[0], "would update webhook policy") || !strings.HasPrefix(plan.Changes[1], "would update tag retention") {
		t.Fatalf("Harbor stand-in: dry run after a change: %q, %v", plan.Changes, err)
	}
	if again, _ := h.Setup(ctx, o); len(again.Changes) != 0 {
		t.Fatalf("Harbor stand-in: the dry run changed something: %q", again.Changes)
	}
}

// Issue 17 finding 1: every project's webhook gets its own secret, kept
// while the caller has it saved, replaced when it is lost; the header a
// caller saved for one project is never given to another.
func TestSetupWebhookSecretPerProject(t *testing.T) {
	_, h := startHarbor(t)
	ctx := context.Background()
	secrets := map[string]string{}
	for _, project := range []string{"demo", "shop"} {
		o := setupOptions()
		o.Project = project
		o.WebhookAuthHeader = "Bearer one-secret-for-all-projects" // an old shared one, not the policy's
		res, err := h.Setup(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.WebhookAuthHeader == "" || res.WebhookAuthHeader == o.WebhookAuthHeader {
			t.Fatalf("Harbor stand-in: project %s's webhook secret %q", project, res.WebhookAuthHeader)
		}
		secrets[project] = res.WebhookAuthHeader
	}
	if secrets["demo"] == secrets["shop"] {
		t.Fatalf("Harbor stand-in: demo and shop share the webhook secret %q", secrets["demo"])
	}
	for project, secret := range secrets {
		o := setupOptions()
		o.Project, o.WebhookAuthHeader = project, secret
		res, err := h.Setup(ctx, o)
		if err != nil || len(res.Changes) != 0 || res.WebhookAuthHeader != "" {
			t.Fatalf("Harbor stand-in: setup of %s with its saved secret: %v %q", project, err, res.Changes)
		}
	}
	// Issue 17 finding 5: an http:// address is warned about.
	plain := setupOptions()
	plain.Project, plain.WebhookURL = "plain", "http://tsys-ci.example/webhook/harbor"
	if res, err := h.Setup(ctx, plain); err != nil || len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "in clear") {
		t.Fatalf("Harbor stand-in: setup with an http:// webhook: %v, warnings %q", err, res.Warnings)
	}
	// The saved secret lost: a new one, and the policy updated with it.
	o := setupOptions()
	res, err := h.Setup(ctx, o)
	if err != nil || res.WebhookAuthHeader == "" || res.WebhookAuthHeader == secrets["demo"] || len(res.Changes) != 1 || !strings.HasPrefix(res.Changes[0], "updated webhook policy") {
		t.Fatalf("Harbor stand-in: setup without the saved secret: %v %q %q", err, res.Changes, res.WebhookAuthHeader)
	}
}

func TestSetupRobotPushesToItsProjectOnly(t *testing.T) {
	srv, h := startHarbor(t)
	ctx := context.Background()
	res, err := h.Setup(ctx, setupOptions())
	if err != nil {
		t.Fatal(err)
	}
	other := setupOptions()
	other.Project, other.WebhookURL, other.KeepLatest = "other", "", 0
	if _, err := h.Setup(ctx, other); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	robot := basicClient(res.RobotName, res.RobotSecret)
	img, _ := random.Image(100, 1)
	sv, _, _, _ := keyPair(t, "pw")
	for _, tc := range []struct {
		repo string
		ok   bool
	}{{"demo/app", true}, {"other/app", false}} {
		repo, _ := ParseRepository(host + "/" + tc.repo)
		tags, _ := ParseTags(repo, []string{"v1"})
		p, err := robot.Push(ctx, img, repo, tags, sv, nopWriter{})
		if tc.ok && err != nil {
			t.Fatalf("Harbor stand-in: robot push to %s: %v", tc.repo, err)
		}
		if !tc.ok {
			if err == nil || !strings.Contains(err.Error(), "refused the credentials") {
				t.Fatalf("Harbor stand-in: robot push to %s: %v, want a refusal", tc.repo, err)
			}
			continue
		}
		// The robot's own login sees Harbor list the cosign signature.
		rh, _ := NewHarbor(srv.URL, res.RobotName, res.RobotSecret, nil)
		shown, err := rh.SignatureShown(ctx, repo.RepositoryStr(), p.Digest.String())
		if err != nil || !shown {
			t.Fatalf("Harbor stand-in: signature shown = %v, %v", shown, err)
		}
		ref, _ := name.NewDigest(p.Ref.String())
		if _, err := robot.Verify(ctx, ref, mustVerifier(t, sv)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSetupErrorsAgainstHarborStandIn(t *testing.T) {
	srv, _ := startHarbor(t)
	ctx := context.Background()
	wrong, _ := NewHarbor(srv.URL, "admin", "wrong", nil)
	if _, err := wrong.Setup(ctx, setupOptions()); err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "password") {
		t.Errorf("Harbor stand-in: setup with a wrong password: %v", err)
	}
	_, h := startHarbor(t)
	bad := setupOptions()
	bad.Project = "Bad_Name"
	if _, err := h.Setup(ctx, bad); !IsUsage(err) {
		t.Errorf("bad project name: %v", err)
	}
	bad = setupOptions()
	bad.WebhookURL = "ftp://x"
	if _, err := h.Setup(ctx, bad); !IsUsage(err) {
		t.Errorf("bad webhook URL: %v", err)
	}
	if _, err := NewHarbor("harbor.example.com", "a", "b", nil); !IsUsage(err) {
		t.Errorf("Harbor URL without scheme: %v", err)
	}
	unreachable, _ := NewHarbor("http://127.0.0.1:1", "admin", "x", nil)
	if _, err := unreachable.Setup(ctx, setupOptions()); err == nil || !strings.Contains(err.Error(), "check the URL") {
		t.Errorf("unreachable Harbor: %v", err)
	}
}

// TestSetupAddsArtifactReadToAnOlderRobot: robots made before tsys-ci asked
// for artifact:read cannot read the pushed artifact on a real Harbor v2.12
// (403), so setup updates them, keeping their secret.
func TestSetupAddsArtifactReadToAnOlderRobot(t *testing.T) {
	_, h := startHarbor(t)
	ctx := context.Background()
	o := setupOptions()
	o.WebhookURL, o.KeepLatest = "", 0
	if _, err := h.EnsureProject(ctx, "demo", false); err != nil {
		t.Fatal(err)
	}
	old := robotPermissions("demo")
	old[0].Access = old[0].Access[:3] // pull, push, artifact list: no artifact read
	if _, err := h.api.Robot.CreateRobot(ctx, &robot.CreateRobotParams{Robot: &models.RobotCreate{
		Name: "ci", Level: "project", Duration: -1, Permissions: old,
	}}); err != nil {
		t.Fatal(err)
	}
	res, err := h.Setup(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 1 || !strings.HasPrefix(res.Changes[0], "updated robot robot$demo+ci") ||
		!strings.Contains(res.Changes[0], "artifact:read") || res.RobotSecret != "" {
		t.Fatalf("Harbor stand-in: setup over an older robot changed %q (secret %q)", res.Changes, res.RobotSecret)
	}
	if again, err := h.Setup(ctx, o); err != nil || len(again.Changes) != 0 {
		t.Fatalf("Harbor stand-in: setup after the update: %q, %v", again.Changes, err)
	}
}

// TestSetupWarnsAboutHarborVersionsWithoutTagEvents: against Harbor v2.11.1
// to v2.12.0 (which send no PUSH_ARTIFACT when an image pushed by digest is
// tagged) setup with a webhook warns that serve will deploy nothing; against
// other versions, and without a webhook, it says nothing.
func TestSetupWarnsAboutHarborVersionsWithoutTagEvents(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		version string
		webhook bool
		warn    bool
	}{
		{"v2.12.0-9da38ae0", true, true},
		{"v2.11.1-abcdef01", true, true},
		{"v2.12.0-9da38ae0", false, false},
		{"v2.11.0-abcdef01", true, false},
		{"v2.12.1-abcdef01", true, false},
		{"v2.13.0-abcdef01", true, false},
		{"dev", true, false},
	} {
		srv := httptest.NewServer(harborstandin.New(harborstandin.Options{HarborVersion: tc.version}))
		h, _ := NewHarbor(srv.URL, "admin", "Harbor12345", nil)
		o := setupOptions()
		if !tc.webhook {
			o.WebhookURL = ""
		}
		res, err := h.Setup(ctx, o)
		srv.Close()
		if err != nil {
			t.Fatalf("Harbor stand-in as %s: %v", tc.version, err)
		}
		warned := len(res.Warnings) == 1 && strings.Contains(res.Warnings[0], "upgrade Harbor to v2.12.1")
		if warned != tc.warn || (!tc.warn && len(res.Warnings) != 0) {
			t.Errorf("Harbor stand-in as %s (webhook %v): warnings %q, want a warning: %v", tc.version, tc.webhook, res.Warnings, tc.warn)
		}
	}
}
