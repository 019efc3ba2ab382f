//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/tsys-group/tsys-ci/pipeline"
	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/rollout"
)

// Fixed names, so every run reuses its places on the promote pool.
const (
	serveNS      = "serve-e2e"     // serve's own namespace (the release's)
	serveRelease = "serve-e2e"     // the chart's objects are serve-e2e-serve...
	serveAppNS   = "serve-e2e-app" // the app serve deploys
	serveApp     = "serve-hello"
	serveSecret  = "serve-e2e-secrets"
	// serveReadToken reads serve's API (the lab's serve is on a lab network).
	serveReadToken = "serve-e2e-read-token-0123456789"
)

var serveFull = serveRelease + "-serve"

// serveAppSpec is the hello app's spec, its own name and namespace.
var serveAppSpec = helloSpecFor("serve-hello", "serve-e2e-app", 2, 3, blueGreenStrategy)

// serveImage builds tsys-ci statically (CGO_ENABLED=0) into a scratch
// image with tsys-ci build, as helloImage does for the app, and pushes it
// to the lab registry; it returns the reference by digest.
func serveImage(t *testing.T) string {
	t.Helper()
	bin, err := tsysCI()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	ctxDir := filepath.Join(work, "context")
	run(t, theLab.RepoRoot(), []string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(ctxDir, "tsys-ci"), "./cmd/tsys-ci")
	run(t, work, nil, bin, "build", "--base", "scratch", "--context", ctxDir, "--entrypoint", "/app/tsys-ci",
		"--port", "8080", "--user", "65532", "--commit", "e2e-serve", "--build-number", "1", "--job", "e2e",
		"--build-time", "2026-01-01T00:00:00Z")
	run(t, work, nil, bin, "push", "--repository", theAddons.Addons.Registry+"/e2e/tsys-ci-serve", "--tag", "e2e")
	b, err := os.ReadFile(filepath.Join(work, pipeline.DefaultPushResult))
	if err != nil {
		t.Fatal(err)
	}
	var pushed struct {
		Image string `json:"image"`
	}
	if err := json.Unmarshal(b, &pushed); err != nil || !strings.Contains(pushed.Image, "@sha256:") {
		t.Fatalf("push result %s: %v %s", pipeline.DefaultPushResult, err, b)
	}
	return pushed.Image
}

