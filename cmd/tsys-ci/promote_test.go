package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/rollout"
)

func runPromoteCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, errOut, err := runApp(t, args...)
	return out + errOut, err
}

// TestPromoteUsageErrors: bad input is refused with exit 2 and a message
// saying what to do, before any cluster is contacted.
func TestPromoteUsageErrors(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "tsys-ci.yaml")
	if err := os.WriteFile(spec, []byte("name: shop\nports: [{name: http, containerPort: 8080}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: shop\nreplicas: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"promote", "--spec", spec}, 2, "takes one argument"},
		{[]string{"promote", "--spec", spec, "other"}, 2, `describes app "shop", not "other"`},
		{[]string{"promote", "--spec", bad, "shop"}, 2, "replicas: must be at least 1"},
		{[]string{"promote", "--spec", spec, "shop"}, 2, "say what to promote"},
		{[]string{"promote", "--spec", spec, "--image", "a", "--from", "b", "shop"}, 2, "not both"},
		{[]string{"promote", "--spec", spec, "--from", filepath.Join(dir, "none.json"), "shop"}, 2, "none.json"},
		{[]string{"promote", "--spec", spec, "--image", "reg/shop:v1", "shop"}, 2, "pass --verify-key cosign.pub, or --allow-unsigned"},
		{[]string{"promote", "--spec", spec, "--image", "reg/shop:v1", "--verify-key", "k", "--allow-unsigned", "shop"}, 2, "not both"},
		{[]string{"promote", "--spec", spec, "--image", "reg/shop:v1", "--verify-key", filepath.Join(dir, "none.pub"), "shop"}, 2, "reading --verify-key"},
		{[]string{"promote", "--spec", spec, "--image", "Not A Ref", "--allow-unsigned", "shop"}, 2, "not a valid reference"},
		{[]string{"status", "--spec", spec, "-o", "yaml", "shop"}, 2, `-o "yaml": use text or json`},
		{[]string{"status", "-n", "shop", "-o", "yaml", "shop"}, 2, `-o "yaml": use text or json`},
		{[]string{"status", "-n", "shop"}, 2, "takes one argument"},
		{[]string{"status", "--spec", filepath.Join(dir, "missing.yaml"), "shop"}, 2, "reading app spec"},
	}
	for _, c := range cases {
		out, err := runPromoteCLI(t, c.args...)
		if err == nil || exitCode(err) != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v (output %q), want exit %d saying %q", c.args, err, out, c.code, c.want)
		}
	}
}

func TestPrintStatus(t *testing.T) {
	at := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	given := 20
	st := &rollout.State{
		App: "shop", Phase: rollout.PhaseProbing, Strategy: rollout.StrategyBlueGreen, StartedAt: at, Message: "probing v3",
		Active:    &rollout.Release{Color: "green", Image: "reg/shop@sha256:v2"},
		Previous:  &rollout.Release{Color: "blue", Image: "reg/shop@sha256:v1"},
		Candidate: &rollout.Release{Color: "blue", Image: "reg/shop@sha256:v3"},
		History: []rollout.HistoryEntry{
			{Release: rollout.Release{Image: "reg/shop@sha256:v1"}, Strategy: "blueGreen", Result: "promoted", At: at},
			{Release: rollout.Release{Image: "reg/shop@sha256:v2"}, Strategy: "blueGreen", Result: "promoted", At: at.Add(time.Hour)},
		},
		EdgeTraffic: &rollout.EdgeTraffic{At: at, WindowSeconds: 30, Versions: []rollout.VersionTraffic{
			{Color: "blue", Image: "reg/shop@sha256:v3", Requests: 200, Failed: 1, ErrorRate: 0.5, ResponseTimeMs: 40, WeightGiven: &given}}},
		EdgeWeights: rollout.EdgeWeights{"blue": 25, "green": 75},
	}
	var out bytes.Buffer
	printStatus(&out, "shop", st)
	for _, want := range []string{
		"shop: Probing; serving reg/shop@sha256:v2 on green",
		"in progress: reg/shop@sha256:v3 on blue (blueGreen, since 2026-11-25 03:00:00Z): probing v3",
		"previous: reg/shop@sha256:v1 on blue ('tsys-ci promote --rollback shop' puts it back)",
		"  [1] 2026-11-25 04:00:00Z  promoted    reg/shop@sha256:v2 (blueGreen)",
		"  [2] 2026-11-25 03:00:00Z  promoted    reg/shop@sha256:v1 (blueGreen)",
		"at the edge (last 30 s, read 2026-11-25 03:00:00Z):\n    blue reg/shop@sha256:v3: weight asked 25%, given 20%; 200 requests, 1 failed (0.5%), response time 40 ms",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status does not say %q:\n%s", want, out.String())
		}
	}
	if strings.Index(out.String(), "v2 (blueGreen)") > strings.Index(out.String(), "v1 (blueGreen)") {
		t.Errorf("history is not newest first:\n%s", out.String())
	}
	out.Reset()
	printStatus(&out, "shop", nil)
	if out.String() != "shop: never promoted\n" {
		t.Errorf("never promoted: %q", out.String())
	}
}

func TestJUnitReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junit.xml")
	res := &rollout.Result{App: "shop", Image: "reg/shop@sha256:bad", Result: rollout.ResultRolledBack, Reason: "probe home: status 500, want 200",
		Probes: []rollout.ProbeResult{{Probe: "home", URL: "http://x/", Attempts: 4, Reason: "status 500, want 200"}}}
	if err := writeJUnit(path, res); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<testsuite name="promote shop" tests="2" failures="2"`, `<testcase name="probe home"`, `message="rolled-back: probe home: status 500, want 200"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("report does not contain %q:\n%s", want, data)
		}
	}
}
