package jenkins

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tsys-group/tsys-ci/registry"
)

const (
	buildJSON = `{"digest":"sha256:aaa","layout":".tsys-ci/image","labels":{"io.tsys-ci.build-number":"7"}}`
	pushJSON  = `{"image":"harbor.company.example/web/whiteboard@sha256:aaa","digest":"sha256:aaa","tags":["abc1234","build-7"],"signed":true}`
	junitXML  = `<testsuite name="promote whiteboard" tests="2" failures="1"><testcase name="http /healthz"/><testcase name="http /"><failure message="503"/></testcase></testsuite>`
)

func jenkinsfile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("Jenkinsfile")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const tricky = "it's \"quoted\" $HOME `id` \\ ; done"

// suitePipelines are all the pipelines the tests below look at, run in
// one Groovy process.
func suitePipelines(t *testing.T) map[string]pipeline {
	noCosignKey := storeCredentials()
	delete(noCosignKey, "cosign-key")
	ps := map[string]pipeline{
		"jenkinsfile-main": {Script: jenkinsfile(t), Env: map[string]string{"BRANCH_NAME": "main", "BUILD_NUMBER": "7"},
			Credentials: storeCredentials(), Files: results()},
		"jenkinsfile-feature": {Script: jenkinsfile(t), Env: map[string]string{"BRANCH_NAME": "feature/x"},
			Credentials: storeCredentials(), Files: results()},
		"real-failure": {Script: `tsysBuild(base: 'scratch', context: 'no-such-dir')`, Real: []string{"build"}},
		"promote-rollback": {Script: `tsysPromote(app: 'whiteboard', strategy: 'canary')`, Credentials: storeCredentials(),
			Files: results(), Status: map[string]int{"promote": 3}},
		"promote-error": {Script: `tsysPromote(app: 'whiteboard', allowUnsigned: true)`, Status: map[string]int{"promote": 1}},
		// promote's sh run for real: no tsys-ci.yaml in the workspace, so
		// tsys-ci must get as far as loading the spec (the argument
		// order the step passes must parse first).
		"real-promote": {Script: `tsysPromote(app: 'whiteboard', allowUnsigned: true)`, Files: results(), Real: []string{"promote"}},
		"unsigned-push": {Script: `tsysPush(repository: 'r/p/n', sign: false, tags: ['v1', "it's"])`,
			Credentials: map[string]credential{"harbor-robot": storeCredentials()["harbor-robot"]}, Files: results()},
		"quoting": {Script: `
def built = tsysBuild(base: 'scratch', env: [GREETING: env.TRICKY], labels: ['org.example/x': 'y'], entrypoint: '/app/run', user: '1000:1000', workdir: '/srv')
tsysPush(repository: 'r/p/n', from: built, sign: false)
echo "digest ${built.digest} from ${built.resultFile}"
`, Env: map[string]string{"TRICKY": tricky}, Credentials: storeCredentials(), Files: results()},
	}
	for i, tc := range badArguments {
		ps[fmt.Sprintf("bad-%d", i)] = pipeline{Script: tc.script, Credentials: noCosignKey, Files: results()}
	}
	buildOK, _ := hasCommand(t, "build")
	pushOK, _ := hasCommand(t, "push")
	if buildOK && pushOK {
		ps["real-build-push"] = pipeline{
			Script: `def b = tsysBuild(base: 'scratch', context: 'app')
def p = tsysPush(repository: "${env.REGISTRY}/web/whiteboard")
echo "built ${b.digest} pushed ${p.image} signed ${p.signed}"`,
			Env: map[string]string{"GIT_COMMIT": "0123456789abcdef0123456789abcdef01234567", "BRANCH_NAME": "main", "BUILD_NUMBER": "7",
				"JOB_NAME": "apps/whiteboard/main", "SOURCE_DATE_EPOCH": "1764000000", "REGISTRY": testRegistry(t),
				"TSYS_CI_REGISTRY_INSECURE": "true"}, // the test registry is on loopback, plain HTTP
			Credentials: realKeys(t),
			Real:        []string{"build", "push"},
			Files:       map[string]string{"app/index.html": "<h1>hi</h1>\n"},
		}
	}
	return ps
}

var badArguments = []struct{ script, want string }{
	{`tsysBuild()`, "tsysBuild: base is required"},
	{`tsysBuild(base: 'scratch', env: 'A=1')`, "tsysBuild: env and labels are maps"},
	{`tsysPush()`, "tsysPush: repository is required"},
	{`tsysPromote()`, "tsysPromote: app is required"},
	{`tsysPush(repository: 'r/p/n')`, "Could not find credentials entry with ID 'cosign-key'"},
}

