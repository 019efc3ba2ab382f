package doctor

import (
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/platform"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func examplePlatform(t *testing.T) *platform.Spec {
	t.Helper()
	spec, err := platform.LoadSpec("../../templates/platform/platform.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func findingsOf(fs []Finding, check string) map[string]Finding {
	out := map[string]Finding{}
	for _, f := range fs {
		if f.Check == check {
			out[f.Severity.String()+" "+f.Object] = f
		}
	}
	return out
}

// TestDoctorSeedClusterAgainstPlatformYAML: the seed cluster compared
// with the example platform.yaml shows what it lacks (www3, a worker of
// three), the version it should run, and that installed components could
// not be checked from a snapshot without Helm's records.
func TestDoctorSeedClusterAgainstPlatformYAML(t *testing.T) {
	got := findingsOf(Analyze(seedSnapshot(t), Options{Now: testDay, Expected: examplePlatform(t)}), CheckExpected)
	want := map[string]string{
		"warning node/www3": "platform.yaml's agent www3 (10.251.50.3) is not a node",
		"warning cluster":   "", // two of them share the key; checked below
		"info components":   "installed components not checked",
		"warning node/db1":  "server taint node-role.kubernetes.io/control-plane=true:NoSchedule from platform.yaml is missing",
		"warning node/db2":  "server taint",
		"warning node/db3":  "server taint",
	}
	for key, fragment := range want {
		f, ok := got[key]
		if !ok {
			t.Errorf("missing %q in %v", key, keysOf(got))
			continue
		}
		if !strings.Contains(f.Problem, fragment) {
			t.Errorf("%s: problem %q lacks %q", key, f.Problem, fragment)
		}
	}
	all := Analyze(seedSnapshot(t), Options{Now: testDay, Expected: examplePlatform(t)})
	var texts []string
	for _, f := range all {
		texts = append(texts, f.Severity.String()+" "+f.Check+" "+f.Object+": "+f.Problem)
	}
	joined := strings.Join(texts, "\n")
	for _, fragment := range []string{
		"warning platform-spec cluster: 2 of 3 workers from platform.yaml are nodes",
		"warning platform-spec cluster: platform.yaml pins k3s v1.34.10+k3s1; nodes run another: db1 v1.20.4+k3s1, db2 v1.20.4+k3s1",
		"warning kubernetes-version platform.yaml k3s.version: Kubernetes v1.34.10+k3s1 is out of upstream support since 2026-10-27",
	} {
		if !strings.Contains(joined, fragment) {
			t.Errorf("missing %q in:\n%s", fragment, joined)
		}
	}
	for _, f := range all {
		if f.Check == CheckExpected && (f.Why == "" || f.Fix == "") {
			t.Errorf("%s %s lacks why or fix", f.Check, f.Object)
		}
	}
}

func keysOf(m map[string]Finding) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestDoctorReadsHelmReleasesAsHelmWritesThem: release Secrets written by
// Helm's own storage driver are read back, and components missing, failed
// or at another version than pinned are reported.
func TestDoctorReadsHelmReleasesAsHelmWritesThem(t *testing.T) {
	cs := fake.NewSimpleClientset() // only stores what Helm's driver encodes; no API behaviour is tested
	store := func(ns, name, chartVersion string, revision int, status release.Status) {
		d := driver.NewSecrets(cs.CoreV1().Secrets(ns))
		rel := &release.Release{Name: name, Namespace: ns, Version: revision,
			Info:  &release.Info{Status: status},
			Chart: &chart.Chart{Metadata: &chart.Metadata{Name: name, Version: chartVersion}}}
		if err := d.Create(ns+"."+name+".v"+string(rune('0'+revision)), rel); err != nil {
			t.Fatal(err)
		}
	}
	store("metallb-system", "metallb", "0.16.1", 1, release.StatusDeployed)
	store("longhorn-system", "longhorn", "1.12.1", 2, release.StatusDeployed) // older than pinned
	store("harbor", "harbor", "1.18.4", 1, release.StatusSuperseded)
	store("harbor", "harbor", "1.18.4", 2, release.StatusFailed) // the newest revision counts
	store("jenkins", "jenkins", "5.9.53", 1, release.StatusDeployed)

	s := seedSnapshot(t)
	if err := collectReleases(t.Context(), cs, s); err != nil {
		t.Fatal(err)
	}
	if !s.ReleasesRead || len(s.Releases) != 4 {
		t.Fatalf("releases read %v: %+v", s.ReleasesRead, s.Releases)
	}
	got := findingsOf(Analyze(s, Options{Now: testDay, Expected: examplePlatform(t)}), CheckExpected)
	for key, fragment := range map[string]string{
		"warning component/longhorn": "chart longhorn 1.12.1 is installed; platform.yaml pins 1.12.2",
		"critical component/harbor":  "Helm release harbor/harbor is failed (revision 2)",
		"warning component/keycloak": "not installed (no Helm release keycloak in namespace keycloak)",
		"warning component/rancher":  "not installed",
	} {
		if f, ok := got[key]; !ok || !strings.Contains(f.Problem, fragment) {
			t.Errorf("%s: want %q, got %+v (all: %v)", key, fragment, f, keysOf(got))
		}
	}
	for _, clean := range []string{"component/metallb", "component/jenkins"} {
		for k := range got {
			if strings.HasSuffix(k, " "+clean) {
				t.Errorf("unexpected finding %s", k)
			}
		}
	}
}

// TestDoctorVersions: the support window and version skew.
func TestDoctorVersions(t *testing.T) {
	cases := []struct {
		versions []string
		now      time.Time
		want     []string // "severity problem-fragment"
	}{
		{[]string{"v1.35.3+k3s1", "v1.35.3+k3s1"}, testDay, nil},
		{[]string{"v1.34.2", "v1.34.2"}, testDay, []string{"warning out of upstream support since 2026-10-27"}},
		{[]string{"v1.31.2"}, testDay, []string{"critical out of upstream support since 2025-10-28 (1.1 years)"}},
		{[]string{"v1.35.3+k3s1", "v1.34.2+k3s1"}, testDay, []string{"warning nodes run different kubelet versions: v1.34.2+k3s1 on n1; v1.35.3+k3s1 on n0", "warning out of upstream support"}},
		{[]string{"v1.99.0"}, testDay, []string{"info newer than doctor's support table"}},
		{[]string{"v1.14.0"}, testDay, []string{"critical out of upstream support since before 2021"}},
	}
	for _, tc := range cases {
		s := &Snapshot{}
		for i, v := range tc.versions {
			n := corev1.Node{}
			n.Name = "n" + string(rune('0'+i))
			n.Status.NodeInfo.KubeletVersion = v
			s.Nodes = append(s.Nodes, n)
		}
		a := &analysis{s: s, opts: Options{Now: tc.now}}
		a.versions()
		var got []string
		for _, f := range a.findings {
			got = append(got, f.Severity.String()+" "+f.Problem)
		}
		if len(got) != len(tc.want) {
			t.Errorf("%v: got %q, want %d findings like %q", tc.versions, got, len(tc.want), tc.want)
			continue
		}
		for i, w := range tc.want {
			sev, fragment, _ := strings.Cut(w, " ")
			if !strings.HasPrefix(got[i], sev+" ") || !strings.Contains(got[i], fragment) {
				t.Errorf("%v: finding %d is %q, want %q", tc.versions, i, got[i], w)
			}
		}
	}
}
