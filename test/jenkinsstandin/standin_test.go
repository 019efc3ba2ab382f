package jenkinsstandin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bndr/gojenkins"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

const (
	pipelineXML = `<?xml version='1.1' encoding='UTF-8'?>
<flow-definition><description>d</description><properties/><definition class="org.jenkinsci.plugins.workflow.cps.CpsFlowDefinition"><script>echo 'hi'</script><sandbox>true</sandbox></definition><triggers/><disabled>false</disabled></flow-definition>`
	paramXML  = `<flow-definition><properties><hudson.model.ParametersDefinitionProperty><parameterDefinitions><hudson.model.StringParameterDefinition><name>IMAGE</name><defaultValue>none</defaultValue></hudson.model.StringParameterDefinition></parameterDefinitions></hudson.model.ParametersDefinitionProperty></properties></flow-definition>`
	folderXML = `<com.cloudbees.hudson.plugins.folder.Folder><description>apps</description></com.cloudbees.hudson.plugins.folder.Folder>`
)

// standIn starts a Jenkins stand-in with an admin (password and token), a
// reader with a token, and the given runner.
func standIn(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	opts.Users = append(opts.Users,
		User{Name: "admin", Password: "admin-pw", Tokens: []string{"admin-token"}, Permissions: PermAll},
		User{Name: "reader", Tokens: []string{"reader-token"}, Permissions: PermRead},
	)
	s := New(opts)
	hs := httptest.NewServer(s)
	t.Cleanup(func() { hs.Close(); s.Close() })
	return s, hs
}

type reply struct {
	status int
	header http.Header
	body   string
}

// call sends one request without following redirects.
func call(t *testing.T, method, url, user, secret, contentType, body string, header http.Header) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, secret)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func admin(t *testing.T, method, url, contentType, body string) reply {
	t.Helper()
	return call(t, method, url, "admin", "admin-token", contentType, body, nil)
}

func wantStatus(t *testing.T, what string, r reply, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("Jenkins stand-in: %s: status %d, want %d; headers %v body %q", what, r.status, status, r.header, r.body)
	}
}

func decode(t *testing.T, r reply) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("Jenkins stand-in: decoding %q: %v", r.body, err)
	}
	return m
}

func TestJenkinsStandInAuthentication(t *testing.T) {
	_, hs := standIn(t, Options{})
	r := call(t, "GET", hs.URL+"/api/json", "", "", "", "", nil)
	wantStatus(t, "anonymous", r, 403)
	if r.header.Get("X-You-Are-Authenticated-As") != "anonymous" {
		t.Errorf("anonymous 403 lacks X-You-Are-Authenticated-As: %v", r.header)
	}
	r = call(t, "GET", hs.URL+"/job/x/api/json", "admin", "wrong", "", "", nil)
	wantStatus(t, "wrong password on any URL", r, 401)
	if got := r.header.Get("WWW-Authenticate"); got != `Basic realm="Jenkins"` {
		t.Errorf("401 WWW-Authenticate = %q", got)
	}
	r = call(t, "GET", hs.URL+"/api/json", "nobody", "x", "", "", nil)
	wantStatus(t, "unknown user", r, 401)
	r = admin(t, "GET", hs.URL+"/api/json", "", "")
	wantStatus(t, "token", r, 200)
	if r.header.Get("X-Jenkins") != Version || !strings.Contains(Version, "stand-in") {
		t.Errorf("X-Jenkins = %q, want %q naming the stand-in", r.header.Get("X-Jenkins"), Version)
	}
	r = call(t, "POST", hs.URL+"/createItem?name=a", "reader", "reader-token", "application/xml", folderXML, nil)
	wantStatus(t, "reader creating", r, 403)
	if got := r.header.Get("X-Required-Permission"); got != "hudson.model.Item.Create" {
		t.Errorf("X-Required-Permission = %q", got)
	}
}