// results are what build, push and promote would have written: the
// commands are recorded, not run, while they are not in this repository.
func results() map[string]string {
	return map[string]string{".tsys-ci/build.json": buildJSON, ".tsys-ci/push.json": pushJSON, ".tsys-ci/promote-junit.xml": junitXML}
}

func TestJenkinsfileTemplateRunsBuildPushPromote(t *testing.T) {
	o := outcomeOf(t, "jenkinsfile-main")
	if o.Result != "SUCCESS" {
		t.Fatalf("Jenkinsfile: %s: %s", o.Result, o.Message)
	}
	var stages []string
	for _, e := range o.steps("stage") {
		stages = append(stages, e["name"].(string))
	}
	if !slices.Equal(stages, []string{"Build", "Push", "Promote"}) {
		t.Errorf("stages = %v", stages)
	}
	sh := o.steps("sh")
	if len(sh) != 3 || sh[0]["command"] != "build" || sh[1]["command"] != "push" || sh[2]["command"] != "promote" {
		t.Fatalf("sh steps = %v", sh)
	}
	if got, want := argv(t, sh[0]), []string{"build", "--base", "harbor.company.example/library/node:22-slim", "--cmd", "node", "--cmd", "server.js", "--port", "8080", "--result", ".tsys-ci/build.json"}; !slices.Equal(got, want) {
		t.Errorf("tsysBuild ran tsys-ci %q, want %q", got, want)
	}

	push := sh[1]
	env := push["env"].(map[string]any)
	key, _ := env["TSYS_CI_COSIGN_KEY"].(string)
	if env["TSYS_CI_REGISTRY_USERNAME"] != "robot$web" || env["TSYS_CI_REGISTRY_PASSWORD"] != "s3cr'et" || env["COSIGN_PASSWORD"] != "key-password" || key == "" {
		t.Errorf("tsysPush's sh ran without the credentials bound: %v", env)
	}
	if strings.Contains(push["script"].(string), "s3cr'et") || strings.Contains(push["script"].(string), "key-password") {
		t.Errorf("a secret was interpolated into the sh script: %s", push["script"])
	}
	if got, want := argv(t, push), []string{"push", "--from", ".tsys-ci/build.json", "--repository", "harbor.company.example/web/whiteboard", "--sign", "--key", key, "--result", ".tsys-ci/push.json"}; !slices.Equal(got, want) {
		t.Errorf("tsysPush ran tsys-ci %q, want %q", got, want)
	}
	promote := sh[2]
	verify, _ := promote["env"].(map[string]any)["TSYS_CI_VERIFY_KEY"].(string)
	if got, want := argv(t, promote), []string{"promote", "--from", ".tsys-ci/push.json", "--verify-key", verify, "--report", ".tsys-ci/promote-junit.xml", "whiteboard"}; !slices.Equal(got, want) || verify == "" {
		t.Errorf("tsysPromote ran tsys-ci %q, want %q", got, want)
	}
	junit := o.steps("junit")
	if len(junit) != 1 || junit[0]["testResults"] != ".tsys-ci/promote-junit.xml" || junit[0]["tests"] != float64(2) || junit[0]["failures"] != float64(1) {
		t.Errorf("junit = %v", junit)
	}
	var echoes []string
	for _, e := range o.steps("echo") {
		echoes = append(echoes, e["message"].(string))
	}
	if !slices.Contains(echoes, "tsysPush: pushed harbor.company.example/web/whiteboard@sha256:aaa (signed)") {
		t.Errorf("echoes = %q", echoes)
	}
	for _, b := range o.steps("withCredentials") {
		if b["missing"] != nil {
			t.Errorf("missing credential: %v", b)
		}
	}
}

func TestJenkinsfileTemplatePromotesOnlyMain(t *testing.T) {
	o := outcomeOf(t, "jenkinsfile-feature")
	if o.Result != "SUCCESS" {
		t.Fatalf("%s: %s", o.Result, o.Message)
	}
	for _, sh := range o.steps("sh") {
		if sh["command"] == "promote" {
			t.Errorf("a feature branch promoted: %v", sh)
		}
	}
	if st := o.steps("stage"); len(st) != 3 || st[2]["skipped"] != true {
		t.Errorf("stages = %v", st)
	}
}

