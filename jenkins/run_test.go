package jenkins

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/jenkinsstandin"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

const (
	folderXML = `<com.cloudbees.hudson.plugins.folder.Folder/>`
	jobXML    = `<flow-definition><definition class="org.jenkinsci.plugins.workflow.cps.CpsFlowDefinition"><script/></definition></flow-definition>`
	paramsXML = `<flow-definition><properties><hudson.model.ParametersDefinitionProperty><parameterDefinitions><hudson.model.StringParameterDefinition><name>IMAGE</name><defaultValue>none</defaultValue></hudson.model.StringParameterDefinition></parameterDefinitions></hudson.model.ParametersDefinitionProperty></properties></flow-definition>`
)

func create(t *testing.T, c *Client, xml, full string) {
	t.Helper()
	parents, name := split(full)
	var err error
	if len(parents) == 0 {
		_, err = c.j.CreateJob(context.Background(), xml, name)
	} else {
		_, err = c.j.CreateJobInFolder(context.Background(), xml, name, parents...)
	}
	if err != nil {
		t.Fatalf("creating %s in the Jenkins stand-in: %v", full, err)
	}
}

func TestRunFollowsABuildInAFolderToSuccess(t *testing.T) {
	seen := make(chan string, 1)
	_, _, c := standIn(t, jenkinsstandin.Options{Runner: func(b *jenkinsstandin.Build) string {
		seen <- b.Param("IMAGE")
		b.Logf("+ tsys-ci promote whiteboard --image %s\n", b.Param("IMAGE"))
		return "SUCCESS"
	}})
	create(t, c, folderXML, "platform")
	create(t, c, paramsXML, "platform/promote")
	var console, progress testenv.SyncBuffer
	res, err := Run(context.Background(), c, "platform/promote", RunOptions{
		Params: map[string]string{"IMAGE": "harbor.example/web/wb@sha256:ab"}, Poll: 5 * time.Millisecond,
		Console: &console, Progress: &progress,
	})
	if err != nil {
		t.Fatalf("Run against the Jenkins stand-in: %v\nprogress:\n%s", err, progress.String())
	}
	if got := <-seen; got != "harbor.example/web/wb@sha256:ab" {
		t.Errorf("the build saw IMAGE=%q", got)
	}
	if res.Result != "SUCCESS" || res.Number != 1 || !strings.HasSuffix(res.URL, "/job/platform/job/promote/1/") {
		t.Errorf("result = %+v", res)
	}
	want := "Started by user admin\n+ tsys-ci promote whiteboard --image harbor.example/web/wb@sha256:ab\nFinished: SUCCESS\n"
	if console.String() != want {
		t.Errorf("console = %q, want %q", console.String(), want)
	}
	if p := progress.String(); !strings.Contains(p, "Jenkins "+jenkinsstandin.Version+": platform/promote queued as queue item 1") || !strings.Contains(p, "platform/promote #1 finished: SUCCESS") {
		t.Errorf("progress:\n%s", p)
	}
}

func TestRunStreamsTheConsoleAndFailsOnFailure(t *testing.T) {
	lines, done := make(chan string), make(chan string)
	_, _, c := standIn(t, jenkinsstandin.Options{Runner: func(b *jenkinsstandin.Build) string {
		for {
			select {
			case l := <-lines:
				b.Logf("%s", l)
			case r := <-done:
				return r
			}
		}
	}})
	create(t, c, jobXML, "web")
	var console, progress testenv.SyncBuffer
	type ran struct {
		res *RunResult
		err error
	}
	result := make(chan ran, 1)
	go func() {
		res, err := Run(context.Background(), c, "web", RunOptions{Poll: 5 * time.Millisecond, Console: &console, Progress: &progress})
		result <- ran{res, err}
	}()
	lines <- "building...\n"
	testenv.Eventually(t, "the console line reaching Run's output while the build runs", 10*time.Second, func() bool {
		return strings.Contains(console.String(), "building...")
	})
	lines <- "tsys-ci: error: probe http failed\n"
	done <- "FAILURE"
	r := <-result
	if !errors.Is(r.err, ErrBuildFailed) || r.res == nil || r.res.Result != "FAILURE" {
		t.Fatalf("Run of a failing build = %+v, %v", r.res, r.err)
	}
	if !strings.Contains(r.err.Error(), "web #1 finished FAILURE") {
		t.Errorf("error = %v", r.err)
	}
	if !strings.HasSuffix(console.String(), "tsys-ci: error: probe http failed\nFinished: FAILURE\n") {
		t.Errorf("console = %q", console.String())
	}
}