func TestJenkinsStandInCrumbs(t *testing.T) {
	_, hs := standIn(t, Options{})
	create := func(name string, h http.Header) reply {
		return call(t, "POST", hs.URL+"/createItem?name="+name, "admin", "admin-pw", "application/xml", folderXML, h)
	}
	r := create("a", nil)
	wantStatus(t, "password POST without crumb", r, 403)
	if !strings.Contains(r.body, "No valid crumb was included in the request") {
		t.Errorf("crumb 403 body = %q", r.body)
	}
	// gojenkins' doubled path must work, as Stapler ignores leftover tokens.
	cr := call(t, "GET", hs.URL+"/crumbIssuer/api/json/api/json", "admin", "admin-pw", "", "", nil)
	wantStatus(t, "crumb", cr, 200)
	crumb := decode(t, cr)
	if crumb["crumbRequestField"] != "Jenkins-Crumb" || crumb["crumb"] == "" {
		t.Fatalf("crumb JSON = %v", crumb)
	}
	cookie := cr.header.Get("Set-Cookie")
	if !strings.HasPrefix(cookie, "JSESSIONID.") {
		t.Fatalf("crumb issuer set no session cookie: %q", cookie)
	}
	r = create("a", http.Header{"Jenkins-Crumb": {crumb["crumb"].(string)}})
	wantStatus(t, "crumb without its session", r, 403)
	// gojenkins copies Set-Cookie raw, attributes and all.
	r = create("a", http.Header{"Jenkins-Crumb": {crumb["crumb"].(string)}, "Cookie": {cookie}})
	wantStatus(t, "crumb with session", r, 200)
	r = create("b", http.Header{"Jenkins-Crumb": {"0000"}, "Cookie": {cookie}})
	wantStatus(t, "wrong crumb", r, 403)
	r = admin(t, "POST", hs.URL+"/createItem?name=b", "application/xml", folderXML)
	wantStatus(t, "API token without crumb", r, 200)
}

func TestJenkinsStandInCreateItem(t *testing.T) {
	_, hs := standIn(t, Options{})
	r := admin(t, "POST", hs.URL+"/createItem?name=apps", "application/xml", folderXML)
	wantStatus(t, "folder", r, 200)
	if r.body != "" {
		t.Errorf("createItem body = %q, want empty", r.body)
	}
	wantStatus(t, "job in folder", admin(t, "POST", hs.URL+"/job/apps/createItem?name=web", "application/xml", pipelineXML), 200)

	r = admin(t, "POST", hs.URL+"/job/apps/createItem?name=WEB", "application/xml", pipelineXML)
	wantStatus(t, "duplicate, other case", r, 400)
	if got := r.header.Get("X-Error"); got != "A job already exists with the name ‘WEB’" {
		t.Errorf("duplicate X-Error = %q", got)
	}
	for _, bad := range []string{"a%3Fb", "x.", "..", ""} {
		r = admin(t, "POST", hs.URL+"/createItem?name="+bad, "application/xml", folderXML)
		wantStatus(t, "bad name "+bad, r, 400)
		if r.header.Get("X-Error") == "" {
			t.Errorf("bad name %q: no X-Error", bad)
		}
	}
	wantStatus(t, "malformed XML", admin(t, "POST", hs.URL+"/createItem?name=m", "application/xml", "<flow-definition>"), 500)
	wantStatus(t, "unknown root", admin(t, "POST", hs.URL+"/createItem?name=u", "application/xml", "<no.such.Item/>"), 500)
	wantStatus(t, "missing parent", admin(t, "POST", hs.URL+"/job/nope/createItem?name=x", "application/xml", pipelineXML), 404)
	wantStatus(t, "under a pipeline", admin(t, "POST", hs.URL+"/job/apps/job/web/createItem?name=x", "application/xml", pipelineXML), 404)
	wantStatus(t, "GET createItem", admin(t, "GET", hs.URL+"/createItem?name=x", "", ""), 405)

	r = admin(t, "POST", hs.URL+"/job/apps/createItem?name=sub&mode=com.cloudbees.hudson.plugins.folder.Folder", "application/x-www-form-urlencoded", "")
	wantStatus(t, "folder by mode", r, 302)
	if loc := r.header.Get("Location"); loc != hs.URL+"/job/apps/job/sub/configure" {
		t.Errorf("folder by mode Location = %q", loc)
	}

	m := decode(t, admin(t, "GET", hs.URL+"/job/APPS/api/json", "", ""))
	if m["_class"] != folderClass || m["url"] != hs.URL+"/job/apps/" || m["description"] != "apps" {
		t.Errorf("folder JSON = %v", m)
	}
	jobs := m["jobs"].([]any)
	if len(jobs) != 2 || jobs[0].(map[string]any)["name"] != "web" || jobs[0].(map[string]any)["color"] != "notbuilt" {
		t.Errorf("folder jobs = %v", jobs)
	}
}

