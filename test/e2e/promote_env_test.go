//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// envNS is TestPromoteEnvSecretsInTheLab's namespace (fixed: a run reuses
// its address on the pool).
const envNS = "e2e-promote-env"

// TestPromoteEnvSecretsInTheLab (issue 28): tsys-ci promote, run as
// Jenkins runs it with a secret in its environment, gives the app's pods
// that secret through the release's own Secret; the pods on real nodes
// answer it over HTTP (hello's /env). A changed value is a new release
// with a new Secret, and the new pods answer the new value; a broken third
// version with yet another value is rolled back on its own (exit 3) and
// the pods still answer the second; a promote with the variable unset
// exits 2 and changes nothing. No value is in promote's stdout, stderr,
// JUnit report, status, or the namespace's Events.
func TestPromoteEnvSecretsInTheLab(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	c := client(t)
	v1, v2 := helloImage(t, "v1"), helloImage(t, "v2")
	v3 := helloImage(t, "v3", "HELLO_BROKEN=1")
	stamp := time.Now().UnixNano()
	values := []string{fmt.Sprintf("e2e-first-%d", stamp), fmt.Sprintf("e2e-second-%d", stamp), fmt.Sprintf("e2e-third-%d", stamp)}
	spec := helloSpec(envNS, 2, 3, blueGreenStrategy) +
		"env:\n  - {name: HELLO_SHOW_ENV, value: APP_SECRET}\n  - {name: APP_SECRET, fromEnv: E2E_APP_SECRET}\n"
	dir := specNamespace(ctx, t, c, envNS, spec)
	report := filepath.Join(dir, "junit.xml")
	var outputs []string // every output, grepped for the values at the end
	promote := func(env []string, image string) promoteRun {
		t.Helper()
		r := runPromoteEnv(t, dir, env, "--image", image, "--report", report)
		outputs = append(outputs, r.stdout, r.stderr)
		if b, err := os.ReadFile(report); err == nil {
			outputs = append(outputs, string(b))
		}
		t.Logf("promote %s: exit %d in %s, Secret %q", strings.TrimPrefix(image, theAddons.Addons.Registry+"/"), r.code, r.took.Round(100*time.Millisecond), r.result.Secret)
		return r
	}

	// v1 with the first value.
	r := promote([]string{"E2E_APP_SECRET=" + values[0]}, v1)
	if r.code != 0 || !strings.HasPrefix(r.result.Secret, moreApp+"-env-") {
		t.Fatalf("promote v1: exit %d, Secret %q\n%s", r.code, r.result.Secret, r.stderr)
	}
	promoted := time.Now()
	s1 := r.result.Secret
	url := appURL(ctx, t, c, envNS) + "env"
	firstAnswerAfter(ctx, t, url, promoted)
	if got := envAnswers(t, url, 10); len(got) != 1 || got["v1 "+values[0]] != 10 {
		t.Fatalf("after v1, /env answered %v, want v1 with the first value", redact(got, values))
	}

	// v2 with a changed value: a new Secret, the new pods answer it.
	r = promote([]string{"E2E_APP_SECRET=" + values[1]}, v2)
	if r.code != 0 || r.result.Secret == "" || r.result.Secret == s1 {
		t.Fatalf("promote v2: exit %d, Secret %q (v1's %s)\n%s", r.code, r.result.Secret, s1, r.stderr)
	}
	s2 := r.result.Secret
	if got := envAnswers(t, url, 20); len(got) != 1 || got["v2 "+values[1]] != 20 {
		t.Fatalf("after v2, /env answered %v, want v2 with the second value", redact(got, values))
	}

	// The broken v3 with a third value: rolled back on its own, v2's pods
	// still answer with the second value.
	r = promote([]string{"E2E_APP_SECRET=" + values[2]}, v3)
	if r.code != 3 {
		t.Fatalf("promote of the broken v3: exit %d, want 3 (rolled back)\n%s", r.code, r.stderr)
	}
	if got := envAnswers(t, url, 20); len(got) != 1 || got["v2 "+values[1]] != 20 {
		t.Errorf("after the rollback of v3, /env answered %v, want v2 with the second value", redact(got, values))
	}
	_, st := status(t, envNS)
	if st.Active == nil || st.Active.Image != v2 || st.Active.Secret != s2 {
		t.Errorf("after the rollback of v3 the state's active release is %+v, want v2 with %s", st.Active, s2)
	}

	// The variable unset: exit 2 naming it, nothing changed.
	before := envObjects(ctx, t, c)
	r = promote(nil, v1)
	if r.code != 2 || !strings.Contains(r.stderr, "E2E_APP_SECRET (env[1] APP_SECRET)") {
		t.Errorf("promote with E2E_APP_SECRET unset: exit %d, want 2 naming it\n%s", r.code, r.stderr)
	}
	if after := envObjects(ctx, t, c); !maps.Equal(before, after) {
		t.Errorf("the refused promote changed the namespace:\nbefore %v\nafter  %v", before, after)
	}

	// No value in anything tsys-ci wrote or recorded.
	text, st := status(t, envNS)
	b, _ := json.Marshal(st)
	outputs = append(outputs, text, string(b))
	evs, err := c.CoreV1().Events(envNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(evs)
	outputs = append(outputs, string(b))
	for i, out := range outputs {
		for _, v := range values {
			if strings.Contains(out, v) {
				t.Errorf("output %d of the test's tsys-ci runs, status or Events shows a secret value", i)
			}
		}
	}
	t.Logf("TestPromoteEnvSecretsInTheLab took %s (images built and pushed included)", time.Since(start).Round(time.Second))
}

// envAnswers GETs hello's /env n times and counts the answers.
func envAnswers(t *testing.T, url string, n int) map[string]int {
	t.Helper()
	return sampleBy(url, n, strings.TrimSpace)
}

// redact names the values in answers by their place (the test's own
// values: they are fine in its log, but a failure should read alike).
func redact(answers map[string]int, values []string) map[string]int {
	out := map[string]int{}
	for a, n := range answers {
		for i, v := range values {
			a = strings.ReplaceAll(a, v, fmt.Sprintf("<value %d>", i+1))
		}
		out[a] += n
	}
	return out
}

// envObjects waits until the Deployments of envNS are settled (the
// rolled-back color's pods gone, the controllers' status written) and
// returns the resourceVersion of every object promote keeps there (Events
// aside), by kind/name.
func envObjects(ctx context.Context, t *testing.T, c kubernetes.Interface) map[string]string {
	t.Helper()
	var deps *appsv1.DeploymentList
	testenv.Eventually(t, "the Deployments of "+envNS+" to settle", 2*time.Minute, func() bool {
		var err error
		if deps, err = c.AppsV1().Deployments(envNS).List(ctx, metav1.ListOptions{}); err != nil {
			return false
		}
		for _, d := range deps.Items {
			if d.Status.ObservedGeneration != d.Generation || d.Status.Replicas != *d.Spec.Replicas || d.Status.ReadyReplicas != *d.Spec.Replicas {
				return false
			}
		}
		pods, err := c.CoreV1().Pods(envNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		want := int32(0)
		for _, d := range deps.Items {
			want += *d.Spec.Replicas
		}
		return int32(len(pods.Items)) == want
	})
	out := map[string]string{}
	for _, o := range deps.Items {
		out["Deployment/"+o.Name] = o.ResourceVersion
	}
	svcs, err := c.CoreV1().Services(envNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range svcs.Items {
		out["Service/"+o.Name] = o.ResourceVersion
	}
	cms, err := c.CoreV1().ConfigMaps(envNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range cms.Items {
		out["ConfigMap/"+o.Name] = o.ResourceVersion
	}
	secs, err := c.CoreV1().Secrets(envNS).List(ctx, metav1.ListOptions{LabelSelector: rollout.LabelEnvSecret + "=true"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range secs.Items {
		out["Secret/"+o.Name] = o.ResourceVersion
	}
	leases, err := c.CoordinationV1().Leases(envNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range leases.Items {
		out["Lease/"+o.Name] = o.ResourceVersion
	}
	return out
}
