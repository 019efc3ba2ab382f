package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/platform/doctor"
	"github.com/tsys-group/tsys-ci/test/slapd"
)

// runCombined runs tsys-ci in-process and returns stdout and stderr together.
func runCombined(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, errOut, err := runApp(t, args...)
	return out + errOut, err
}

func TestPlatformRenderWritesFiles(t *testing.T) {
	dir := t.TempDir()
	out, err := runCombined(t, "platform", "render", "-f", "../../templates/platform/platform.yaml", "-o", dir)
	if err != nil {
		t.Fatalf("platform render: %v\n%s", err, out)
	}
	for _, p := range []string{"hosts/db1/config.yaml", "hosts/www1/config.yaml", "values/longhorn.yaml", "manifests/metallb-pools.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("render did not write %s: %v", p, err)
		}
	}
}

func TestPlatformRenderBadFileExits2(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "platform.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: tsys-ci.io/v1\nkind: Platform\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := runCombined(t, "platform", "render", "-f", bad, "-o", t.TempDir())
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "hosts") {
		t.Fatalf("got %v (exit %d), want exit 2 naming the hosts field", err, exitCode(err))
	}
}

func TestPlatformLDAPReportsMissingAndExits4(t *testing.T) {
	s := slapd.Start(t)
	s.LoadLDIF(t, s.BindAccountLDIF("svc-platform", "platform-pw")+"\n"+s.UserLDIF("platform-test", "pw"))
	raw, err := os.ReadFile("../../templates/platform/platform.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.ReplaceAll(string(raw), "dc=tsys,dc=lan", s.BaseDN)
	doc = strings.Replace(doc, "ldaps://ucs.tsys.lan:7636", s.LDAPSURL, 1)
	doc = strings.Replace(doc, "/etc/tsys-ci/ucs-ca.pem", s.CAFile, 1)
	file := filepath.Join(t.TempDir(), "platform.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"TSYS_LDAP_BIND_PASSWORD": "platform-pw", "TSYS_LDAP_KEYCLOAK_PASSWORD": "x",
		"TSYS_LDAP_HARBOR_PASSWORD": "x", "TSYS_LDAP_JENKINS_PASSWORD": "x"} {
		t.Setenv(k, v)
	}
	out, err := runCombined(t, "platform", "ldap", "-f", file)
	if err == nil || exitCode(err) != 4 {
		t.Fatalf("got %v (exit %d), want exit 4\n%s", err, exitCode(err), out)
	}
	for _, want := range []string{"MISSING  bind", "dn: cn=platform-admins,cn=groups," + s.BaseDN, "# UCS checklist", "udm groups/group create"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("platform ldap output:\n%s", out)
}

func TestPlatformDoctorSeedSnapshot(t *testing.T) {
	out, err := runCombined(t, "platform", "doctor", "--snapshot", "../../platform/doctor/testdata/seed-cluster.yaml")
	if err == nil || exitCode(err) != 4 {
		t.Fatalf("got %v (exit %d), want exit 4 for a cluster with critical findings\n%s", err, exitCode(err), out)
	}
	for _, want := range []string{"CRITICAL  lb-speakers", "speaker on db1 is CrashLoopBackOff (4633 restarts)", "8 critical, 4 warning, 0 info", "3 single points of failure run only on db3"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, err = runCombined(t, "platform", "doctor", "--snapshot", "../../platform/doctor/testdata/seed-cluster.yaml", "-o", "json", "--fail-on", "never")
	if err != nil || !strings.Contains(out, `"critical": 8`) {
		t.Fatalf("json with --fail-on never: %v\n%s", err, out)
	}
	// -f platform.yaml: what the cluster should be, in the JSON report too.
	out, err = runCombined(t, "platform", "doctor", "--snapshot", "../../platform/doctor/testdata/seed-cluster.yaml",
		"-f", "../../templates/platform/platform.yaml", "-o", "json", "--fail-on", "never")
	if err != nil {
		t.Fatalf("doctor -f: %v\n%s", err, out)
	}
	var report doctor.Report
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("doctor -f -o json is not a report: %v\n%s", err, out)
	}
	found := false
	for _, f := range report.Findings {
		if f.Check == doctor.CheckExpected && f.Object == "node/www3" && strings.Contains(f.Problem, "is not a node of the cluster") {
			found = true
		}
	}
	if !found {
		t.Errorf("doctor -f names no missing www3:\n%s", out)
	}
	_, err = runCombined(t, "platform", "doctor", "--snapshot", "../../platform/doctor/testdata/seed-cluster.yaml", "-f", filepath.Join(t.TempDir(), "missing.yaml"))
	if exitCode(err) != 2 {
		t.Errorf("doctor -f with a missing file: %v (exit %d), want exit 2", err, exitCode(err))
	}
}

func TestPlatformDoctorBadKubeconfig(t *testing.T) {
	_, err := runCombined(t, "platform", "doctor", "--kubeconfig", filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.Contains(err.Error(), "kubeconfig") {
		t.Fatalf("got %v, want an error naming the kubeconfig", err)
	}
}

func TestValidateDoctorSources(t *testing.T) {
	for _, tc := range []struct {
		rendered, snapshot, file, charts string
		want                             string
	}{
		{"r", "", "p.yaml", "c", ""},
		{"", "s.yaml", "", "", ""},
		{"r", "s.yaml", "p.yaml", "", "give one"},
		{"r", "", "", "", "needs -f platform.yaml"},
		{"", "", "", "c", "only read with --rendered"},
	} {
		err := validateDoctorSources(tc.rendered, tc.snapshot, tc.file, tc.charts)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: got %v, want %q", tc, err, tc.want)
		}
	}
}

// TestPlatformDoctorRendered (issue 27): render, then doctor --rendered on
// the lab's platform.yaml, whose local chart (test/e2e) Helm renders
// without a cluster: nothing found, exit 0. A platform without Harbor's
// data services is checked in platform/doctor (TestRenderedExampleHarbor).
func TestPlatformDoctorRendered(t *testing.T) {
	dir, err := filepath.Abs("../../test/e2e/testdata/platform")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "platform.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	doc := strings.ReplaceAll(strings.ReplaceAll(string(raw), "@CHARTS@", filepath.Join(dir, "charts")), "@IMAGE@", "registry.lab.invalid/hello:v1")
	spec := filepath.Join(tmp, "platform.yaml")
	if err := os.WriteFile(spec, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCombined(t, "platform", "render", "-f", spec, "-o", filepath.Join(tmp, "r")); err != nil {
		t.Fatalf("render: %v\n%s", err, out)
	}
	out, err := runCombined(t, "platform", "doctor", "--rendered", filepath.Join(tmp, "r"), "-f", spec)
	if err != nil || !strings.Contains(out, "No single point of failure found.") {
		t.Fatalf("doctor --rendered: %v\n%s", err, out)
	}
	_, err = runCombined(t, "platform", "doctor", "--rendered", filepath.Join(tmp, "r"))
	if exitCode(err) != 2 {
		t.Errorf("doctor --rendered without -f: %v (exit %d), want exit 2", err, exitCode(err))
	}
}