func TestJenkinsStandInConfigAndDelete(t *testing.T) {
	_, hs := standIn(t, Options{})
	wantStatus(t, "folder", admin(t, "POST", hs.URL+"/createItem?name=apps", "application/xml", folderXML), 200)
	wantStatus(t, "job", admin(t, "POST", hs.URL+"/job/apps/createItem?name=web", "application/xml", pipelineXML), 200)

	r := admin(t, "GET", hs.URL+"/job/apps/job/web/config.xml/", "", "")
	wantStatus(t, "config.xml/", r, 200)
	if !strings.HasPrefix(r.body, "<?xml version='1.1' encoding='UTF-8'?>\n<flow-definition>") || r.header.Get("Content-Type") != "application/xml" {
		t.Errorf("config.xml = %q (%s)", r.body, r.header.Get("Content-Type"))
	}
	changed := strings.Replace(pipelineXML, "echo 'hi'", "echo 'bye'", 1)
	wantStatus(t, "update", admin(t, "POST", hs.URL+"/job/apps/job/web/config.xml", "application/xml", changed), 200)
	if r := admin(t, "GET", hs.URL+"/job/apps/job/web/config.xml", "", ""); !strings.Contains(r.body, "bye") {
		t.Errorf("config after update = %q", r.body)
	}
	wantStatus(t, "change of type", admin(t, "POST", hs.URL+"/job/apps/job/web/config.xml", "application/xml", folderXML), 500)
	wantStatus(t, "malformed update", admin(t, "POST", hs.URL+"/job/apps/job/web/config.xml", "application/xml", "<flow-definition"), 500)
	wantStatus(t, "reader reads config", call(t, "GET", hs.URL+"/job/apps/job/web/config.xml", "reader", "reader-token", "", "", nil), 403)

	wantStatus(t, "GET doDelete", admin(t, "GET", hs.URL+"/job/apps/doDelete", "", ""), 405)
	r = admin(t, "POST", hs.URL+"/job/apps/job/web/doDelete", "", "")
	wantStatus(t, "delete job", r, 302)
	if loc := r.header.Get("Location"); loc != hs.URL+"/job/apps/" {
		t.Errorf("delete Location = %q, want the parent", loc)
	}
	wantStatus(t, "deleted job", admin(t, "GET", hs.URL+"/job/apps/job/web/api/json", "", ""), 404)
	wantStatus(t, "job again", admin(t, "POST", hs.URL+"/job/apps/createItem?name=web", "application/xml", pipelineXML), 200)
	r = admin(t, "POST", hs.URL+"/job/apps/doDelete", "", "")
	wantStatus(t, "delete folder", r, 302)
	if loc := r.header.Get("Location"); loc != hs.URL+"/" {
		t.Errorf("folder delete Location = %q", loc)
	}
	wantStatus(t, "recursively deleted", admin(t, "GET", hs.URL+"/job/apps/job/web/api/json", "", ""), 404)
}

// gate is a runner the test steps through: each value sent on lines is
// logged, and the build ends with the result sent on done.
type gate struct {
	lines chan string
	done  chan string
}

func newGate() *gate { return &gate{lines: make(chan string), done: make(chan string)} }

func (g *gate) run(b *Build) string {
	for {
		select {
		case l := <-g.lines:
			b.Logf("%s", l)
		case r := <-g.done:
			return r
		}
	}
}