// TestStepFailsWithTsysCisMessage runs tsysBuild's sh for real against the
// tsys-ci built from this repository and checks the stage fails with the
// message tsys-ci printed, whatever that is today.
func TestStepFailsWithTsysCisMessage(t *testing.T) {
	o := outcomeOf(t, "real-failure")
	bin := tsysCiBinary(t)
	cmd := exec.Command(bin, "build", "--base", "scratch", "--context", "no-such-dir", "--result", ".tsys-ci/build.json")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("tsys-ci build of a missing context succeeded: %s", out)
	}
	var msg string
	for _, l := range strings.Split(string(out), "\n") {
		if m, ok := strings.CutPrefix(l, "tsys-ci: error: "); ok {
			msg = m
		}
	}
	if msg == "" {
		t.Fatalf("tsys-ci printed no 'tsys-ci: error:' line: %s", out)
	}
	// Jenkins runs sh scripts with -xe: the step must still see
	// tsys-ci's own exit status (tsysPromote tells 3, rolled back, from
	// other failures by it).
	want := cmd.ProcessState.ExitCode()
	if o.Result != "FAILURE" || o.Message != "tsysBuild: "+msg {
		t.Errorf("pipeline %s with %q, want FAILURE with %q", o.Result, o.Message, "tsysBuild: "+msg)
	}
	sh := o.steps("sh")
	if len(sh) != 1 || sh[0]["executed"] != true || !strings.Contains(sh[0]["output"].(string), "tsys-ci: error: "+msg) {
		t.Errorf("the console did not show tsys-ci's own output: %v", sh)
	}
	if len(sh) == 1 && sh[0]["status"] != float64(want) {
		t.Errorf("the step saw exit status %v, tsys-ci exited %d:\n%s", sh[0]["status"], want, sh[0]["output"])
	}
}

func TestPromoteRollbackPublishesJUnitThenFails(t *testing.T) {
	o := outcomeOf(t, "promote-rollback")
	if o.Result != "FAILURE" || o.Message != "tsysPromote: whiteboard failed its probes and was rolled back: tsys-ci promote exited with status 3" {
		t.Fatalf("rollback: %s %q", o.Result, o.Message)
	}
	order := ""
	for _, e := range o.Events {
		if e["step"] == "junit" || e["step"] == "error" {
			order += e["step"].(string) + " "
		}
	}
	if order != "junit error " {
		t.Errorf("junit must be published before the stage fails; got %q", order)
	}
	if got := argv(t, o.steps("sh")[0]); !slices.Contains(got, "--strategy") || !slices.Contains(got, "canary") {
		t.Errorf("promote argv = %q", got)
	}

	o = outcomeOf(t, "promote-error")
	if o.Result != "FAILURE" || o.Message != "tsysPromote: tsys-ci promote exited with status 1" || len(o.steps("junit")) != 0 {
		t.Errorf("promote error without a report: %s %q junit %v", o.Result, o.Message, o.steps("junit"))
	}
	if got := argv(t, o.steps("sh")[0]); !slices.Contains(got, "--allow-unsigned") || slices.Contains(got, "--verify-key") {
		t.Errorf("allowUnsigned argv = %q", got)
	}
}

// TestPromoteCommandLineParses runs tsysPromote's sh for real against the
// tsys-ci built from this repository, in a workspace without an app spec:
// the stage must fail on loading the spec, the first thing promote does
// after reading its arguments, not on the arguments themselves (urfave/cli
// stops reading flags at the first positional argument, so an app name
// before the flags made every promote exit 2).
func TestPromoteCommandLineParses(t *testing.T) {
	o := outcomeOf(t, "real-promote")
	sh := o.steps("sh")
	if len(sh) != 1 || sh[0]["executed"] != true {
		t.Fatalf("promote's sh did not run for real: %v", sh)
	}
	if o.Result != "FAILURE" || !strings.HasPrefix(o.Message, "tsysPromote: reading app spec: ") || !strings.Contains(o.Message, "tsys-ci.yaml") {
		t.Errorf("pipeline %s with %q; want FAILURE from loading tsys-ci.yaml (the arguments parsed)\nconsole: %s", o.Result, o.Message, sh[0]["output"])
	}
}

func TestStepsRefuseBadArgumentsAndMissingCredentials(t *testing.T) {
	for i, tc := range badArguments {
		o := outcomeOf(t, fmt.Sprintf("bad-%d", i))
		if o.Result != "FAILURE" || !strings.Contains(o.Message, tc.want) {
			t.Errorf("%s: %s %q, want FAILURE with %q", tc.script, o.Result, o.Message, tc.want)
		}
		if len(o.steps("sh")) != 0 {
			t.Errorf("%s: ran sh after failing: %v", tc.script, o.steps("sh"))
		}
	}
	o := outcomeOf(t, "unsigned-push")
	if o.Result != "SUCCESS" {
		t.Fatalf("unsigned push: %s %q", o.Result, o.Message)
	}
	if got, want := argv(t, o.steps("sh")[0]), []string{"push", "--from", ".tsys-ci/build.json", "--repository", "r/p/n", "--tag", "v1", "--tag", "it's", "--result", ".tsys-ci/push.json"}; !slices.Equal(got, want) {
		t.Errorf("unsigned push argv %q, want %q", got, want)
	}
}

