package rollout

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestExampleSpecLoads(t *testing.T) {
	spec, err := LoadSpec(filepath.Join("..", "templates", "app", "tsys-ci.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if spec.Name != "shop" || *spec.Replicas != 2 || len(spec.Ports) != 3 || spec.Probes[0].MaxLatency.Duration != 500*time.Millisecond {
		t.Fatalf("example decoded wrong: %+v", spec)
	}
}

func TestSpecDefaults(t *testing.T) {
	spec, err := ParseSpec([]byte("name: web\nports: [{name: http, containerPort: 8080, expose: true}]\nvolumes: [{name: data, size: 1Gi, mountPath: /data}]\nprobes: [{port: http}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"namespace", spec.Namespace, "web"},
		{"replicas", *spec.Replicas, int32(2)},
		{"protocol", spec.Ports[0].Protocol, ProtocolHTTP},
		{"volume class", spec.Volumes[0].Class, DefaultVolumeClass},
		{"volume access", spec.Volumes[0].AccessMode, AccessReadWriteMany},
		{"readiness", *spec.Health.Readiness, Check{TCP: true, Port: "http"}},
		{"strategy", spec.Strategy.Type, StrategyBlueGreen},
		{"canary steps", len(spec.Strategy.Canary.Steps), 3},
		{"probe path", spec.Probes[0].Path, "/"},
		{"probe status", spec.Probes[0].ExpectStatus, 200},
		{"probe successes", spec.Probes[0].Successes, DefaultProbeSuccesses},
		{"probe failure threshold", spec.Probes[0].FailureThreshold, DefaultProbeFailureThreshold},
		{"grace", spec.Shutdown.GracePeriod.Duration, DefaultGracePeriod},
		{"analysis error rate", *spec.Analysis.MaxErrorRate, Percent{Value: DefaultMaxErrorRate}},
		{"analysis response time", spec.Analysis.MaxResponseTime.Duration, DefaultMaxResponseTime},
		{"analysis min requests", spec.Analysis.MinRequests, DefaultMinRequests},
		{"analysis window", spec.Analysis.Window.Duration, DefaultAnalysisWindow},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestSpecErrors checks that each bad spec is refused with a message naming
// the field and saying what is wrong.
func TestSpecErrors(t *testing.T) {
	base := "name: web\nports: [{name: http, containerPort: 8080, expose: true}]\n"
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown field", base + "replica: 3\n", []string{`unknown field "replica"`}},
		{"no name", "replicas: 2\n", []string{"name: is required"}},
		{"no port", "name: worker\n", []string{"ports: at least one port is required"}},
		{"bad name", "name: Web_1\n", []string{`name: "Web_1" is not a valid name`}},
		{"zero replicas", base + "replicas: 0\n", []string{"replicas: must be at least 1, got 0"}},
		{"dup port", "name: web\nports: [{name: http, containerPort: 80}, {name: http, containerPort: 81}]\n", []string{`ports[1].name: "http" is used by another port`}},
		{"port range", "name: web\nports: [{name: http, containerPort: 70000}]\n", []string{"ports[0].containerPort: must be 1-65535, got 70000"}},
		{"protocol", "name: web\nports: [{name: http, containerPort: 80, protocol: udp}]\n", []string{`ports[0].protocol: must be "http" or "tcp", got "udp"`}},
		{"host on unexposed", "name: web\nports: [{name: http, containerPort: 80, hosts: [a.example]}]\n", []string{"ports[0].hosts: only an exposed http port"}},
		{"bad host", "name: web\nports: [{name: http, containerPort: 80, expose: true, hosts: [bad_host, UP.example, nodot]}]\n",
			[]string{`ports[0].hosts[0]: "bad_host" is not a fully qualified host name`, `ports[0].hosts[1]: "UP.example" must be lower case`, `ports[0].hosts[2]: "nodot" is not a fully qualified`}},
		{"dup host", "name: web\nports: [{name: a, containerPort: 80, expose: true, hosts: [x.example]}, {name: b, containerPort: 81, expose: true, hosts: [x.example]}]\n", []string{`ports[1].hosts[0]: "x.example" is already used by ports[0].hosts[0]`}},
		{"resend without hosts", "name: web\nports: [{name: a, containerPort: 80, expose: true, resendAfter: 2s}]\n", []string{"ports[0].resendAfter: only an http port with hosts"}},
		{"resend not a duration", "name: web\nports: [{name: a, containerPort: 80, expose: true, hosts: [x.example], resendAfter: soon}]\n", []string{`ports[0].resendAfter: "soon" is not a duration`}},
		{"resend too short", "name: web\nports: [{name: a, containerPort: 80, expose: true, hosts: [x.example], resendAfter: 50ms}]\n", []string{"ports[0].resendAfter: 50ms is out of range: give 100ms to 60s"}},
		{"sticky without hosts", "name: web\nports: [{name: a, containerPort: 80, expose: true, sticky: true}]\n", []string{"ports[0].sticky: only an http port with hosts"}},
		{"frontend on http", "name: web\nports: [{name: a, containerPort: 80, expose: true, tcpFrontendPort: 2222}]\n", []string{"ports[0].tcpFrontendPort: only an exposed tcp port"}},
		{"frontend edge port", "name: web\nports: [{name: a, containerPort: 22, protocol: tcp, expose: true, tcpFrontendPort: 443}]\n", []string{"ports[0].tcpFrontendPort: 443 is the edge's own"}},
		{"frontend dup", "name: web\nports: [{name: a, containerPort: 22, protocol: tcp, expose: true, tcpFrontendPort: 2222}, {name: b, containerPort: 23, protocol: tcp, expose: true, tcpFrontendPort: 2222}]\n", []string{"ports[1].tcpFrontendPort: 2222 is already used by ports[0].tcpFrontendPort"}},
		{"env", base + "env: [{name: 1X}, {name: A, value: v, secretRef: {name: s, key: k}}, {name: B, secretRef: {name: S!, key: 'a/b'}}]\n",
			[]string{`env[0].name: "1X"`, "env[1]: set one of value, secretRef and fromEnv, not several", `env[2].secretRef.name: "S!"`, `env[2].secretRef.key: "a/b"`}},
		{"env fromEnv", base + "env: [{name: A, value: v, fromEnv: A_SRC}, {name: B, fromEnv: '1-bad'}, {name: C, fromEnv: C_SRC, secretRef: {name: s, key: k}}]\n",
			[]string{"env[0]: set one of value, secretRef and fromEnv, not several", `env[1].fromEnv: "1-bad"`, "env[2]: set one of value, secretRef and fromEnv, not several"}},
		{"volume", base + "volumes: [{name: d, size: lots, mountPath: data, accessMode: Many}]\n",
			[]string{`volumes[0].size: "lots" is not a positive size`, `volumes[0].mountPath: "data" must be an absolute path`, "volumes[0].accessMode: must be ReadWriteMany"}},
		{"single writer blue/green", base + "volumes: [{name: d, size: 1Gi, mountPath: /d, accessMode: ReadWriteOnce}]\n",
			[]string{`volumes[0].accessMode: ReadWriteOnce is single-writer, so the app cannot run two copies and strategy "blueGreen" cannot work; use strategy.type: recreate`, "replicas must be 1 (got 2)"}},
		{"single writer canary", base + "replicas: 1\nstrategy: {type: canary}\nvolumes: [{name: d, size: 1Gi, mountPath: /d, accessMode: ReadWriteOncePod}]\n",
			[]string{`strategy "canary" cannot work; use strategy.type: recreate`}},
		{"health", base + "health: {readiness: {http: healthz}, liveness: {port: nope}}\n",
			[]string{`health.readiness.http: "healthz" must be a path`, "health.liveness: set http (a path such as /healthz) or tcp: true", `health.liveness.port: "nope" is not the name of a port`}},
		{"resources", base + "resources: {requests: {cpu: lots}, limits: {memory: -1Gi}}\n", []string{`resources.requests.cpu: "lots"`, `resources.limits.memory: "-1Gi"`}},
		{"shutdown", base + "shutdown: {drain: 30s, gracePeriod: 20s}\n", []string{"shutdown.gracePeriod: must be longer than shutdown.drain (30s), got 20s"}},
		{"bad duration", base + "shutdown: {drain: 10}\n", []string{"invalid duration 10"}},
		{"strategy", base + "strategy: {type: bigBang}\n", []string{`strategy.type: must be blueGreen, canary, rolling or recreate, got "bigBang"`}},
		{"canary steps", base + "strategy: {type: canary, canary: {steps: [50, 20, 120, 90]}}\n",
			[]string{"strategy.canary.steps[1]: 20 must be larger than the step before it (50)", "strategy.canary.steps[2]: must be a weight in percent, 1-100, got 120", "strategy.canary.steps[3]: the last step must be 100, got 90"}},
		{"canary one replica", base + "replicas: 1\nstrategy: {type: canary}\n", []string{"strategy.type: canary needs at least 2 replicas"}},
		{"analysis", base + "analysis: {maxErrorRate: 150%, maxResponseTime: -1s, minRequests: -3, window: 1s}\n",
			[]string{"analysis.maxErrorRate: must be 0%-100%, got 150%", "analysis.maxResponseTime: must be positive, got -1s", "analysis.minRequests: must be at least 1, got -3", "analysis.window: must be at least 2s"}},
		{"source not a URL", base + "source: {repository: just-a-name}\n", []string{`source.repository: "just-a-name" is not a repository URL`}},
		{"source with a login", base + "source: {repository: 'https://ci:s3cret@git.example.com/team/app'}\n", []string{"source.repository: \"https://ci:xxxxx@git.example.com/team/app\" holds a login"}},
		{"source without a path", base + "source: {repository: 'https://git.example.com/'}\n", []string{"names no repository on git.example.com"}},
		{"analysis percent", base + "analysis: {maxErrorRate: lots}\n", []string{`invalid percentage "lots": write it like "1%"`}},
		{"prometheus", base + "analysis: {prometheus: {address: 'prometheus:9090', query: 'rate(x{pod=\"{{ pod }}\"}[{{window}}])'}}\n",
			[]string{`analysis.prometheus.address: "prometheus:9090" is not an http(s) URL`, "analysis.prometheus.query: unknown placeholder {{ pod }}; known: {{ color }}", "analysis.prometheus.threshold: is missing"}},
		{"prometheus empty", base + "analysis: {prometheus: {address: 'https://u:p@prom.example:9090', query: ' ', threshold: 1}}\n",
			[]string{`analysis.prometheus.address: "https://u:xxxxx@prom.example:9090" holds a login`, "analysis.prometheus.query: is empty"}},
		{"probes", base + "probes: [{port: x, path: a, expectStatus: 42, bodyMatch: '(', successes: -1, failureThreshold: -2}]\n",
			[]string{`probes[0].port: "x" is not the name`, `probes[0].path: "a" must start with /`, "probes[0].expectStatus: must be an HTTP status 100-599, got 42", "probes[0].bodyMatch: not a valid regular expression", "probes[0].successes: must be at least 1, got -1", "probes[0].failureThreshold: must be at least 1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(c.yaml))
			if err == nil {
				t.Fatal("spec was accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestSingleWriterRecreateAccepted(t *testing.T) {
	_, err := ParseSpec([]byte("name: db\nreplicas: 1\nports: [{name: pg, containerPort: 5432, protocol: tcp}]\nstrategy: {type: recreate}\nvolumes: [{name: d, size: 1Gi, mountPath: /d, accessMode: ReadWriteOnce}]\n"))
	if err != nil {
		t.Fatalf("single-writer app with recreate and one replica was refused: %v", err)
	}
}

func TestLoadSpecNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tsys-ci.yaml")
	if err := os.WriteFile(path, []byte("name: web\nreplicas: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadSpec(path)
	var se *SpecError
	if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), path+": ") {
		t.Fatalf("want a SpecError prefixed with the path, got %v", err)
	}
}

// FuzzParseSpec feeds arbitrary bytes to the parser: it must never panic,
// and whatever it accepts must be valid and survive a round trip.
func FuzzParseSpec(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("..", "templates", "app", "tsys-ci.yaml")); err == nil {
		f.Add(data)
	}
	f.Add([]byte("name: web\n"))
	f.Add([]byte("name: web\nstrategy: {type: canary, canary: {steps: [10, 50, 100]}}\n"))
	f.Add([]byte("name: web\nports: [{name: http, containerPort: 80}]\nanalysis: {maxErrorRate: 0.5%, maxResponseTime: 300ms, minRequests: 50, window: 10s}\n"))
	f.Add([]byte("name: web\nports: [{name: http, containerPort: 80}]\nanalysis: {maxErrorRate: 2}\n"))
	f.Add([]byte("name: db\nreplicas: 1\nstrategy: {type: recreate}\nvolumes: [{name: d, size: 1Gi, mountPath: /d, accessMode: ReadWriteOnce}]\n"))
	f.Add([]byte("{\"name\": \"x\", \"ports\": [{\"name\": \"a\", \"containerPort\": 1, \"hosts\": [\"\"]}]}"))
	f.Add([]byte(apiSpec))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := ParseSpec(data)
		if err != nil {
			return
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("accepted spec fails validation: %v", err)
		}
		if *spec.Replicas < 1 || spec.Name == "" {
			t.Fatalf("accepted spec without name or replicas: %+v", spec)
		}
		// An accepted api: section renders, into objects the API server
		// can name.
		objs, err := RenderAPI(spec, &GatewayConfig{AuthURL: "http://auth.example/oauth2/auth"}, nil)
		if err != nil {
			t.Fatalf("accepted api: section does not render: %v", err)
		}
		for _, o := range objs {
			name := o["metadata"].(map[string]any)["name"].(string)
			if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
				t.Fatalf("rendered %s %q: %v", o["kind"], name, msgs)
			}
		}
	})
}

func TestAnalysisSpec(t *testing.T) {
	spec, err := ParseSpec([]byte("name: web\nports: [{name: http, containerPort: 80}]\nanalysis: {maxErrorRate: 0.5%, maxResponseTime: 300ms, minRequests: 50, window: 10s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := spec.Analysis
	if a.MaxErrorRate.Value != 0.5 || a.MaxResponseTime.Duration != 300*time.Millisecond || a.MinRequests != 50 || a.Window.Duration != 10*time.Second {
		t.Fatalf("analysis %+v", a)
	}
	spec, err = ParseSpec([]byte("name: web\nports: [{name: http, containerPort: 80}]\nanalysis: {maxErrorRate: 0}\n"))
	if err != nil || spec.Analysis.MaxErrorRate.Value != 0 {
		t.Fatalf("maxErrorRate 0 (no error allowed) must stay 0: %v %+v", err, spec)
	}
}

func TestSourceSpec(t *testing.T) {
	for _, r := range []string{"https://git.example.com/team/app.git", "git@git.example.com:team/app.git", "ssh://git@git.example.com/team/app"} {
		spec, err := ParseSpec([]byte("name: web\nports: [{name: http, containerPort: 8080}]\nsource: {repository: '" + r + "'}\n"))
		if err != nil || spec.Source.Repository != r {
			t.Errorf("source.repository %s: %v, %+v", r, err, spec)
		}
	}
}

// With source.repository set, promote asks CheckSource about the image
// before it touches the cluster, and refuses what it refuses; without a
// checker (--allow-unsigned) it says the source is not checked.
func TestPromoteChecksSourceFirst(t *testing.T) {
	spec, err := ParseSpec([]byte("name: web\nports: [{name: http, containerPort: 8080}]\nsource: {repository: 'https://git.example.com/team/app'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	p := &Promoter{CheckSource: func(_ context.Context, image, repo string) error {
		asked = append(asked, image+" "+repo)
		return errors.New("built from https://git.example.com/team/other")
	}}
	_, err = p.Promote(context.Background(), Request{Spec: spec, Image: "reg.example.com/team/web@sha256:0123"})
	if err == nil || !strings.Contains(err.Error(), "refusing to promote reg.example.com/team/web@sha256:0123: built from https://git.example.com/team/other") {
		t.Errorf("promote of an image from another repository: %v", err)
	}
	if len(asked) != 1 || asked[0] != "reg.example.com/team/web@sha256:0123 https://git.example.com/team/app" {
		t.Errorf("CheckSource asked %v", asked)
	}
	var out strings.Builder
	p = &Promoter{Out: &out}
	if err := p.checkSource(context.Background(), spec, "reg.example.com/team/web@sha256:0123"); err != nil || !strings.Contains(out.String(), "is not checked") {
		t.Errorf("no checker: %v, %q", err, out.String())
	}
	spec.Source.Repository = ""
	p = &Promoter{CheckSource: func(context.Context, string, string) error { return errors.New("asked") }}
	if err := p.checkSource(context.Background(), spec, "x"); err != nil {
		t.Errorf("a spec without source.repository: %v", err)
	}
}

// An image read back from the rollout state (resume, rollback) passes the
// source check too: the state ConfigMap can be written by more than
// promote.
func TestRecordedImageChecksSource(t *testing.T) {
	spec, err := ParseSpec([]byte("name: web\nports: [{name: http, containerPort: 8080}]\nsource: {repository: 'https://git.example.com/team/app'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := &Promoter{
		VerifyRecorded: func(context.Context, string) error { return nil },
		CheckSource: func(context.Context, string, string) error {
			return errors.New("built from https://git.example.com/team/other")
		},
	}
	err = p.verifyRecorded(context.Background(), spec, "reg.example.com/team/web@sha256:0123")
	if err == nil || !strings.Contains(err.Error(), "recorded in the rollout state, fails the source check (built from https://git.example.com/team/other)") {
		t.Errorf("a recorded image from another repository: %v", err)
	}
}