func TestRunCancelledInTheQueue(t *testing.T) {
	s, _, c := standIn(t, jenkinsstandin.Options{QuietPeriod: time.Hour})
	create(t, c, jobXML, "web")
	var console, progress testenv.SyncBuffer
	errc := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), c, "web", RunOptions{Poll: 5 * time.Millisecond, Console: &console, Progress: &progress})
		errc <- err
	}()
	// Cancel only once Run has read the queue item and said why it waits
	// (cancelled earlier, the item's first poll already finds it gone: a
	// CI run saw the progress end at "queued as queue item 1").
	testenv.Eventually(t, "Run saying why the queue item waits", 10*time.Second, func() bool {
		return strings.Contains(progress.String(), "web waiting: In the quiet period.")
	})
	if !s.CancelQueueItem(1) {
		t.Fatal("queue item 1 was not waiting")
	}
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "queue item 1 was cancelled in Jenkins") {
		t.Errorf("Run of a cancelled item: %v", err)
	}
}

func TestRunFollowsAnAlreadyQueuedBuild(t *testing.T) {
	s, _, c := standIn(t, jenkinsstandin.Options{QuietPeriod: time.Hour})
	create(t, c, jobXML, "web")
	job, err := c.getJob(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := job.InvokeSimple(context.Background(), nil); err != nil || id != 1 {
		t.Fatalf("queueing a first build: %d, %v", id, err)
	}
	var console, progress testenv.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := Run(ctx, c, "web", RunOptions{Poll: 5 * time.Millisecond, Console: &console, Progress: &progress})
		errc <- err
	}()
	testenv.Eventually(t, "Run picking up queue item 1", 10*time.Second, func() bool { return strings.Contains(progress.String(), "web queued as queue item 1") })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Run after its context ended: %v", err)
	}
	s.CancelQueueItem(1)
}

func TestRunRefusesMissingJobsAndFolders(t *testing.T) {
	_, _, c := standIn(t, jenkinsstandin.Options{})
	create(t, c, folderXML, "apps")
	var out testenv.SyncBuffer
	if _, err := Run(context.Background(), c, "apps/nope", RunOptions{Console: &out, Progress: &out}); err == nil || !strings.Contains(err.Error(), "job apps/nope is not in Jenkins") {
		t.Errorf("missing job: %v", err)
	}
	if _, err := Run(context.Background(), c, "apps", RunOptions{Console: &out, Progress: &out}); err == nil || !strings.Contains(err.Error(), "apps is a folder, not a job that builds") {
		t.Errorf("folder: %v", err)
	}
}

func TestRunABranchOfASeededMultibranchProject(t *testing.T) {
	s, _, c := standIn(t, jenkinsstandin.Options{})
	var out testenv.SyncBuffer
	if _, err := Seed(context.Background(), c, exampleJobsFile(t), SeedOptions{Out: &out}); err != nil {
		t.Fatalf("seed: %v\n%s", err, out.String())
	}
	if err := s.IndexBranch("apps/whiteboard", "main"); err != nil {
		t.Fatal(err)
	}
	var console, progress testenv.SyncBuffer
	res, err := Run(context.Background(), c, "apps/whiteboard/main", RunOptions{Poll: 5 * time.Millisecond, Console: &console, Progress: &progress})
	if err != nil || res.Result != "SUCCESS" || !strings.Contains(console.String(), "no pipeline is executed for apps/whiteboard/main #1") {
		t.Fatalf("run of a branch job: %+v, %v\n%s%s", res, err, progress.String(), console.String())
	}
	if _, err := Run(context.Background(), c, "apps/whiteboard", RunOptions{Console: &console, Progress: &progress}); err == nil || !strings.Contains(err.Error(), "apps/whiteboard is a multibranch, not a job that builds: name a job in it, e.g. apps/whiteboard/main") {
		t.Errorf("run of the multibranch project itself: %v", err)
	}
	// Seeding again leaves the branch job alone: Jenkins made it, not the file.
	out = testenv.SyncBuffer{}
	if _, err := Seed(context.Background(), c, exampleJobsFile(t), SeedOptions{Out: &out, Prune: true}); err != nil || !strings.Contains(out.String(), "no changes") {
		t.Errorf("seed --prune after indexing: %v\n%s", err, out.String())
	}
}

func TestRunADisabledJob(t *testing.T) {
	_, _, c := standIn(t, jenkinsstandin.Options{})
	create(t, c, `<flow-definition><disabled>true</disabled></flow-definition>`, "off")
	var out testenv.SyncBuffer
	_, err := Run(context.Background(), c, "off", RunOptions{Console: &out, Progress: &out})
	if err == nil || !strings.Contains(err.Error(), "triggering off") || !strings.Contains(err.Error(), "409") {
		t.Errorf("run of a disabled job: %v", err)
	}
}
