package jenkins

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/test/jenkinsstandin"
)

func seed(t *testing.T, c *Client, f *JobsFile, opts SeedOptions) ([]Change, string) {
	t.Helper()
	var out bytes.Buffer
	opts.Out = &out
	changes, err := Seed(context.Background(), c, f, opts)
	if err != nil {
		t.Fatalf("seeding the Jenkins stand-in: %v\noutput:\n%s", err, out.String())
	}
	return changes, out.String()
}

func actions(changes []Change) map[string]string {
	m := map[string]string{}
	for _, ch := range changes {
		m[ch.Name] = ch.Action
	}
	return m
}

func configOf(t *testing.T, c *Client, name string) string {
	t.Helper()
	job, err := c.getJob(context.Background(), name)
	if err != nil {
		t.Fatalf("Jenkins stand-in has no %s: %v", name, err)
	}
	cfg, err := c.config(context.Background(), job, name)
	if err != nil {
		t.Fatal(err)
	}
	return string(cfg)
}

func TestSeedCreatesThenChangesNothing(t *testing.T) {
	_, _, c := standIn(t, jenkinsstandin.Options{})
	f := exampleJobsFile(t)
	changes, out := seed(t, c, f, SeedOptions{})
	want := map[string]string{"apps": ActionCreate, "platform": ActionCreate, "apps/whiteboard": ActionCreate, "platform/promote": ActionCreate}
	if got := actions(changes); len(got) != len(want) || got["apps/whiteboard"] != ActionCreate || got["platform/promote"] != ActionCreate || got["apps"] != ActionCreate {
		t.Fatalf("first seed of the Jenkins stand-in: %v, want %v\n%s", got, want, out)
	}
	if !strings.Contains(out, "+ create multibranch apps/whiteboard") || !strings.Contains(out, "4 created, 0 updated, 0 deleted") {
		t.Errorf("first seed output:\n%s", out)
	}
	if cfg := configOf(t, c, "apps/whiteboard"); !strings.Contains(cfg, `<source class="org.jenkinsci.plugin.gitea.GiteaSCMSource">`) || !strings.Contains(cfg, "<repository>whiteboard</repository>") {
		t.Errorf("apps/whiteboard in the Jenkins stand-in:\n%s", cfg)
	}
	if cfg := configOf(t, c, "apps"); !strings.Contains(cfg, "<org.jenkinsci.plugins.workflow.libs.FolderLibraries>") {
		t.Errorf("folder apps does not register the shared library:\n%s", cfg)
	}

	changes, out = seed(t, c, f, SeedOptions{})
	for _, ch := range changes {
		if ch.Action != ActionUnchanged {
			t.Errorf("second seed: %s %s, want unchanged; diff:\n%s", ch.Action, ch.Name, ch.Diff)
		}
	}
	if !strings.Contains(out, "no changes: 4 items up to date") {
		t.Errorf("second seed output:\n%s", out)
	}
}

func TestSeedUpdatesAChangedTemplateAndDryRunShowsIt(t *testing.T) {
	_, _, c := standIn(t, jenkinsstandin.Options{})
	seed(t, c, exampleJobsFile(t), SeedOptions{})

	f := exampleJobsFile(t)
	f.Jobs[0].Gitea.Repository = "whiteboard-v2"
	changes, out := seed(t, c, f, SeedOptions{DryRun: true})
	if a := actions(changes); a["apps/whiteboard"] != ActionUpdate || a["apps"] != ActionUnchanged {
		t.Fatalf("dry run: %v\n%s", a, out)
	}
	for _, want := range []string{"~ would update multibranch apps/whiteboard", "dry run, nothing changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	if !diffHas(out, '-', "<repository>whiteboard</repository>") || !diffHas(out, '+', "<repository>whiteboard-v2</repository>") {
		t.Errorf("dry-run diff does not show the repository change:\n%s", out)
	}
	if cfg := configOf(t, c, "apps/whiteboard"); strings.Contains(cfg, "whiteboard-v2") {
		t.Fatalf("--dry-run changed the Jenkins stand-in:\n%s", cfg)
	}

	changes, out = seed(t, c, f, SeedOptions{})
	if a := actions(changes); a["apps/whiteboard"] != ActionUpdate || a["platform/promote"] != ActionUnchanged {
		t.Fatalf("seed after the change: %v\n%s", a, out)
	}
	if cfg := configOf(t, c, "apps/whiteboard"); !strings.Contains(cfg, "<repository>whiteboard-v2</repository>") {
		t.Errorf("apps/whiteboard not updated:\n%s", cfg)
	}
	if _, out = seed(t, c, f, SeedOptions{}); !strings.Contains(out, "no changes") {
		t.Errorf("seed after the update is not idempotent:\n%s", out)
	}
}

