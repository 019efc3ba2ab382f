//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/tsys-group/tsys-ci/platform"
	"github.com/tsys-group/tsys-ci/platform/doctor"
)

// platformNS is the lab namespace of a component (testdata/platform/platform.yaml).
func platformNS(component string) string { return "platform-" + component }

// labPlatform is the lab's platform.yaml (testdata/platform) with its chart
// path and image filled in and, per component, lab values set over it.
type labPlatform struct {
	t      *testing.T
	path   string
	base   map[string]any
	values map[string]map[string]any // component -> lab.<key> -> value
}

func newLabPlatform(t *testing.T, image string) *labPlatform {
	t.Helper()
	dir := filepath.Join(theLab.RepoRoot(), "test", "e2e", "testdata", "platform")
	raw, err := os.ReadFile(filepath.Join(dir, "platform.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.ReplaceAll(string(raw), "@CHARTS@", filepath.Join(dir, "charts"))
	doc = strings.ReplaceAll(doc, "@IMAGE@", image)
	var base map[string]any
	if err := yaml.Unmarshal([]byte(doc), &base); err != nil {
		t.Fatal(err)
	}
	return &labPlatform{t: t, path: filepath.Join(t.TempDir(), "platform.yaml"), base: base, values: map[string]map[string]any{}}
}

// set changes lab.<key> of a component and rewrites the file.
func (p *labPlatform) set(component, key string, value any) {
	if p.values[component] == nil {
		p.values[component] = map[string]any{}
	}
	p.values[component][key] = value
	p.write()
}

func (p *labPlatform) write() {
	p.t.Helper()
	raw, err := json.Marshal(p.base) // deep copy
	if err != nil {
		p.t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		p.t.Fatal(err)
	}
	for comp, kv := range p.values {
		lab := doc["components"].(map[string]any)[comp].(map[string]any)["values"].(map[string]any)["lab"].(map[string]any)
		for k, v := range kv {
			lab[k] = v
		}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(p.path, out, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// cliRun is one tsys-ci run: exit code, stdout, stderr, wall time.
type cliRun struct {
	exit           int
	stdout, stderr string
	took           time.Duration
}

func (p *labPlatform) run(args ...string) cliRun {
	p.t.Helper()
	bin, err := tsysCI()
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"platform"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+theLab.Kubeconfig())
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	r := cliRun{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.exit = exit.ExitCode()
	case err != nil:
		p.t.Fatalf("tsys-ci platform %s: %v", strings.Join(args, " "), err)
	}
	return r
}

func (p *labPlatform) plan() cliRun { return p.run("plan", "-f", p.path) }

func (p *labPlatform) apply(timeout string) cliRun {
	return p.run("apply", "-f", p.path, "--timeout", timeout)
}

// releaseRevisions reads every component's Helm release history from its
// storage Secrets (owner=helm): revision -> status.
func releaseRevisions(ctx context.Context, t *testing.T, c kubernetes.Interface) map[string]map[int]string {
	t.Helper()
	out := map[string]map[int]string{}
	for _, comp := range platform.ComponentOrder {
		secrets, err := c.CoreV1().Secrets(platformNS(comp)).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + comp})
		if err != nil {
			t.Fatalf("reading the release of %s: %v", comp, err)
		}
		out[comp] = map[int]string{}
		for _, s := range secrets.Items {
			v, err := strconv.Atoi(s.Labels["version"])
			if err != nil {
				t.Fatalf("release secret %s/%s has version label %q", s.Namespace, s.Name, s.Labels["version"])
			}
			out[comp][v] = s.Labels["status"]
		}
	}
	return out
}

func history(h map[int]string) string {
	var parts []string
	for _, v := range slices.Sorted(func(yield func(int) bool) {
		for k := range h {
			if !yield(k) {
				return
			}
		}
	}) {
		parts = append(parts, fmt.Sprintf("%d:%s", v, h[v]))
	}
	return strings.Join(parts, " ")
}

// answer asks a component's Service through the API server's proxy.
func answer(ctx context.Context, c kubernetes.Interface, component string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	b, err := c.CoreV1().Services(platformNS(component)).ProxyGet("http", component, "8080", "/", nil).DoRaw(ctx)
	return strings.TrimSpace(string(b)), err
}

// waitAnswer waits until a component's Service answers with version.
func waitAnswer(ctx context.Context, t *testing.T, c kubernetes.Interface, component, version string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := answer(ctx, c, component)
		if err == nil && strings.HasPrefix(got, version+" ") {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer %s through its Service: %q, %v", component, version, got, err)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// removePlatformNamespaces deletes the test's namespaces (and so its
// releases) and waits until they are gone.
func removePlatformNamespaces(ctx context.Context, c kubernetes.Interface) error {
	for _, comp := range platform.ComponentOrder {
		err := c.CoreV1().Namespaces().Delete(ctx, platformNS(comp), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting namespace %s: %w", platformNS(comp), err)
		}
	}
	deadline := time.Now().Add(3 * time.Minute)
	for _, comp := range platform.ComponentOrder {
		for {
			_, err := c.CoreV1().Namespaces().Get(ctx, platformNS(comp), metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("namespace %s still there after 3 minutes (%v)", platformNS(comp), err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// TestPlatformApplyOnLab runs `tsys-ci platform apply` and `plan` (Helm v3
// SDK) against the lab with testdata/platform/platform.yaml: the six
// components, each the local chart lab-component (two replicas of the hello
// image from the lab registry, spread over nodes, a Service, a PDB), in
// namespaces platform-<component>.
//  0. A first install that never gets ready (metallb, first in the order,
//     with an image tag the lab registry does not have, 30 s timeout) stops
//     apply with a message naming it and why, the failed release is removed
//     and nothing after it is installed.
//  1. The first apply installs them in order with progress and waits for each to be ready.
//  2. plan right after shows nothing to change; a second apply changes no
//     release revision (and writes no namespace or pool).
//  3. A changed value: plan shows exactly that value and the objects it
//     changes; apply upgrades that component only.
//  4. An upgrade whose new pods never start (an image tag the lab registry
//     does not have, 30 s timeout) stops apply with a message naming the
//     component, is rolled back to the previous values, the old pods serving
//     throughout, and the component after it in the order is not touched.
//
// Also: doctor on the lab with the components installed finds nothing
// critical and nothing about them.
func TestPlatformApplyOnLab(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	c := client(t)
	if err := removePlatformNamespaces(ctx, c); err != nil {
		t.Fatalf("removing a previous run's namespaces: %v", err)
	}
	t.Cleanup(func() {
		start := time.Now()
		if err := removePlatformNamespaces(context.Background(), c); err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		t.Logf("cleanup: namespaces platform-* removed in %s", time.Since(start).Round(100*time.Millisecond))
	})
	image := helloImage(t, "v1")
	p := newLabPlatform(t, image)
	badImage := theAddons.Addons.Registry + "/e2e/hello:no-such-tag"

	// 0. A failed first install.
	p.set("metallb", "image", badImage)
	failedInstall := p.apply("30s")
	t.Logf("failing install: exit %d in %s\n%s%s", failedInstall.exit, failedInstall.took.Round(100*time.Millisecond), failedInstall.stderr, failedInstall.stdout)
	if failedInstall.exit == 0 {
		t.Fatalf("apply of a never-ready install succeeded")
	}
	for _, want := range []string{
		"namespaces: 6 of 6 changed",
		"install of metallb (lab-component-0.1.0) in platform-metallb failed: not ready within 30s",
		"; Deployment metallb: pod",
		"; the failed release was removed. Components later in the order were not touched",
		"    metallb: the failed release was removed",
	} {
		if !strings.Contains(failedInstall.stderr, want) {
			t.Errorf("apply's output lacks %q", want)
		}
	}
	if !strings.Contains(failedInstall.stderr, "ErrImagePull") && !strings.Contains(failedInstall.stderr, "ImagePullBackOff") {
		t.Errorf("the error does not say the metallb pods could not pull their image")
	}
	for comp, h := range releaseRevisions(ctx, t, c) {
		if len(h) != 0 {
			t.Errorf("%s has a release (%s) after the failed install of the first component", comp, history(h))
		}
	}
	p.set("metallb", "image", image)

	// 1. First apply.
	first := p.apply("3m")
	t.Logf("first apply: exit %d in %s\n%s%s", first.exit, first.took.Round(100*time.Millisecond), first.stderr, first.stdout)
	if first.exit != 0 {
		t.Fatalf("first apply failed (exit %d)", first.exit)
	}
	last := -1
	for i, comp := range platform.ComponentOrder {
		start := fmt.Sprintf("[%d/6] %s: install lab-component-0.1.0 in %s, waiting up to 3m0s", i+1, comp, platformNS(comp))
		done := fmt.Sprintf("[%d/6] %s: deployed, revision 1, in ", i+1, comp)
		at, end := strings.Index(first.stderr, start), strings.Index(first.stderr, done)
		if at < 0 || end < at || at < last {
			t.Errorf("progress lacks %q then %q after the previous component", start, done)
		}
		last = end
	}
	for _, want := range []string{"namespaces: 0 of 6 changed", "MetalLB pools and L2 advertisements: 2 of 2 changed"} {
		if !strings.Contains(first.stderr, want) {
			t.Errorf("progress lacks %q", want)
		}
	}
	// apply returned after Helm's wait: every Deployment is ready now.
	generations := map[string]int64{}
	for _, comp := range platform.ComponentOrder {
		d, err := c.AppsV1().Deployments(platformNS(comp)).Get(ctx, comp, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Status.ReadyReplicas != 2 {
			t.Errorf("%s has %d ready replicas right after apply, want 2", comp, d.Status.ReadyReplicas)
		}
		generations[comp] = d.Generation
	}
	cm, err := c.CoreV1().ConfigMaps(platformNS("metallb")).Get(ctx, "metallb-values", metav1.GetOptions{})
	if err != nil || !strings.Contains(cm.Data["values.yaml"], "tolerateMaster: true") {
		t.Errorf("metallb's release did not get the values platform.yaml renders (%v):\n%s", err, cm.Data["values.yaml"])
	}
	cfg, err := theLab.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pools := dyn.Resource(schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "ipaddresspools"}).Namespace(platformNS("metallb"))
	pool, err := pools.Get(ctx, "platform-lab", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the pool was not applied after MetalLB: %v", err)
	}
	t.Logf("keycloak answers %q", waitAnswer(ctx, t, c, "keycloak", "v1"))

	// Doctor with the components installed: nothing critical, nothing about them.
	doc := p.run("doctor", "--replicated-class", "replicated", "-o", "json")
	t.Logf("doctor with the platform installed: exit %d in %s", doc.exit, doc.took.Round(100*time.Millisecond))
	var report doctor.Report
	if err := json.Unmarshal([]byte(doc.stdout), &report); err != nil {
		t.Fatalf("doctor -o json: %v\n%s%s", err, doc.stdout, doc.stderr)
	}
	others := 0
	for _, f := range report.Findings {
		t.Logf("  doctor: %s %s %s: %s", f.Severity, f.Check, f.Object, f.Problem)
		switch {
		case strings.Contains(f.Object, "/platform-"):
			t.Errorf("doctor finding about a component apply installed: %s %s: %s", f.Severity, f.Object, f.Problem)
		case f.Severity == doctor.SeverityCritical && othersApp(f):
			others++
			t.Logf("  (critical, about an app another test runs now, not the platform's setup)")
		case f.Severity == doctor.SeverityCritical:
			t.Errorf("critical doctor finding with the platform installed: %s: %s", f.Object, f.Problem)
		}
	}
	if doc.exit != 0 && (doc.exit != 4 || others == 0) {
		t.Errorf("doctor exit %d with nothing critical, want 0", doc.exit)
	}

	// 2. Nothing to change: plan, then a second apply.
	before := releaseRevisions(ctx, t, c)
	plan := p.plan()
	t.Logf("plan after apply: exit %d in %s, %d bytes, %d lines\n%s%s", plan.exit, plan.took.Round(100*time.Millisecond),
		len(plan.stdout), strings.Count(plan.stdout, "\n"), plan.stdout, plan.stderr)
	if plan.exit != 0 || strings.Count(plan.stdout, " unchanged ") != 6 || strings.Count(plan.stdout, "\n") != 7 {
		t.Errorf("plan right after apply: want a header and six unchanged components, nothing else")
	}
	second := p.apply("3m")
	t.Logf("second apply: exit %d in %s\n%s", second.exit, second.took.Round(100*time.Millisecond), second.stderr)
	if second.exit != 0 || strings.Count(second.stderr, ": unchanged (lab-component-0.1.0 (revision 1, deployed))") != 6 ||
		!strings.Contains(second.stderr, "namespaces: 0 of 6 changed") || !strings.Contains(second.stderr, "L2 advertisements: 0 of 2 changed") {
		t.Errorf("the second apply changed something or failed")
	}
	after := releaseRevisions(ctx, t, c)
	for _, comp := range platform.ComponentOrder {
		if history(after[comp]) != history(before[comp]) || history(after[comp]) != "1:deployed" {
			t.Errorf("%s: release history %q before the second apply, %q after; want 1:deployed both", comp, history(before[comp]), history(after[comp]))
		}
		d, err := c.AppsV1().Deployments(platformNS(comp)).Get(ctx, comp, metav1.GetOptions{})
		if err != nil || d.Generation != generations[comp] {
			t.Errorf("%s's Deployment was rewritten by the second apply (generation %d -> %d, %v)", comp, generations[comp], d.Generation, err)
		}
	}
	if again, err := pools.Get(ctx, "platform-lab", metav1.GetOptions{}); err != nil || again.GetResourceVersion() != pool.GetResourceVersion() {
		t.Errorf("the pool was rewritten by the second apply (%v)", err)
	}

	// 3. One changed value.
	p.set("keycloak", "version", "v2")
	plan = p.plan()
	t.Logf("plan with keycloak's lab.version changed: exit %d in %s, %d bytes, %d lines\n%s%s", plan.exit, plan.took.Round(100*time.Millisecond),
		len(plan.stdout), strings.Count(plan.stdout, "\n"), plan.stdout, plan.stderr)
	wantChanges := []string{
		`keycloak: values lab.version: "v1" -> "v2"`,
		`keycloak: ~ ConfigMap/keycloak-values`,
		`keycloak: ~ Deployment/keycloak`,
	}
	lines := strings.Split(strings.TrimSpace(plan.stdout), "\n")
	if plan.exit != 0 || len(lines) != 7+len(wantChanges) || strings.Join(lines[7:], "\n") != strings.Join(wantChanges, "\n") ||
		strings.Count(plan.stdout, " unchanged ") != 5 || !strings.Contains(lines[3], "keycloak") || !strings.Contains(lines[3], " upgrade ") {
		t.Errorf("plan does not show exactly keycloak's change; want keycloak upgrade and these lines after the table:\n%s", strings.Join(wantChanges, "\n"))
	}
	upgrade := p.apply("3m")
	t.Logf("apply of the change: exit %d in %s\n%s", upgrade.exit, upgrade.took.Round(100*time.Millisecond), upgrade.stderr)
	if upgrade.exit != 0 || !strings.Contains(upgrade.stderr, "[3/6] keycloak: deployed, revision 2, in ") || strings.Count(upgrade.stderr, ": unchanged (") != 5 {
		t.Errorf("apply did not upgrade keycloak alone")
	}
	t.Logf("keycloak answers %q", waitAnswer(ctx, t, c, "keycloak", "v2"))
	revs := releaseRevisions(ctx, t, c)
	for _, comp := range platform.ComponentOrder {
		want := "1:deployed"
		if comp == "keycloak" {
			want = "1:superseded 2:deployed"
		}
		if got := history(revs[comp]); got != want {
			t.Errorf("%s history %q, want %q", comp, got, want)
		}
	}

	// 4. An upgrade that never gets ready: rancher's new image tag is not in
	// the registry. jenkins, after it in the order, changes too.
	p.set("rancher", "image", badImage)
	p.set("jenkins", "version", "v2")
	load := watchAnswers(ctx, c, "rancher")
	failed := p.apply("30s")
	answers, failures := load.stop()
	t.Logf("failing upgrade: exit %d in %s\n%s%s", failed.exit, failed.took.Round(100*time.Millisecond), failed.stderr, failed.stdout)
	t.Logf("rancher's Service through the API proxy during the failed upgrade and rollback: %d answers %v, %d failed requests %v", sum(answers), answers, len(failures), failures)
	if failed.exit == 0 {
		t.Fatalf("apply of a never-ready upgrade succeeded")
	}
	for _, want := range []string{
		"upgrade of rancher (lab-component-0.1.0) in platform-rancher failed: not ready within 30s",
		"; rolled back to revision 1.",
		"Components later in the order were not touched",
		"rancher: rolled back to revision 1 in ",
	} {
		if !strings.Contains(failed.stderr, want) {
			t.Errorf("apply's output lacks %q", want)
		}
	}
	if !strings.Contains(failed.stderr, "; Deployment rancher: pod") ||
		!(strings.Contains(failed.stderr, "ErrImagePull") || strings.Contains(failed.stderr, "ImagePullBackOff")) {
		t.Errorf("the error does not say the new rancher pod could not pull its image")
	}
	if strings.Contains(failed.stderr, "jenkins: upgrade") {
		t.Errorf("jenkins, after the failed component, was upgraded")
	}
	for v := range answers {
		if !strings.HasPrefix(v, "v1") {
			t.Errorf("rancher answered %q during the failed upgrade: the never-ready pods got traffic", v)
		}
	}
	revs = releaseRevisions(ctx, t, c)
	if got := history(revs["rancher"]); got != "1:superseded 2:failed 3:deployed" {
		t.Errorf("rancher history %q, want 1:superseded 2:failed 3:deployed", got)
	}
	if got := history(revs["jenkins"]); got != "1:deployed" {
		t.Errorf("jenkins history %q, want 1:deployed (not touched)", got)
	}
	d, err := c.AppsV1().Deployments(platformNS("rancher")).Get(ctx, "rancher", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; got != image {
		t.Errorf("rancher's Deployment runs %s after the rollback, want the previous %s", got, image)
	}
	cm, err = c.CoreV1().ConfigMaps(platformNS("rancher")).Get(ctx, "rancher-values", metav1.GetOptions{})
	if err != nil || !strings.Contains(cm.Data["values.yaml"], "image: "+image) {
		t.Errorf("rancher's values after the rollback are not the previous revision's (%v)", err)
	}
	waitDeploymentSettled(ctx, t, c, "rancher")
	t.Logf("rancher answers %q after the rollback", waitAnswer(ctx, t, c, "rancher", "v1"))

	plan = p.plan()
	t.Logf("plan after the rollback: exit %d, %d bytes\n%s", plan.exit, len(plan.stdout), plan.stdout)
	if !strings.Contains(plan.stdout, fmt.Sprintf(`rancher: values lab.image: %q -> %q`, image, badImage)) ||
		!strings.Contains(plan.stdout, `jenkins: values lab.version: "v1" -> "v2"`) {
		t.Errorf("plan after the rollback does not show rancher's and jenkins' pending changes")
	}
}

// waitDeploymentSettled waits until a Deployment runs exactly its replicas,
// all updated and ready (the failed upgrade's surge pod gone).
func waitDeploymentSettled(ctx context.Context, t *testing.T, c kubernetes.Interface, component string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		d, err := c.AppsV1().Deployments(platformNS(component)).Get(ctx, component, metav1.GetOptions{})
		if err == nil && d.Status.ObservedGeneration == d.Generation && d.Status.Replicas == 2 &&
			d.Status.UpdatedReplicas == 2 && d.Status.ReadyReplicas == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not settle at 2 updated ready replicas: %+v, %v", component, d.Status, err)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// answerWatch asks a component's Service every 500 ms until stopped.
type answerWatch struct {
	stopCh   chan struct{}
	wg       sync.WaitGroup
	answers  map[string]int // version -> count
	failures []string
}

func watchAnswers(ctx context.Context, c kubernetes.Interface, component string) *answerWatch {
	w := &answerWatch{stopCh: make(chan struct{}), answers: map[string]int{}}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			got, err := answer(ctx, c, component)
			if err != nil {
				w.failures = append(w.failures, time.Now().Format("15:04:05.0")+" "+err.Error())
			} else {
				w.answers[strings.Fields(got + " ?")[0]]++
			}
			select {
			case <-w.stopCh:
				return
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *answerWatch) stop() (map[string]int, []string) {
	close(w.stopCh)
	w.wg.Wait()
	return w.answers, w.failures
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