// installServe renders templates/serve with the Helm SDK and the lab's
// values and applies it (server-side apply, as the lab's add-ons are).
func installServe(ctx context.Context, t *testing.T, c kubernetes.Interface, image, addr string, port int32) {
	t.Helper()
	repo, digest, _ := strings.Cut(image, "@")
	vals := map[string]any{
		"image":          map[string]any{"repository": repo, "digest": digest, "pullPolicy": "IfNotPresent"},
		"existingSecret": serveSecret,
		// Issue 17 finding 1: one webhook secret per Harbor project (key e2e).
		"existingWebhookSecret": serveSecret,
		// Issue 17 finding 9: the API reads need a token (key read-token).
		"existingReadTokenSecret": serveSecret,
		"allowUnsigned":           true,
		// The lab's clients speak plain HTTP to serve; production gives
		// tls.secretName (issue 17 finding 5; TLS is tested in pipeline/serve).
		"insecurePlainHTTP": true,
		"appNamespaces":     []string{serveAppNS},
		"config": map[string]any{"registry": theAddons.Addons.Registry, "policies": []map[string]any{{
			"name": "hello", "repository": "e2e/hello", "tags": "sv*", "app": serveApp, "namespace": serveAppNS, "spec": "specs/hello.yaml"}}},
		"specs": map[string]string{"hello.yaml": serveAppSpec},
		"service": map[string]any{"type": "LoadBalancer", "port": port, "annotations": map[string]string{
			rollout.AnnotationLBIPs: addr, rollout.AnnotationAllowShared: rollout.SharingKey(addr)}},
	}
	b, err := yaml.Marshal(vals)
	if err != nil {
		t.Fatal(err)
	}
	chrt, err := loader.Load(filepath.Join(theLab.RepoRoot(), "templates", "serve"))
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	values, err := chartutil.ReadValues(b)
	if err != nil {
		t.Fatal(err)
	}
	top, err := chartutil.ToRenderValues(chrt, values, chartutil.ReleaseOptions{Name: serveRelease, Namespace: serveNS, IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(chrt, top)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		if !strings.HasSuffix(n, ".tpl") && strings.TrimSpace(files[n]) != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var all strings.Builder
	for _, n := range names {
		fmt.Fprintf(&all, "---\n# Source: %s\n%s\n", n, files[n])
	}
	path := filepath.Join(t.TempDir(), "serve.yaml")
	if err := os.WriteFile(path, []byte(all.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// Cluster-wide objects and the binding in the pool's namespace are not
	// removed with serve's namespaces.
	t.Cleanup(func() {
		bg := context.Background()
		_ = c.RbacV1().ClusterRoleBindings().Delete(bg, serveFull+"-namespaces", metav1.DeleteOptions{})
		_ = c.RbacV1().ClusterRoles().Delete(bg, serveFull+"-namespaces", metav1.DeleteOptions{})
		_ = c.RbacV1().ClusterRoles().Delete(bg, serveFull+"-promote", metav1.DeleteOptions{})
		_ = c.RbacV1().RoleBindings(rollout.DefaultAllocNamespace).Delete(bg, serveFull+"-promote", metav1.DeleteOptions{})
	})
	if out, err := theLab.Apply(ctx, path); err != nil {
		t.Fatalf("applying the serve chart: %v\n%s", err, out)
	}
}

// servePods returns serve's pods by name.
func servePods(ctx context.Context, c kubernetes.Interface) (map[string]corev1.Pod, error) {
	list, err := c.CoreV1().Pods(serveNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=tsys-ci-serve"})
	if err != nil {
		return nil, err
	}
	out := map[string]corev1.Pod{}
	for _, p := range list.Items {
		out[p.Name] = p
	}
	return out, nil
}

// serveLeader is the holder of serve's leader Lease ("" when none).
func serveLeader(ctx context.Context, c kubernetes.Interface) string {
	l, err := c.CoordinationV1().Leases(serveNS).Get(ctx, serveFull, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// serveUntil polls cond every 100 ms serveUntil it holds, failing the test with
// what at ctx's end.
func serveUntil(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// serveHarborPush is the body Harbor v2.6 sends for a push of tag (digest from
// image, by digest) to e2e/hello of the lab registry.
func serveHarborPush(image, tag string) []byte {
	_, digest, _ := strings.Cut(image, "@")
	return fmt.Appendf(nil, `{"type":"PUSH_ARTIFACT","occur_at":%d,"operator":"robot$e2e+ci","event_data":{"resources":[{"digest":%q,"tag":%q,"resource_url":%q}],"repository":{"date_created":%d,"name":"hello","namespace":"e2e","repo_full_name":"e2e/hello","repo_type":"private"}}}`,
		time.Now().Unix(), digest, tag, theAddons.Addons.Registry+"/e2e/hello:"+tag, time.Now().Add(-time.Hour).Unix())
}

// serveDeliver POSTs a Harbor event to serve's Service as Harbor's job service
// does (its auth header, a new connection per attempt) serveUntil serve accepts
// it; it retries refusals at once (Harbor waits 16-75 s) so the test
// measures serve, not Harbor's backoff. It returns the deploy IDs and the
// refusals seen.
func serveDeliver(ctx context.Context, t *testing.T, base, secret string, body []byte) ([]string, []string) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var refusals []string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/webhook/harbor", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", secret)
		resp, err := hc.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				var got struct{ Deploys []string }
				if err := json.Unmarshal(b, &got); err != nil || len(got.Deploys) != 1 {
					t.Fatalf("serve accepted the event with %s, want one deploy id (%v)", b, err)
				}
				return got.Deploys, refusals
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("serve answered the event %s: %s", resp.Status, b)
			}
			refusals = append(refusals, time.Now().UTC().Format("15:04:05.000")+" "+resp.Status)
		} else {
			refusals = append(refusals, time.Now().UTC().Format("15:04:05.000")+" "+err.Error())
		}
		select {
		case <-ctx.Done():
			t.Fatalf("serve did not accept the event before the deadline; refusals: %v", refusals)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// serveDeploys reads the recent deploys from serve's API (through its
// Service).
func serveDeploys(ctx context.Context, base string) ([]serve.DeployRecord, error) {
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/deploys", nil)
	req.Header.Set("Authorization", "Bearer "+serveReadToken)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/deploys: %s", resp.Status)
	}
	var got struct{ Deploys []serve.DeployRecord }
	err = json.NewDecoder(resp.Body).Decode(&got)
	return got.Deploys, err
}

// serveWaitDeploy waits serveUntil serve's API shows a finished deploy that match
// accepts, and returns it.
func serveWaitDeploy(ctx context.Context, t *testing.T, base, what string, match func(serve.DeployRecord) bool) serve.DeployRecord {
	t.Helper()
	var found serve.DeployRecord
	serveUntil(ctx, t, what+" in serve's recent deploys", func() bool {
		recs, err := serveDeploys(ctx, base)
		if err != nil {
			return false
		}
		for _, r := range recs {
			if match(r) && r.State == "done" {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// serveDeployEvent waits for the Kubernetes Event serve wrote on the app for
// deploy id.
func serveDeployEvent(ctx context.Context, t *testing.T, c kubernetes.Interface, id string) corev1.Event {
	t.Helper()
	var found corev1.Event
	serveUntil(ctx, t, "the Event of deploy "+id, func() bool {
		evs, err := c.CoreV1().Events(serveAppNS).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + serveApp})
		if err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.Annotations["tsys-ci.io/deploy-id"] == id {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// serveVersionWatch asks url for its version every 100 ms on a new connection
// and keeps when each answer came.
type serveVersionWatch struct {
	mu      sync.Mutex
	samples []serveVersionSample
	stop    chan struct{}
	done    chan struct{}
}

type serveVersionSample struct {
	at      time.Time
	version string // "" for a failure
}

func serveWatchVersions(url string) *serveVersionWatch {
	w := &serveVersionWatch{stop: make(chan struct{}), done: make(chan struct{})}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			v := ""
			if answer, err := get(hc, url); err == nil {
				v = strings.Fields(answer)[0]
			}
			w.mu.Lock()
			w.samples = append(w.samples, serveVersionSample{time.Now(), v})
			w.mu.Unlock()
		}
	}()
	return w
}

// allOn stops the watch and returns when it saw the first answer of
// version after which every answer was version (zero if it never did).
func (w *serveVersionWatch) allOn(version string) time.Time {
	close(w.stop)
	<-w.done
	var at time.Time
	for _, s := range w.samples {
		switch {
		case s.version != version:
			at = time.Time{}
		case at.IsZero():
			at = s.at
		}
	}
	return at
}

// TestServeDeploysHarborPushesAndSurvivesLeaderKill: tsys-ci serve runs in
// the lab from its chart (2 replicas, leader Lease, an image built by
// tsys-ci build and pushed to the lab registry). A Harbor-shaped push
// event delivered to its Service (a MetalLB address, from the host) puts
// the app's first version live, then a second by blue/green while two
// host clients keep asking the app: no failed request, the deploy in
// serve's API and as an Event on the app. Then the third version's event,
// and the leader's pod is deleted with grace 0 while that deploy runs;
// then the fourth's, and the leader's container is killed with SIGKILL;
// then a fifth whose /healthz fails, the leader SIGKILLed again. Each time
// a live replica takes the Lease and resumes the deploy from the state in
// the cluster (completing the good versions, rolling the broken one back),
// and the app ends on one version with no traffic split and no failed
// request.
func TestServeDeploysHarborPushesAndSurvivesLeaderKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	c := client(t)
	start := time.Now()
	image := serveImage(t)
	sv1, sv2, sv3 := helloImage(t, "sv1"), helloImage(t, "sv2"), helloImage(t, "sv3")
	t.Logf("images built and pushed in %s: serve %s", time.Since(start).Round(100*time.Millisecond), image)

	freshNamespace(ctx, t, c, serveNS)
	freshNamespace(ctx, t, c, serveAppNS)
	secretBytes := make([]byte, 16)
	if _, err := rand.Read(secretBytes); err != nil {
		t.Fatal(err)
	}
	secret := "Bearer " + hex.EncodeToString(secretBytes)
	if _, err := c.CoreV1().Secrets(serveNS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: serveSecret},
		StringData: map[string]string{"e2e": secret, "read-token": serveReadToken}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// serve's address comes from the promote pool like an app's.
	alloc, err := (&rollout.Allocator{Client: c, Namespace: rollout.DefaultAllocNamespace, Name: rollout.DefaultAllocName}).
		Allocate(ctx, rollout.AppKey(serveNS, serveFull), []string{"http"})
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://%s:%d", alloc.Address, alloc.Ports["http"])
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		pods, _ := servePods(context.Background(), c)
		for name := range pods {
			b, _ := c.CoreV1().Pods(serveNS).GetLogs(name, &corev1.PodLogOptions{TailLines: servePtr(int64(80))}).DoRaw(context.Background())
			t.Logf("log of %s:\n%s", name, b)
		}
	})
	start = time.Now()
	installServe(ctx, t, c, image, alloc.Address, alloc.Ports["http"])
	serveUntil(ctx, t, "2 serve replicas Ready and a leader", func() bool {
		d, err := c.AppsV1().Deployments(serveNS).Get(ctx, serveFull, metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 2 && d.Status.UpdatedReplicas == 2 && serveLeader(ctx, c) != ""
	})
	pods, err := servePods(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var where []string
	for name, p := range pods {
		where = append(where, name+" on "+p.Spec.NodeName)
	}
	sort.Strings(where)
	t.Logf("serve: 2 replicas Ready %s after apply (%s); leader %s; Service %s", time.Since(start).Round(100*time.Millisecond),
		strings.Join(where, ", "), serveLeader(ctx, c), base)

	// sv1: the app's first version.
	start = time.Now()
	ids, refused := serveDeliver(ctx, t, base, secret, serveHarborPush(sv1, "sv1"))
	rec := serveWaitDeploy(ctx, t, base, "deploy "+ids[0], func(r serve.DeployRecord) bool { return r.ID == ids[0] })
	if rec.Result != serve.ResultSucceeded {
		t.Fatalf("deploy of sv1: %s %s", rec.Result, rec.Error)
	}
	t.Logf("sv1: event accepted after %d refusal(s) %v; deployed in %.1f s (event to done %s)", len(refused), refused, rec.Seconds, time.Since(start).Round(100*time.Millisecond))
	svc, err := c.CoreV1().Services(serveAppNS).Get(ctx, serveApp, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s:%d/", svc.Annotations[rollout.AnnotationLBIPs], svc.Spec.Ports[0].Port)
	if seen := answersFrom(ctx, t, url, 1); !seen["sv1 "+firstPod(seen)] {
		t.Fatalf("%s answered %v, want sv1", url, seen)
	}

	// sv2 by blue/green under load.
	l, w := startAppLoad(t, url), serveWatchVersions(url)
	start = time.Now()
	ids, refused = serveDeliver(ctx, t, base, secret, serveHarborPush(sv2, "sv2"))
	rec = serveWaitDeploy(ctx, t, base, "deploy "+ids[0], func(r serve.DeployRecord) bool { return r.ID == ids[0] })
	took := time.Since(start)
	allNew := w.allOn("sv2")
	total, answers, failures := l.finish(t)
	report(t, "sv1 -> sv2 by a Harbor event", took, total, answers, failures)
	if rec.Result != serve.ResultSucceeded || rec.Trigger != "harbor" || rec.Tag != "sv2" || rec.Image != sv2 || rec.Policy != "hello" {
		t.Fatalf("deploy of sv2: %+v", rec)
	}
	t.Logf("sv2: event accepted after %d refusal(s); all traffic on sv2 %s after the event; deploy done after %s (serve says %.1f s)",
		len(refused), serveSinceOrNever(allNew, start), took.Round(100*time.Millisecond), rec.Seconds)
	if n := len(failures["keep-alive"]) + len(failures["new-connection"]); n != 0 {
		t.Errorf("%d requests failed during the deploy of sv2", n)
	}
	if allNew.IsZero() {
		t.Errorf("the app never answered sv2 alone")
	}
	if len(refused) != 0 {
		t.Errorf("serve's Service refused the event %d times (%v) with a leader in place; it must reach the leader only", len(refused), refused)
	}
	ev := serveDeployEvent(ctx, t, c, rec.ID)
	t.Logf("Event on %s/%s: %s %s: %s", serveAppNS, ev.InvolvedObject.Name, ev.Type, ev.Reason, ev.Message)
	if ev.Reason != "DeploySucceeded" || ev.InvolvedObject.Kind != "Service" || !strings.Contains(ev.Message, "tag sv2") {
		t.Errorf("Event of the sv2 deploy: %s %s %q", ev.InvolvedObject.Kind, ev.Reason, ev.Message)
	}

	// sv3 and sv4, serve's leader killed while each deploy runs: its pod
	// deleted with grace 0, then its container killed (SIGKILL).
	serveKillDuringDeploy(ctx, t, c, base, secret, url, "sv2", "sv3", sv2, sv3, serveKillDelete, false)
	sv4 := helloImage(t, "sv4")
	serveKillDuringDeploy(ctx, t, c, base, secret, url, "sv3", "sv4", sv3, sv4, serveKillCrash, false)
	// sv5's /healthz answers 500: the resumed promote must roll it back.
	sv5 := helloImage(t, "sv5", "HELLO_BROKEN=1")
	serveKillDuringDeploy(ctx, t, c, base, secret, url, "sv4", "sv5", sv4, sv5, serveKillCrash, true)
}

// How a drill kills serve's leader.
const (
	// serveKillDelete deletes its pod with grace 0: the API object goes at
	// once; the kubelet still sends SIGTERM and kills the container 2 s
	// later (its shortest grace), so serve hands the Lease over but its
	// deploy is cut.
	serveKillDelete = "pod deleted with grace 0"
	// serveKillCrash kills serve's process with SIGKILL (containerd on the
	// node): nothing is released; the kubelet restarts the container in
	// the same pod.
	serveKillCrash = "container killed (SIGKILL)"
)

// serveKillDuringDeploy delivers the push event of tag and kills serve's leader
// (how says mode) as soon as the deploy is under way, with the load on the
// app all along. The deploy must end completed (tag live) or rolled back
// (from live; a broken version must be rolled back), one color serving,
// no failed request.
func serveKillDuringDeploy(ctx context.Context, t *testing.T, c kubernetes.Interface, base, secret, url, from, tag, fromImage, image, mode string, broken bool) {
	t.Helper()
	var tl drillLog
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	tl.watchNamespace(watchCtx, t, serveAppNS)
	tl.watchNamespace(watchCtx, t, serveNS)
	l, w := startAppLoad(t, url), serveWatchVersions(url)
	tl.mark("load started on %s", url)
	start := time.Now()
	ids, refused := serveDeliver(ctx, t, base, secret, serveHarborPush(image, tag))
	leader := serveLeader(ctx, c)
	tl.mark("event of %s accepted by %s (deploy %v)", tag, leader, ids)
	if len(refused) != 0 {
		t.Errorf("serve's Service refused the event %d times (%v) with a leader in place; it must reach the leader only", len(refused), refused)
	}
	var phase rollout.Phase
	serveUntil(ctx, t, "the deploy of "+tag+" under way", func() bool {
		st, err := rollout.Status(ctx, c, serveAppNS, serveApp)
		if err == nil && st != nil && st.Candidate != nil && st.Candidate.Image == image && st.InProgress() {
			phase = st.Phase
			return true
		}
		return false
	})
	pod, err := c.CoreV1().Pods(serveNS).Get(ctx, leader, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the leader's pod %s: %v", leader, err)
	}
	restarts := serveRestarts(pod)
	killed := time.Now()
	tl.mark("deploy under way at phase %s; killing the leader %s (%s)", phase, leader, mode)
	switch mode {
	case serveKillDelete:
		zero := int64(0)
		err = c.CoreV1().Pods(serveNS).Delete(ctx, leader, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	case serveKillCrash:
		id := ""
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.Name == "serve" {
				_, id, _ = strings.Cut(cs.ContainerID, "://")
			}
		}
		var out []byte
		out, err = theLab.Exec(ctx, pod.Spec.NodeName, "ctr", "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id)
		if err != nil {
			err = fmt.Errorf("%w: %s", err, out)
		}
	}
	if err != nil {
		t.Fatalf("killing the leader %s (%s): %v", leader, mode, err)
	}
	t.Logf("%s: event accepted after %d refusal(s) (deploy %s) by %s; killed it (%s) %s after the event, at phase %s",
		tag, len(refused), ids[0], leader, mode, killed.Sub(start).Round(100*time.Millisecond), phase)
	// A live leader: another holder, or the same pod's restarted
	// container renewing the Lease after the kill.
	var newLeader string
	serveUntil(ctx, t, "a new serve leader", func() bool {
		l, err := c.CoordinationV1().Leases(serveNS).Get(ctx, serveFull, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			return false
		}
		newLeader = *l.Spec.HolderIdentity
		if newLeader != leader {
			return true
		}
		p, err := c.CoreV1().Pods(serveNS).Get(ctx, leader, metav1.GetOptions{})
		return err == nil && serveRestarts(p) > restarts && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(killed)
	})
	led := time.Now()
	tl.mark("leader: %s", newLeader)
	var st *rollout.State
	serveUntil(ctx, t, "the app stable again", func() bool {
		st, err = rollout.Status(ctx, c, serveAppNS, serveApp)
		return err == nil && st != nil && !st.InProgress()
	})
	stable := time.Now()
	tl.mark("app stable at phase %s", st.Phase)
	resumed := serveWaitDeploy(ctx, t, base, "the resume by the new leader", func(r serve.DeployRecord) bool {
		return r.Kind == serve.DeployResume && r.Image == image
	})
	allNew := w.allOn(tag)
	total, answers, failures := l.finish(t)
	report(t, from+" -> "+tag+", serve's leader killed mid-deploy ("+mode+")", stable.Sub(start), total, answers, failures)
	t.Logf("%s (%s): new leader %s %s after the kill; the app stable %s after the kill, %s after the event; all traffic on %s %s after the event",
		tag, mode, newLeader, led.Sub(killed).Round(100*time.Millisecond), stable.Sub(killed).Round(100*time.Millisecond),
		stable.Sub(start).Round(100*time.Millisecond), tag, serveSinceOrNever(allNew, start))
	t.Logf("%s: resume by %s: %s after %.1f s %s; history: last %s", tag, resumed.By, resumed.Result, resumed.Seconds, resumed.Error, st.History[len(st.History)-1].Result)
	tl.explainFailures(t, l, "the deploy of "+tag)
	if n := len(failures["keep-alive"]) + len(failures["new-connection"]); n != 0 {
		t.Errorf("%d requests failed during the deploy of %s and the leader's death", n, tag)
	}
	if broken && answers[tag] != 0 {
		t.Errorf("the broken %s answered %d requests on the live address", tag, answers[tag])
	}
	want, version := image, tag
	switch resumed.Result {
	case serve.ResultSucceeded:
		if broken {
			t.Fatalf("the resumed deploy of the broken %s succeeded; its probes must fail and roll it back", tag)
		}
	case serve.ResultRolledBack:
		want, version = fromImage, from
	default:
		t.Fatalf("the resumed deploy of %s ended %s: %s", tag, resumed.Result, resumed.Error)
	}
	if st.Active == nil || st.Active.Image != want || st.Candidate != nil {
		t.Fatalf("state after the resume: active %+v candidate %+v, want %s alone", st.Active, st.Candidate, version)
	}
	// No traffic split: the Service selects one color, the other color
	// has no pod, and every answer is the active version.
	svc, err := c.CoreV1().Services(serveAppNS).Get(ctx, serveApp, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Selector[rollout.LabelColor] != st.Active.Color {
		t.Errorf("the app's Service selects %v, want color %s alone", svc.Spec.Selector, st.Active.Color)
	}
	other := rollout.DeploymentName(serveApp, rollout.OtherColor(st.Active.Color))
	serveUntil(ctx, t, other+" at zero pods", func() bool {
		d, err := c.AppsV1().Deployments(serveAppNS).Get(ctx, other, metav1.GetOptions{})
		return apierrors.IsNotFound(err) || (err == nil && d.Spec.Replicas != nil && *d.Spec.Replicas == 0 && d.Status.Replicas == 0)
	})
	if got := sample(t, url, 20); len(got) != 1 || got[version] != 20 {
		t.Errorf("after the resume, 20 requests got %v, want %s alone", got, version)
	}
	ev := serveDeployEvent(ctx, t, c, resumed.ID)
	t.Logf("Event on %s/%s: %s %s: %s", serveAppNS, ev.InvolvedObject.Name, ev.Type, ev.Reason, ev.Message)
}

func serveRestarts(p *corev1.Pod) int32 {
	var n int32
	for _, cs := range p.Status.ContainerStatuses {
		n += cs.RestartCount
	}
	return n
}

func serveSinceOrNever(at, start time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return at.Sub(start).Round(100 * time.Millisecond).String()
}

func servePtr[T any](v T) *T { return &v }
