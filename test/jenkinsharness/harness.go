// Package jenkinsharness runs Jenkins pipelines without Jenkins: the tsys-ci
// Jenkins pipeline harness. It is NOT Jenkins, and says so in every console
// it writes.
//
// A Job is a folder with a workspace kept from build to build (as a Jenkins
// agent keeps it) and one folder per build. Each build runs one Groovy 2.4
// process (Debian's, the line Jenkins' pipeline engine runs) that loads the
// shared library's vars/ and src/ and runs the Jenkinsfile's declarative
// stages with the pipeline steps the library uses, every sh executed for
// real; groovy/harness.groovy lists each step's Jenkins semantics.
// docs/jenkins.md says what only a real Jenkins could show.
package jenkinsharness

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed groovy/*.groovy
var groovyFiles embed.FS

// Name is how the harness is named in test output: it is not Jenkins.
const Name = "tsys-ci Jenkins pipeline harness (not Jenkins)"

// Credential is one entry of the harness's credential store, as Jenkins'
// credentials plugin holds them. Type is usernamePassword, file or string.
type Credential struct {
	Type string `json:"type"`
	// usernamePassword; UsernameSecret masks the username too (Jenkins'
	// "Treat username as secret", off by default for new credentials)
	Username       string `json:"username,omitempty"`
	Password       string `json:"password,omitempty"`
	UsernameSecret bool   `json:"usernameSecret,omitempty"`
	// file: the uploaded file's name and content
	FileName string `json:"fileName,omitempty"`
	Content  string `json:"content,omitempty"`
	// string
	Secret string `json:"secret,omitempty"`
}

// Job is a pipeline job: its builds share one workspace.
type Job struct {
	Groovy  string // the groovy program (testenv.LookPath(t, "groovy"))
	Library string // the shared library's folder (vars/, src/)
	Dir     string // the job's folder: workspace/ and builds/N/
	Name    string // JOB_NAME, e.g. apps/whiteboard/main
	// AgentEnv is the agent's environment (PATH with tsys-ci on it, HOME,
	// KUBECONFIG when the agent has one); Env is the build's (BRANCH_NAME,
	// GIT_COMMIT, ...). The harness adds BUILD_NUMBER, BUILD_ID, JOB_NAME,
	// JOB_BASE_NAME, WORKSPACE and NODE_NAME.
	AgentEnv    map[string]string
	Env         map[string]string
	Credentials map[string]Credential
	// Console, when set, gets each console line as the build writes it.
	Console io.Writer

	mu     sync.Mutex
	next   int
	script string // the harness's folder, written once
}

// Workspace is the folder every build of the job runs in.
func (j *Job) Workspace() string { return filepath.Join(j.Dir, "workspace") }

// Stage is one stage of a finished build.
type Stage struct {
	Name   string `json:"name"`
	Status string `json:"status"` // SUCCESS, UNSTABLE, FAILURE, ABORTED or SKIPPED
	Error  string `json:"error,omitempty"`
}

// TestCase is one test of a published JUnit report.
type TestCase struct {
	Suite   string `json:"suite"`
	Name    string `json:"name"`
	Status  string `json:"status"` // PASSED, FAILED or SKIPPED
	Message string `json:"message,omitempty"`
}

// TestReport is a JUnit report the junit step published.
type TestReport struct {
	File    string     `json:"file"` // as the step named it
	Kept    string     `json:"kept"` // the copy kept with the build
	Stage   string     `json:"stage"`
	Total   int        `json:"total"`
	Failed  int        `json:"failed"`
	Skipped int        `json:"skipped"`
	Cases   []TestCase `json:"cases"`
}

// Result is a finished build.
type Result struct {
	Number  int          `json:"-"`
	Result  string       `json:"result"`  // SUCCESS, UNSTABLE, FAILURE or ABORTED
	Message string       `json:"message"` // what ended the build (the error step's message)
	Stages  []Stage      `json:"stages"`
	Tests   []TestReport `json:"tests"`
	Console string       `json:"-"`
	Took    time.Duration
}

// Stage returns the named stage (Status "" if the build never reached it).
func (r *Result) Stage(name string) Stage {
	for _, s := range r.Stages {
		if s.Name == name {
			return s
		}
	}
	return Stage{Name: name}
}

// Build is a running build.
type Build struct {
	Number int
	Dir    string
	start  time.Time
	cmd    *exec.Cmd
	done   chan struct{}
	res    *Result
	err    error
}

// Start starts the next build of the job with pipeline as its Jenkinsfile
// and env added to the job's environment.
func (j *Job) Start(ctx context.Context, pipeline string, env map[string]string) (*Build, error) {
	j.mu.Lock()
	j.next++
	n := j.next
	if j.script == "" {
		dir := filepath.Join(j.Dir, "harness")
		if err := writeGroovy(dir); err != nil {
			j.mu.Unlock()
			return nil, err
		}
		j.script = dir
	}
	j.mu.Unlock()

	dir := filepath.Join(j.Dir, "builds", strconv.Itoa(n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("making build folder %s: %w", dir, err)
	}
	jf := filepath.Join(dir, "Jenkinsfile")
	if err := os.WriteFile(jf, []byte(pipeline), 0o644); err != nil {
		return nil, err
	}
	buildEnv := map[string]string{}
	for k, v := range j.Env {
		buildEnv[k] = v
	}
	for k, v := range env {
		buildEnv[k] = v
	}
	buildEnv["BUILD_NUMBER"] = strconv.Itoa(n)
	buildEnv["BUILD_ID"] = strconv.Itoa(n)
	buildEnv["JOB_NAME"] = j.Name
	buildEnv["JOB_BASE_NAME"] = filepath.Base(j.Name)
	buildEnv["WORKSPACE"] = j.Workspace()
	buildEnv["NODE_NAME"] = "harness"
	library, err := filepath.Abs(j.Library)
	if err != nil {
		return nil, err
	}
	cfg := map[string]any{
		"workspace": j.Workspace(), "buildDir": dir, "pipeline": jf, "library": library, "harnessDir": j.script,
		"resultFile": filepath.Join(dir, "result.json"), "abortFile": filepath.Join(dir, "abort"),
		"env": buildEnv, "agentEnv": j.AgentEnv, "credentials": j.Credentials,
		"jobName": j.Name, "number": n,
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		return nil, err
	}

	cmd := exec.Command(j.Groovy, filepath.Join(j.script, "harness.groovy"), cfgFile)
	cmd.Env = os.Environ()
	if os.Getenv("JAVA_HOME") == "" {
		if _, err := os.Stat("/usr/lib/jvm/default-java"); err == nil {
			cmd.Env = append(cmd.Env, "JAVA_HOME=/usr/lib/jvm/default-java")
		}
	}
	if os.Getenv("JAVA_OPTS") == "" {
		cmd.Env = append(cmd.Env, "JAVA_OPTS=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
	}
	var console, stderr bytes.Buffer
	var out io.Writer = &console
	if j.Console != nil {
		out = io.MultiWriter(&console, j.Console)
	}
	cmd.Stdout, cmd.Stderr = out, &stderr
	bd := &Build{Number: n, Dir: dir, start: time.Now(), cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", j.Groovy, err)
	}
	go func() {
		defer close(bd.done)
		werr := cmd.Wait()
		_ = os.WriteFile(filepath.Join(dir, "console.log"), console.Bytes(), 0o644)
		res := &Result{Number: n, Console: console.String(), Took: time.Since(bd.start)}
		data, err := os.ReadFile(filepath.Join(dir, "result.json"))
		if err != nil {
			bd.err = fmt.Errorf("%s: build #%d wrote no result (groovy: %v): %w\nstderr:\n%s\nconsole:\n%s", Name, n, werr, err, stderr.String(), console.String())
			return
		}
		if err := json.Unmarshal(data, res); err != nil {
			bd.err = fmt.Errorf("%s: build #%d: reading %s: %w", Name, n, filepath.Join(dir, "result.json"), err)
			return
		}
		bd.res = res
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = bd.Abort()
		case <-bd.done:
		}
	}()
	return bd, nil
}

// Abort asks the build to stop as Jenkins' abort button does: the running
// sh step's processes get SIGTERM, children first; no later step runs.
func (b *Build) Abort() error {
	f := filepath.Join(b.Dir, "abort")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		return fmt.Errorf("asking build #%d to abort (%s): %w", b.Number, f, err)
	}
	return nil
}

// Done is closed when the build has finished.
func (b *Build) Done() <-chan struct{} { return b.done }

// Wait waits for the build to finish and returns its result.
func (b *Build) Wait() (*Result, error) {
	<-b.done
	return b.res, b.err
}

// Run runs one build to its end.
func (j *Job) Run(ctx context.Context, pipeline string, env map[string]string) (*Result, error) {
	b, err := j.Start(ctx, pipeline, env)
	if err != nil {
		return nil, err
	}
	return b.Wait()
}

func writeGroovy(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := groovyFiles.ReadDir("groovy")
	if err != nil {
		return err
	}
	for _, e := range entries {
		data, err := groovyFiles.ReadFile("groovy/" + e.Name())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// String is the build's one-line summary, naming the harness.
func (r *Result) String() string {
	var st []string
	for _, s := range r.Stages {
		st = append(st, s.Name+"="+s.Status)
	}
	return fmt.Sprintf("%s build #%d: %s in %s (stages %s)%s", Name, r.Number, r.Result, r.Took.Round(100*time.Millisecond),
		strings.Join(st, " "), map[bool]string{true: ": " + r.Message, false: ""}[r.Message != "" && r.Result != "SUCCESS"])
}

// AppJenkinsfile is the Jenkinsfile template with each step's line (the
// line with "steps { tsysBuild ", "steps { tsysPush ", "steps { tsysPromote ")
// replaced by the call given for it, as a developer fills the template in.
func AppJenkinsfile(template string, calls map[string]string) (string, error) {
	lines := strings.Split(template, "\n")
	for step, call := range calls {
		found := 0
		for i, l := range lines {
			if strings.Contains(l, "steps { "+step+" ") {
				found++
				lines[i] = l[:strings.Index(l, "steps {")] + "steps { " + call + " }"
			}
		}
		if found != 1 {
			return "", fmt.Errorf("the Jenkinsfile template has %d lines with `steps { %s ...`, want 1: has the template changed?", found, step)
		}
	}
	return strings.Join(lines, "\n"), nil
}
