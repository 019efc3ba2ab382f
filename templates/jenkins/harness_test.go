package jenkins

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tsys-group/tsys-ci/test/testenv"
)

// The shared library is executed for real: Debian's Groovy 2.4 (the line
// Jenkins' pipeline engine runs) loads vars/ and src/ as Jenkins does and
// runs a Jenkinsfile through testdata/harness/harness.groovy, which supplies
// the pipeline steps (sh, withCredentials, usernamePassword, file, string,
// env, junit, error, echo, readFile, readJSON, fileExists, and the
// declarative syntax the template uses). sh scripts for tsys-ci commands
// this repository's binary has run for real against that binary.

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// tsysCiBinary builds cmd/tsys-ci once per test binary.
func tsysCiBinary(t *testing.T) string {
	t.Helper()
	goTool := testenv.LookPath(t, "go")
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "tsys-ci-jenkins-bin-")
		if binErr != nil {
			return
		}
		out, err := exec.Command(goTool, "build", "-o", filepath.Join(binDir, "tsys-ci"), "../../cmd/tsys-ci").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build ./cmd/tsys-ci: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "tsys-ci")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if registrySrv != nil {
		registrySrv.Close()
	}
	for _, d := range []string{binDir, harnessRoot} {
		if d != "" {
			os.RemoveAll(d)
		}
	}
	os.Exit(code)
}

// hasCommand reports whether the built tsys-ci has a command.
func hasCommand(t *testing.T, command string) (bool, string) {
	t.Helper()
	out, err := exec.Command(tsysCiBinary(t), command, "--help").CombinedOutput()
	return err == nil && strings.Contains(string(out), "tsys-ci "+command), string(out)
}

type credential map[string]string

// pipeline is one harness run.
type pipeline struct {
	Script      string                // the Jenkinsfile or pipeline script
	Env         map[string]string     // Jenkins' environment (BRANCH_NAME, ...)
	Credentials map[string]credential // the credential store
	Real        []string              // tsys-ci commands whose sh runs for real
	Status      map[string]int        // exit status of recorded (not run) commands
	Files       map[string]string     // files in the workspace before the run
}

type event map[string]any

type outcome struct {
	Result  string  `json:"result"`
	Message string  `json:"message"`
	Events  []event `json:"events"`
	ws      string
}

func storeCredentials() map[string]credential {
	return map[string]credential{
		"harbor-robot":      {"type": "usernamePassword", "username": "robot$web", "password": "s3cr'et"},
		"cosign-key":        {"type": "file", "content": "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"},
		"cosign-password":   {"type": "string", "secret": "key-password"},
		"cosign-public-key": {"type": "file", "content": "-----BEGIN PUBLIC KEY-----\n"},
	}
}

// runPipelines runs every pipeline in one Groovy process (the JVM's start
// is most of a run's cost) and returns the outcome of each by name.
func runPipelines(groovy, bin string, ps map[string]pipeline) (map[string]outcome, error) {
	root, err := os.MkdirTemp("", "tsys-ci-harness-")
	if err != nil {
		return nil, err
	}
	harnessDir, _ := filepath.Abs("testdata/harness")
	library, _ := filepath.Abs("shared-library")
	args := []string{filepath.Join(harnessDir, "harness.groovy")}
	dirs := map[string]string{}
	for name, p := range ps {
		dir := filepath.Join(root, name)
		dirs[name] = dir
		ws, tmp := filepath.Join(dir, "workspace"), filepath.Join(dir, "tmp")
		for _, d := range []string{ws, tmp} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, err
			}
		}
		for file, content := range p.Files {
			path := filepath.Join(ws, file)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				return nil, err
			}
		}
		script := filepath.Join(dir, "Jenkinsfile")
		if err := os.WriteFile(script, []byte(p.Script), 0o644); err != nil {
			return nil, err
		}
		cfg := map[string]any{
			"workspace": ws, "tmp": tmp, "pipeline": script, "events": filepath.Join(dir, "events.json"),
			"harnessDir": harnessDir, "library": library,
			"env": p.Env, "credentials": p.Credentials, "real": p.Real, "status": p.Status,
			"path": filepath.Dir(bin) + ":" + os.Getenv("PATH"),
		}
		b, _ := json.Marshal(cfg)
		cfgFile := filepath.Join(dir, "config.json")
		if err := os.WriteFile(cfgFile, b, 0o644); err != nil {
			return nil, err
		}
		args = append(args, cfgFile)
	}
	cmd := exec.Command(groovy, args...)
	cmd.Env = os.Environ()
	if os.Getenv("JAVA_HOME") == "" {
		if _, err := os.Stat("/usr/lib/jvm/default-java"); err == nil {
			cmd.Env = append(cmd.Env, "JAVA_HOME=/usr/lib/jvm/default-java")
		}
	}
	if os.Getenv("JAVA_OPTS") == "" {
		// A short run: the JIT's first tier and one GC thread start faster
		// on a busy two-core machine.
		cmd.Env = append(cmd.Env, "JAVA_OPTS=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("groovy harness.groovy: %v\n%s", err, out)
	}
	outcomes := map[string]outcome{}
	for name, dir := range dirs {
		var o outcome
		data, err := os.ReadFile(filepath.Join(dir, "events.json"))
		if err != nil {
			return nil, fmt.Errorf("the harness wrote no events for %s: %v\n%s", name, err, out)
		}
		if err := json.Unmarshal(data, &o); err != nil {
			return nil, err
		}
		o.ws = filepath.Join(dir, "workspace")
		outcomes[name] = o
	}
	harnessRoot = root
	return outcomes, nil
}

var (
	suiteOnce   sync.Once
	suite       map[string]outcome
	suiteErr    error
	harnessRoot string
)

// outcomeOf runs the whole suite of pipelines once, then returns one.
func outcomeOf(t *testing.T, name string) outcome {
	t.Helper()
	groovy := testenv.LookPath(t, "groovy")
	bin := tsysCiBinary(t)
	suiteOnce.Do(func() {
		ps := suitePipelines(t)
		suite, suiteErr = runPipelines(groovy, bin, ps)
	})
	if suiteErr != nil {
		t.Fatal(suiteErr)
	}
	o, ok := suite[name]
	if !ok {
		t.Fatalf("no pipeline %q in the suite", name)
	}
	return o
}

func (o outcome) steps(step string) []event {
	var out []event
	for _, e := range o.Events {
		if e["step"] == step {
			out = append(out, e)
		}
	}
	return out
}

// argv runs the tsys-ci command line of a recorded sh script through the
// real /bin/sh, with the environment the step had, and returns the argument
// vector tsys-ci would have received.
func argv(t *testing.T, sh event) []string {
	t.Helper()
	script := sh["script"].(string)
	start := strings.Index(script, "tsys-ci '")
	end := strings.Index(script, " || rc=$?;")
	if start < 0 || end < start {
		t.Fatalf("no tsys-ci command line in %q", script)
	}
	line := "printf '%s\\0'" + script[start+len("tsys-ci"):end]
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	for k, v := range sh["env"].(map[string]any) {
		cmd.Env = append(cmd.Env, k+"="+fmt.Sprint(v))
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("/bin/sh -c %q: %v", line, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}
