package jenkinsharness

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/tsys-group/tsys-ci/registry"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// logWriter sends console lines to the test log as they come.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newJob(t *testing.T) *Job {
	t.Helper()
	return &Job{
		Groovy:   testenv.LookPath(t, "groovy"),
		Library:  "../../templates/jenkins/shared-library",
		Dir:      t.TempDir(),
		Name:     "apps/harness-test/main",
		AgentEnv: map[string]string{"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME")},
		Env:      map[string]string{"BRANCH_NAME": "main"},
		Console:  logWriter{t},
	}
}

const failingReport = `<?xml version="1.0"?>
<testsuites><testsuite name="probes" tests="2" failures="1">
<testcase name="http /healthz"><failure message="500 after 20 s">500</failure></testcase>
<testcase name="http /"/>
</testsuite></testsuites>`

// TestStepsHaveJenkinsSemantics: sh runs for real with the credentials
// bound (a secret file deleted after its block) and masked in the console,
// junit parses its report and a failed test makes the stage and build
// UNSTABLE without stopping the later stages, error fails its stage and
// skips the rest; a report older than the build fails the junit step.
func TestStepsHaveJenkinsSemantics(t *testing.T) {
	j := newJob(t)
	j.Credentials = map[string]Credential{
		"robot":   {Type: "usernamePassword", Username: "robot$web", Password: "pa'ss word"},
		"keyfile": {Type: "file", FileName: "cosign.key", Content: "PRIVATE KEY BYTES\n"},
		"token":   {Type: "string", Secret: "t0ken-value"},
	}
	if err := os.MkdirAll(j.Workspace(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(j.Workspace(), "report.xml.in"), []byte(failingReport), 0o644); err != nil {
		t.Fatal(err)
	}
	pipeline := `
pipeline {
    agent { label 'tsys-ci' }
    stages {
        stage('Secrets') {
            steps {
                withCredentials([usernamePassword(credentialsId: 'robot', usernameVariable: 'U', passwordVariable: 'P'),
                                 file(credentialsId: 'keyfile', variable: 'F'), string(credentialsId: 'token', variable: 'T')]) {
                    sh 'echo "user=$U pass=$P token=$T file=$F"; grep -q "PRIVATE KEY BYTES" "$F"; echo "$F" >secret-path; echo "$T" >token-copy'
                }
                sh 'test ! -e "$(cat secret-path)" && echo "secret file gone after the block"; echo "token after the block: $(cat token-copy)"'
            }
        }
        stage('Test') {
            steps {
                sh 'cp report.xml.in report.xml'
                junit 'report.xml'
            }
        }
        stage('After unstable') { steps { echo "still running after UNSTABLE on ${env.BRANCH_NAME}" } }
        stage('Fails') { steps { error 'broken on purpose' } }
        stage('Never') { steps { echo 'must not run' } }
    }
}`
	ctx := context.Background()
	r, err := j.Run(ctx, pipeline, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	want := map[string]string{"Secrets": "SUCCESS", "Test": "UNSTABLE", "After unstable": "SUCCESS", "Fails": "FAILURE", "Never": "SKIPPED"}
	for name, st := range want {
		if got := r.Stage(name).Status; got != st {
			t.Errorf("stage %s: %s, want %s", name, got, st)
		}
	}
	if r.Result != "FAILURE" || r.Message != "broken on purpose" {
		t.Errorf("build %s %q, want FAILURE %q", r.Result, r.Message, "broken on purpose")
	}
	for _, s := range []string{"pa'ss word", "t0ken-value", "/secretFiles/"} {
		if strings.Contains(before(r.Console, "+ cat secret-path"), s) {
			t.Errorf("console shows %q inside withCredentials", s)
		}
	}
	for _, s := range []string{"user=robot$web pass=**** token=**** file=****", "Masking supported pattern matches of $P or $F or $T",
		"secret file gone after the block", "token after the block: t0ken-value", "still running after UNSTABLE on main",
		"ERROR: broken on purpose", "Stage \"Never\" skipped due to earlier failure(s)", "Finished: FAILURE", Name[:len("tsys-ci Jenkins pipeline harness")]} {
		if !strings.Contains(r.Console, s) {
			t.Errorf("console lacks %q", s)
		}
	}
	if len(r.Tests) != 1 || r.Tests[0].Total != 2 || r.Tests[0].Failed != 1 || r.Tests[0].Cases[0].Message != "500 after 20 s" || r.Tests[0].Stage != "Test" {
		t.Errorf("published tests = %+v", r.Tests)
	} else if _, err := os.Stat(r.Tests[0].Kept); err != nil {
		t.Errorf("the published report was not kept with the build: %v", err)
	}

	// The next build finds last build's report: Jenkins' junit refuses it.
	r, err = j.Run(ctx, `pipeline { agent { label 'x' }
    stages { stage('Old report') { steps { sh 'touch -d "1 hour ago" report.xml'; junit 'report.xml' } } } }`, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Result != "FAILURE" || !strings.HasPrefix(r.Message, "Test reports were found but none of them are new") || len(r.Tests) != 0 {
		t.Errorf("an old report: %s %q %v", r.Result, r.Message, r.Tests)
	}
}

func before(s, marker string) string {
	if i := strings.Index(s, marker); i >= 0 {
		return s[:i]
	}
	return s
}

// TestAbortSendsSIGTERMChildrenFirst: aborting a build stops its running sh
// as Jenkins does: SIGTERM to the process tree, children first (the child
// hears it before the script), the build ABORTED and no later stage run.
func TestAbortSendsSIGTERMChildrenFirst(t *testing.T) {
	j := newJob(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b, err := j.Start(ctx, `pipeline { agent { label 'x' }
    stages {
        stage('Long') {
            steps {
                sh '''trap 'echo "script got TERM"; exit 143' TERM
sh -c 'trap "echo child got TERM; exit 0" TERM; touch started; while :; do sleep 0.1; done' &
wait $!
echo "child gone, script still running"
while :; do sleep 0.1; done'''
            }
        }
        stage('After') { steps { echo 'must not run' } }
    }
}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	started := filepath.Join(j.Workspace(), "started")
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		select {
		case <-b.Done():
			r, err := b.Wait()
			t.Fatalf("the build ended before its sh started: %v %v", r, err)
		case <-ctx.Done():
			t.Fatal("the sh step did not start within the deadline")
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := b.Abort(); err != nil {
		t.Fatal(err)
	}
	r, err := b.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Result != "ABORTED" || r.Stage("Long").Status != "ABORTED" || r.Stage("After").Status != "SKIPPED" {
		t.Errorf("aborted build: %s", r)
	}
	child, script := strings.Index(r.Console, "\nchild got TERM\n"), strings.Index(r.Console, "\nscript got TERM\n")
	if child < 0 || script < 0 || child > script || !strings.Contains(r.Console, "Sending interrupt signal to process") {
		t.Errorf("want SIGTERM to the child, then the script; console:\n%s", r.Console)
	}
}

var (
	binOnce sync.Once
	bin     string
	binErr  error
)

func tsysCi(t *testing.T) string {
	t.Helper()
	goTool := testenv.LookPath(t, "go")
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jenkinsharness-bin-")
		if err != nil {
			binErr = err
			return
		}
		bin = filepath.Join(dir, "tsys-ci")
		if out, err := exec.Command(goTool, "build", "-o", bin, "../../cmd/tsys-ci").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/tsys-ci: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bin
}

// TestTemplateBuildPushThenPromoteWithoutCluster runs the Jenkinsfile
// template, filled in as an app would, with every sh executed for real:
// tsysBuild and a signed tsysPush to a registry on loopback succeed, and
// tsysPromote gets past its arguments, the spec and the signature and fails
// its stage with tsys-ci's own message about the cluster it cannot reach
// (a kubeconfig naming a closed loopback port). The lab e2e test
// (test/e2e/jenkins_test.go) runs the same path against the lab.
func TestTemplateBuildPushThenPromoteWithoutCluster(t *testing.T) {
	j := newJob(t)
	b := tsysCi(t)
	j.AgentEnv["PATH"] = filepath.Dir(b) + ":" + os.Getenv("PATH")
	// The test registry is on loopback without TLS; tsys-ci sends the
	// robot login tsysPush binds over plain HTTP only when told to.
	j.AgentEnv["TSYS_CI_REGISTRY_INSECURE"] = "true"
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	reg := strings.TrimPrefix(srv.URL, "http://")

	priv, pub, err := registry.GenerateKeyPair([]byte("key-password"))
	if err != nil {
		t.Fatal(err)
	}
	j.Credentials = map[string]Credential{
		"harbor-robot":      {Type: "usernamePassword", Username: "robot$web", Password: "robot-secret"},
		"cosign-key":        {Type: "file", FileName: "cosign.key", Content: string(priv)},
		"cosign-password":   {Type: "string", Secret: "key-password"},
		"cosign-public-key": {Type: "file", FileName: "cosign.pub", Content: string(pub)},
		"kubeconfig": {Type: "file", FileName: "kubeconfig", Content: `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: not-a-token}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`},
	}
	ws := j.Workspace()
	for file, content := range map[string]string{
		"app/index.html": "<h1>hello</h1>\n",
		"tsys-ci.yaml":   "name: site\nnamespace: site\nreplicas: 2\nports:\n  - {name: http, containerPort: 8080, protocol: http, expose: true}\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(ws, file)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ws, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmpl, err := os.ReadFile("../../templates/jenkins/Jenkinsfile")
	if err != nil {
		t.Fatal(err)
	}
	jf, err := AppJenkinsfile(string(tmpl), map[string]string{
		"tsysBuild":   `tsysBuild base: 'scratch', context: 'app', workdir: '/app', ports: ['8080']`,
		"tsysPush":    fmt.Sprintf(`tsysPush repository: '%s/web/site'`, reg),
		"tsysPromote": `tsysPromote app: 'site', kubeconfigId: 'kubeconfig'`,
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := j.Run(context.Background(), jf, map[string]string{"GIT_COMMIT": "0123456789abcdef0123456789abcdef01234567", "SOURCE_DATE_EPOCH": "1764000000"})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Stage("Build").Status != "SUCCESS" || r.Stage("Push").Status != "SUCCESS" || r.Stage("Promote").Status != "FAILURE" {
		t.Fatalf("want Build and Push to succeed and Promote to fail: %s", r)
	}
	if !strings.Contains(r.Console, "is signed with ****") {
		t.Errorf("promote did not verify the signature tsysPush made (with the masked key file):\n%s", r.Console)
	}
	var tsysErr string
	for _, l := range strings.Split(r.Console, "\n") {
		if m, ok := strings.CutPrefix(l, "tsys-ci: error: "); ok {
			tsysErr = m
		}
	}
	if tsysErr == "" || r.Message != "tsysPromote: "+tsysErr || !strings.Contains(tsysErr, "127.0.0.1:1") {
		t.Errorf("want the stage to fail with tsys-ci's own message about the cluster; build message %q, tsys-ci said %q", r.Message, tsysErr)
	}
	for _, s := range []string{"robot-secret", "key-password", "/secretFiles/"} {
		if strings.Contains(r.Console, s) {
			t.Errorf("console shows %q", s)
		}
	}
}