// Jenkins re-serialises what it is given: XML 1.1 declaration, plugin
// attributes, defaults for every field. None of that is a change.
func TestSeedIgnoresWhatJenkinsAddsToConfigs(t *testing.T) {
	_, _, c := standIn(t, jenkinsstandin.Options{})
	f := exampleJobsFile(t)
	seed(t, c, f, SeedOptions{})
	items, err := f.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Name != "platform/promote" {
			continue
		}
		cfg := "<?xml version='1.1' encoding='UTF-8'?>\n" + strings.Replace(string(it.Config),
			`<definition class="org.jenkinsci.plugins.workflow.cps.CpsFlowDefinition">`,
			`<actions/><definition class="org.jenkinsci.plugins.workflow.cps.CpsFlowDefinition" plugin="workflow-cps@4043.va_fb_de6a_a_8b_f5">`, 1)
		job, err := c.getJob(context.Background(), it.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := job.UpdateConfig(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	changes, out := seed(t, c, f, SeedOptions{})
	if a := actions(changes); a["platform/promote"] != ActionUnchanged {
		t.Errorf("Jenkins' additions counted as a change: %v\n%s", a, out)
	}
}

func TestSeedReportsExtrasAndPrunesOnlyWhenAsked(t *testing.T) {
	_, _, c := standIn(t, jenkinsstandin.Options{})
	f := exampleJobsFile(t)
	seed(t, c, f, SeedOptions{})
	ctx := context.Background()
	folder := `<com.cloudbees.hudson.plugins.folder.Folder/>`
	job := `<flow-definition><definition class="org.jenkinsci.plugins.workflow.cps.CpsFlowDefinition"><script/></definition></flow-definition>`
	mustCreate := func(xml, name string, parents ...string) {
		t.Helper()
		var err error
		if len(parents) == 0 {
			_, err = c.j.CreateJob(ctx, xml, name)
		} else {
			_, err = c.j.CreateJobInFolder(ctx, xml, name, parents...)
		}
		if err != nil {
			t.Fatalf("creating %s in the Jenkins stand-in: %v", name, err)
		}
	}
	mustCreate(job, "hand-made")
	mustCreate(folder, "legacy")
	mustCreate(job, "old", "legacy")
	mustCreate(job, "stray", "apps")

	changes, out := seed(t, c, f, SeedOptions{})
	a := actions(changes)
	if a["hand-made"] != ActionExtra || a["legacy"] != ActionExtra || a["apps/stray"] != ActionExtra {
		t.Fatalf("extras without --prune: %v\n%s", a, out)
	}
	if _, ok := a["legacy/old"]; ok {
		t.Errorf("an extra folder's children are listed on their own: %v", a)
	}
	if !strings.Contains(out, "! pipeline hand-made is in Jenkins but not in jobs.yaml; kept (--prune deletes it)") || !strings.Contains(out, "no changes: 4 items up to date, 3 not in jobs.yaml") {
		t.Errorf("output without --prune:\n%s", out)
	}
	if _, err := c.getJob(ctx, "legacy/old"); err != nil {
		t.Fatalf("seed without --prune removed legacy/old: %v", err)
	}

	changes, out = seed(t, c, f, SeedOptions{Prune: true, DryRun: true})
	if a := actions(changes); a["legacy"] != ActionDelete {
		t.Fatalf("dry run with --prune: %v\n%s", a, out)
	}
	if _, err := c.getJob(ctx, "legacy"); err != nil {
		t.Fatalf("--dry-run --prune deleted legacy: %v", err)
	}
	_, out = seed(t, c, f, SeedOptions{Prune: true})
	if !strings.Contains(out, "- delete folder legacy") || !strings.Contains(out, "0 created, 0 updated, 3 deleted, 4 unchanged") {
		t.Errorf("--prune output:\n%s", out)
	}
	for _, gone := range []string{"hand-made", "legacy", "legacy/old", "apps/stray"} {
		if _, err := c.getJob(ctx, gone); err != errNotFound {
			t.Errorf("after --prune, %s: %v, want not found", gone, err)
		}
	}
	if _, err := c.getJob(ctx, "apps/whiteboard"); err != nil {
		t.Errorf("--prune removed a declared job: %v", err)
	}
}

func TestSeedWrongCredentialsAndPermissions(t *testing.T) {
	_, hs, _ := standIn(t, jenkinsstandin.Options{})
	_, err := Connect(context.Background(), hs.Client(), hs.URL, "admin", "not-the-token")
	if err == nil || !strings.Contains(err.Error(), `rejected the credentials of user "admin" (HTTP 401)`) || !strings.Contains(err.Error(), "JENKINS_API_TOKEN") {
		t.Errorf("wrong token: %v", err)
	}
	_, err = Connect(context.Background(), hs.Client(), hs.URL+"/nothing-here", "admin", "admin-token")
	if err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("wrong URL: %v", err)
	}
	reader, err := Connect(context.Background(), hs.Client(), hs.URL, "reader", "reader-token")
	if err != nil {
		t.Fatalf("reader: %v", err)
	}
	var out bytes.Buffer
	_, err = Seed(context.Background(), reader, exampleJobsFile(t), SeedOptions{Out: &out})
	if err == nil || !strings.Contains(err.Error(), "creating folder apps in Jenkins: HTTP 403") {
		t.Errorf("seeding as a reader: %v", err)
	}
}

func TestSeedRefusesToChangeAnItemsType(t *testing.T) {
	_, _, c := standIn(t, jenkinsstandin.Options{})
	job := `<flow-definition><definition class="org.jenkinsci.plugins.workflow.cps.CpsFlowDefinition"><script/></definition></flow-definition>`
	if _, err := c.j.CreateJob(context.Background(), job, "apps"); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err := Seed(context.Background(), c, exampleJobsFile(t), SeedOptions{Out: &out})
	if err == nil || !strings.Contains(err.Error(), "apps is a org.jenkinsci.plugins.workflow.job.WorkflowJob in Jenkins but jobs.yaml declares a folder") {
		t.Errorf("type clash: %v", err)
	}
}

// diffHas reports whether a diff has a line marked mark whose content is text.
func diffHas(diff string, mark byte, text string) bool {
	for _, l := range strings.Split(diff, "\n") {
		l = strings.TrimSpace(l)
		if len(l) > 2 && l[0] == mark && l[1] == ' ' && strings.TrimSpace(l[2:]) == text {
			return true
		}
	}
	return false
}

// A Jenkins that stops answering mid-seed is an error, not a crash:
// gojenkins dereferences a failed crumb request.
func TestSeedSurvivesJenkinsDroppingConnections(t *testing.T) {
	s := jenkinsstandin.New(jenkinsstandin.Options{Users: []jenkinsstandin.User{{Name: "admin", Tokens: []string{"t"}, Permissions: jenkinsstandin.PermAll}}})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/crumbIssuer") {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { hs.Close(); s.Close() })
	c, err := Connect(context.Background(), hs.Client(), hs.URL, "admin", "t")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = Seed(context.Background(), c, exampleJobsFile(t), SeedOptions{Out: &out})
	if err == nil || !strings.Contains(err.Error(), "create apps: the Jenkins client failed") {
		t.Errorf("seed against a Jenkins that drops the crumb request: %v", err)
	}
}