func TestJenkinsStandInBuildQueueConsole(t *testing.T) {
	g := newGate()
	s, hs := standIn(t, Options{Runner: g.run, QuietPeriod: time.Hour})
	wantStatus(t, "job", admin(t, "POST", hs.URL+"/createItem?name=web", "application/xml", pipelineXML), 200)

	wantStatus(t, "reader builds", call(t, "POST", hs.URL+"/job/web/build", "reader", "reader-token", "", "", nil), 403)
	wantStatus(t, "GET build", admin(t, "GET", hs.URL+"/job/web/build", "", ""), 405)
	wantStatus(t, "buildWithParameters on a plain job", admin(t, "POST", hs.URL+"/job/web/buildWithParameters", "", ""), 400)
	r := admin(t, "POST", hs.URL+"/job/web/build", "", "")
	wantStatus(t, "build", r, 201)
	if loc := r.header.Get("Location"); loc != hs.URL+"/queue/item/1/" || r.body != "" {
		t.Fatalf("build Location = %q body %q", loc, r.body)
	}
	r = admin(t, "POST", hs.URL+"/job/web/build", "", "")
	wantStatus(t, "build while queued", r, 201)
	if loc := r.header.Get("Location"); loc != hs.URL+"/queue/item/1/" {
		t.Errorf("second build Location = %q, want the queued item", loc)
	}
	qi := decode(t, admin(t, "GET", hs.URL+"/queue/item/1/api/json", "", ""))
	if qi["_class"] != "hudson.model.Queue$WaitingItem" || qi["task"].(map[string]any)["name"] != "web" {
		t.Errorf("waiting item = %v", qi)
	}
	if job := decode(t, admin(t, "GET", hs.URL+"/job/web/api/json", "", "")); job["inQueue"] != true {
		t.Errorf("job JSON inQueue = %v", job["inQueue"])
	}

	// The quiet period is an hour; the delay parameter skips it.
	wantStatus(t, "queue listing", admin(t, "GET", hs.URL+"/queue/api/json", "", ""), 200)
	if !s.CancelQueueItem(1) {
		t.Fatal("CancelQueueItem(1) = false")
	}
	qi = decode(t, admin(t, "GET", hs.URL+"/queue/item/1/api/json", "", ""))
	if qi["_class"] != "hudson.model.Queue$LeftItem" || qi["cancelled"] != true || qi["executable"] != nil {
		t.Errorf("cancelled item = %v", qi)
	}
	r = admin(t, "POST", hs.URL+"/job/web/build?delay=0sec", "", "")
	wantStatus(t, "build now", r, 201)
	var exec map[string]any
	testenv.Eventually(t, "Jenkins stand-in: queue item 2 leaving the queue", 10*time.Second, func() bool {
		qi = decode(t, admin(t, "GET", hs.URL+"/queue/item/2/api/json", "", ""))
		exec, _ = qi["executable"].(map[string]any)
		return exec != nil
	})
	if exec["number"] != float64(1) || exec["url"] != hs.URL+"/job/web/1/" || qi["cancelled"] != false {
		t.Fatalf("left item = %v", qi)
	}

	// gojenkins asks for the build at the job URL plus "/1": a double slash.
	b := decode(t, admin(t, "GET", hs.URL+"/job/web//1/api/json?depth=1", "", ""))
	if b["building"] != true || b["result"] != nil || b["queueId"] != float64(2) {
		t.Errorf("running build = %v", b)
	}
	progressive := func(start string) reply {
		return admin(t, "GET", hs.URL+"/job/web//1/logText/progressiveText/?start="+start, "", "")
	}
	r = progressive("0")
	if r.body != "Started by user admin\n" || r.header.Get("X-Text-Size") != "22" || r.header.Get("X-More-Data") != "true" {
		t.Fatalf("first console chunk = %q, headers %v", r.body, r.header)
	}
	g.lines <- "step one\n"
	// The build's goroutine has taken the line once the send returns, but
	// writes it to the console after: wait for it there.
	testenv.Eventually(t, "Jenkins stand-in: the console holding the second line", 10*time.Second, func() bool {
		r = progressive("22")
		return r.header.Get("X-Text-Size") == "31"
	})
	if r.body != "step one\n" || r.header.Get("X-Text-Size") != "31" {
		t.Errorf("second chunk = %q size %s", r.body, r.header.Get("X-Text-Size"))
	}
	if r = progressive("999"); !strings.HasPrefix(r.body, "Started by") {
		t.Errorf("start past the end = %q, want the log from 0", r.body)
	}
	g.done <- "FAILURE"
	testenv.Eventually(t, "Jenkins stand-in: build 1 completing", 10*time.Second, func() bool {
		return decode(t, admin(t, "GET", hs.URL+"/job/web/1/api/json", "", ""))["building"] == false
	})
	b = decode(t, admin(t, "GET", hs.URL+"/job/web/1/api/json", "", ""))
	if b["result"] != "FAILURE" || b["inProgress"] != false {
		t.Errorf("finished build = %v", b)
	}
	r = progressive("31")
	if r.body != "Finished: FAILURE\n" || r.header.Get("X-More-Data") != "" {
		t.Errorf("last chunk = %q, X-More-Data %q", r.body, r.header.Get("X-More-Data"))
	}
	if job := decode(t, admin(t, "GET", hs.URL+"/job/web/api/json", "", "")); job["color"] != "red" || job["nextBuildNumber"] != float64(2) {
		t.Errorf("job after failure: color %v next %v", job["color"], job["nextBuildNumber"])
	}
	r = admin(t, "GET", hs.URL+"/job/web/1/consoleText", "", "")
	if r.body != "Started by user admin\nstep one\nFinished: FAILURE\n" {
		t.Errorf("consoleText = %q", r.body)
	}
}