func TestStepArgumentsSurviveTheShell(t *testing.T) {
	o := outcomeOf(t, "quoting")
	if o.Result != "SUCCESS" {
		t.Fatalf("%s %q", o.Result, o.Message)
	}
	want := []string{"build", "--base", "scratch", "--workdir", "/srv", "--entrypoint", "/app/run", "--env", "GREETING=" + tricky, "--user", "1000:1000", "--label", "org.example/x=y", "--result", ".tsys-ci/build.json"}
	if got := argv(t, o.steps("sh")[0]); !slices.Equal(got, want) {
		t.Errorf("argv through /bin/sh:\n got %q\nwant %q", got, want)
	}
	if got := argv(t, o.steps("sh")[1]); got[2] != ".tsys-ci/build.json" {
		t.Errorf("tsysPush did not take tsysBuild's result file: %q", got)
	}
	echoes := o.steps("echo")
	if last := echoes[len(echoes)-1]["message"]; last != "digest sha256:aaa from .tsys-ci/build.json" {
		t.Errorf("returned value: %v", last)
	}
}

// TestBuildAndPushStepsRunForReal runs tsysBuild's and tsysPush's sh
// against the real tsys-ci and a real registry (go-containerregistry's, on
// loopback, behind basic auth with the harbor-robot credential), signing
// with a cosign key from the credential store, so the credentials
// withCredentials binds are the ones tsys-ci logs in and signs with. The
// signature is then checked with tsys-ci verify and the public key.
func TestBuildAndPushStepsRunForReal(t *testing.T) {
	for _, command := range []string{"build", "push"} {
		if ok, _ := hasCommand(t, command); !ok {
			t.Fatalf("tsys-ci %s is missing from the binary built from this repository; the shared library calls it", command)
		}
	}
	o := outcomeOf(t, "real-build-push")
	if o.Result != "SUCCESS" {
		t.Fatalf("real tsysBuild + tsysPush: %s %q\n%v", o.Result, o.Message, o.steps("sh"))
	}
	echoes := o.steps("echo")
	last := echoes[len(echoes)-1]["message"].(string)
	var digest, image, signed string
	if _, err := fmt.Sscanf(last, "built %s pushed %s signed %s", &digest, &image, &signed); err != nil {
		t.Fatalf("echo %q: %v", last, err)
	}
	if !strings.HasPrefix(digest, "sha256:") || image != testRegistry(t)+"/web/whiteboard@"+digest || signed != "true" {
		t.Errorf("built %s, pushed %s, signed %s", digest, image, signed)
	}
	ref, err := name.ParseReference(testRegistry(t) + "/web/whiteboard:build-7")
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(ref, remote.WithAuth(&authn.Basic{Username: "robot$web", Password: "s3cr'et"}))
	if err != nil || desc.Digest.String() != digest {
		t.Errorf("registry has build-7 at %v (%v), want %s", desc, err, digest)
	}
	pub := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(pub, []byte(realKeys(t)["cosign-public-key"]["content"]), 0o644); err != nil {
		t.Fatal(err)
	}
	verify := exec.Command(tsysCiBinary(t), "verify", "--key", pub, image)
	verify.Env = append(os.Environ(), "TSYS_CI_REGISTRY_USERNAME=robot$web", "TSYS_CI_REGISTRY_PASSWORD=s3cr'et", "TSYS_CI_REGISTRY_INSECURE=true")
	if out, err := verify.CombinedOutput(); err != nil {
		t.Errorf("tsys-ci verify of what tsysPush signed: %v\n%s", err, out)
	}
}

var (
	keysOnce sync.Once
	keys     map[string]credential
)

// realKeys is the credential store with a real cosign key pair, made as
// `cosign generate-key-pair` makes one, encrypted with cosign-password.
func realKeys(t *testing.T) map[string]credential {
	keysOnce.Do(func() {
		keys = storeCredentials()
		priv, pub, err := registry.GenerateKeyPair([]byte(keys["cosign-password"]["secret"]))
		if err != nil {
			panic(fmt.Sprintf("generating a cosign key pair: %v", err))
		}
		keys["cosign-key"] = credential{"type": "file", "content": string(priv)}
		keys["cosign-public-key"] = credential{"type": "file", "content": string(pub)}
	})
	return keys
}

var (
	registryOnce sync.Once
	registryHost string
	registrySrv  *httptest.Server
)

// testRegistry is go-containerregistry's registry on loopback behind the
// harbor-robot credential's basic auth, shared by the package's tests.
func testRegistry(t *testing.T) string {
	registryOnce.Do(func() {
		reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)), ggcrregistry.WithReferrersSupport(true))
		registrySrv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "robot$web" || p != "s3cr'et" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			reg.ServeHTTP(w, r)
		}))
		registryHost = strings.TrimPrefix(registrySrv.URL, "http://")
	})
	return registryHost
}