func TestJenkinsStandInParametersDisabledExpiry(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	seen := make(chan string, 1)
	_, hs := standIn(t, Options{Now: clock, Runner: func(b *Build) string { seen <- b.Param("IMAGE"); return "SUCCESS" }})
	wantStatus(t, "param job", admin(t, "POST", hs.URL+"/createItem?name=p", "application/xml", paramXML), 200)
	job := decode(t, admin(t, "GET", hs.URL+"/job/p/api/json", "", ""))
	if props := job["property"].([]any); len(props) != 1 {
		t.Fatalf("parameter definitions = %v", job["property"])
	}
	wantStatus(t, "plain build of a parameterized job", admin(t, "POST", hs.URL+"/job/p/build", "", ""), 400)
	r := admin(t, "POST", hs.URL+"/job/p/buildWithParameters", "application/x-www-form-urlencoded", "IMAGE=reg/app@sha256:1")
	wantStatus(t, "buildWithParameters", r, 201)
	if got := <-seen; got != "reg/app@sha256:1" {
		t.Errorf("build saw IMAGE=%q", got)
	}
	r = admin(t, "GET", hs.URL+"/queue/item/1/api/json", "", "")
	wantStatus(t, "left item", r, 200)
	mu.Lock()
	now = now.Add(leftItemTTL + time.Second)
	mu.Unlock()
	wantStatus(t, "left item after 5 minutes", admin(t, "GET", hs.URL+"/queue/item/1/api/json", "", ""), 404)

	disabled := strings.Replace(pipelineXML, "<disabled>false</disabled>", "<disabled>true</disabled>", 1)
	wantStatus(t, "disabled job", admin(t, "POST", hs.URL+"/createItem?name=off", "application/xml", disabled), 200)
	wantStatus(t, "build a disabled job", admin(t, "POST", hs.URL+"/job/off/build", "", ""), 409)
}

// TestJenkinsStandInWithGojenkins drives the stand-in through gojenkins with
// a password, so every POST goes through the crumb and session cookie path.
func TestJenkinsStandInWithGojenkins(t *testing.T) {
	_, hs := standIn(t, Options{})
	ctx := context.Background()
	j, err := gojenkins.CreateJenkins(hs.Client(), hs.URL, "admin", "admin-pw").Init(ctx)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	if j.Version != Version {
		t.Errorf("Version = %q", j.Version)
	}
	if _, err := j.CreateJob(ctx, folderXML, "apps"); err != nil {
		t.Fatalf("CreateJob(folder): %v", err)
	}
	if _, err := j.CreateJobInFolder(ctx, pipelineXML, "web", "apps"); err != nil {
		t.Fatalf("CreateJobInFolder: %v", err)
	}
	if _, err := j.CreateJobInFolder(ctx, pipelineXML, "web", "apps"); err == nil || err.Error() != "A job already exists with the name ‘web’" {
		t.Errorf("duplicate CreateJobInFolder error = %v", err)
	}
	if _, err := j.CreateFolder(ctx, "sub", "apps"); err != nil {
		t.Errorf("CreateFolder by mode: %v", err)
	}
	job, err := j.GetJob(ctx, "web", "apps")
	if err != nil {
		t.Fatalf("GetJob: %v", err)
	}
	if err := job.UpdateConfig(ctx, strings.Replace(pipelineXML, "hi", "bye", 1)); err != nil {
		t.Errorf("UpdateConfig: %v", err)
	}
	cfg, err := job.GetConfig(ctx)
	if err != nil || !strings.Contains(cfg, "bye") {
		t.Errorf("GetConfig = %q, %v", cfg, err)
	}
	id, err := job.InvokeSimple(ctx, nil)
	if err != nil || id != 1 {
		t.Fatalf("InvokeSimple = %d, %v", id, err)
	}
	var task *gojenkins.Task
	testenv.Eventually(t, "Jenkins stand-in: the queue item getting a build", 10*time.Second, func() bool {
		task, err = j.GetQueueItem(ctx, id)
		return err == nil && task.Raw.Executable.Number != 0
	})
	build, err := job.GetBuild(ctx, task.Raw.Executable.Number)
	if err != nil {
		t.Fatalf("GetBuild: %v", err)
	}
	testenv.Eventually(t, "Jenkins stand-in: the build finishing", 10*time.Second, func() bool { return !build.IsRunning(ctx) })
	if build.GetResult() != "SUCCESS" {
		t.Errorf("result = %q", build.GetResult())
	}
	console, err := build.GetConsoleOutputFromIndex(ctx, 0)
	if err != nil || console.HasMoreText || !strings.Contains(console.Content, "Jenkins stand-in: no pipeline is executed for apps/web #1") {
		t.Errorf("console = %+v, %v", console, err)
	}
	if ok, err := j.DeleteJob(ctx, "apps/job/web"); !ok || err != nil {
		t.Errorf("DeleteJob = %v, %v", ok, err)
	}
	if _, err := j.GetJob(ctx, "web", "apps"); err == nil || err.Error() != "404" {
		t.Errorf("GetJob after delete: %v", err)
	}
	bad, err := gojenkins.CreateJenkins(hs.Client(), hs.URL, "admin", "nope").Init(ctx)
	if err == nil {
		t.Errorf("Init with a wrong password succeeded: %+v", bad)
	}
}

func TestJenkinsStandInIndexBranch(t *testing.T) {
	s, hs := standIn(t, Options{})
	mb := `<org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject/>`
	wantStatus(t, "multibranch", admin(t, "POST", hs.URL+"/createItem?name=web", "application/xml", mb), 200)
	wantStatus(t, "job", admin(t, "POST", hs.URL+"/createItem?name=plain", "application/xml", pipelineXML), 200)
	if err := s.IndexBranch("plain", "main"); err == nil {
		t.Error("IndexBranch on a pipeline job succeeded")
	}
	if err := s.IndexBranch("web", "main"); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "createItem in a multibranch project", admin(t, "POST", hs.URL+"/job/web/createItem?name=x", "application/xml", pipelineXML), 404)
	m := decode(t, admin(t, "GET", hs.URL+"/job/web/api/json", "", ""))
	jobs := m["jobs"].([]any)
	if m["_class"] != multibranchClass || len(jobs) != 1 || jobs[0].(map[string]any)["name"] != "main" {
		t.Errorf("multibranch JSON = %v", m)
	}
	wantStatus(t, "branch build", admin(t, "POST", hs.URL+"/job/web/job/main/build?delay=0sec", "", ""), 201)
}
