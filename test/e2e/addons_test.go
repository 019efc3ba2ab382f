//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/pipeline"
)

// tsysCI builds the tsys-ci binary once for the tests that run it.
var tsysCI = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "e2e-tsys-ci-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tsys-ci")
	out, err := exec.Command("go", "build", "-o", bin, filepath.Join(theLab.RepoRoot(), "cmd", "tsys-ci")).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/tsys-ci: %v\n%s", err, out)
	}
	return bin, nil
})

// run runs a program and fails the test with its output if it fails.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var (
	helloMu     sync.Mutex
	helloPushed = map[string]string{}
)

// helloImage builds testdata/hello (a static Go HTTP server) into a scratch
// image with tsys-ci build and pushes it to the lab registry from the host
// with tsys-ci push; it returns the pushed reference (by digest). Once per
// tag and test binary. The image's HELLO_VERSION is the tag; env adds
// other variables (HELLO_BROKEN=1).
func helloImage(t *testing.T, tag string, env ...string) string {
	t.Helper()
	helloMu.Lock()
	defer helloMu.Unlock()
	if ref, ok := helloPushed[tag]; ok {
		return ref
	}
	bin, err := tsysCI()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	ctxDir := filepath.Join(work, "context")
	run(t, filepath.Join(theLab.RepoRoot(), "test", "e2e", "testdata", "hello"), []string{"CGO_ENABLED=0"},
		"go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(ctxDir, "hello"), ".")
	args := []string{"build", "--base", "scratch", "--context", ctxDir, "--entrypoint", "/app/hello",
		"--port", "8080", "--user", "65532", "--commit", "e2e" + tag, "--build-number", "1", "--job", "e2e",
		"--build-time", "2026-01-01T00:00:00Z", "--env", "HELLO_VERSION=" + tag}
	for _, e := range env {
		args = append(args, "--env", e)
	}
	run(t, work, nil, bin, args...)
	run(t, work, nil, bin, "push", "--repository", theAddons.Addons.Registry+"/e2e/hello", "--tag", tag)
	b, err := os.ReadFile(filepath.Join(work, pipeline.DefaultPushResult))
	if err != nil {
		t.Fatal(err)
	}
	var pushed struct {
		Image string `json:"image"`
	}
	if err := json.Unmarshal(b, &pushed); err != nil || pushed.Image == "" {
		t.Fatalf("push result %s: %v %s", pipeline.DefaultPushResult, err, b)
	}
	helloPushed[tag] = pushed.Image
	return pushed.Image
}

// wwwSpread places pods on the www nodes, one per node.
func wwwSpread(app string) *corev1.Affinity {
	return &corev1.Affinity{
		NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
				Key: "node-role.kubernetes.io/worker", Operator: corev1.NodeSelectorOpExists,
			}}}},
		}},
		PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
			TopologyKey:   "kubernetes.io/hostname",
		}}},
	}
}

// TestHelloOverMetalLB: an image built with tsys-ci build and pushed to the
// lab registry from the host runs as a 2-replica Deployment on two www
// nodes (pulled by their containerd), and both replicas answer the host
// through the MetalLB address of its LoadBalancer Service.
func TestHelloOverMetalLB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := client(t)
	image := helloImage(t, "v1")
	t.Logf("pushed %s", image)
	ns := namespace(t, c, "e2e-hello-")
	labels := map[string]string{"app": "hello"}
	two := int32(2)
	_, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &two,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Affinity: wwwSpread("hello"),
					Containers: []corev1.Container{{
						Name: "hello", Image: image, ImagePullPolicy: corev1.PullAlways,
						Env: []corev1.EnvVar{{Name: "HELLO_VERSION", Value: "v1"}, {Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
						Ports:          []corev1.ContainerPort{{ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
					}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// An address the lab keeps for itself (not promote's pool).
	addr := theAddons.Addons.PoolFirst.Next()
	_, err = c.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Annotations: map[string]string{"metallb.universe.tf/loadBalancerIPs": addr.String()}},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, Selector: labels,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	pods := waitReadyPods(ctx, t, c, ns, "app=hello", 2)
	t.Logf("2 replicas Ready %s after create, on %s and %s", time.Since(start).Round(100*time.Millisecond), pods[0].Spec.NodeName, pods[1].Spec.NodeName)
	for _, p := range pods {
		if !strings.HasPrefix(p.Spec.NodeName, "www") {
			t.Errorf("pod %s on %s, want a www node", p.Name, p.Spec.NodeName)
		}
	}
	if pods[0].Spec.NodeName == pods[1].Spec.NodeName {
		t.Errorf("both replicas on %s", pods[0].Spec.NodeName)
	}
	seen := answersFrom(ctx, t, "http://"+addr.String()+"/", 2)
	t.Logf("answers through %s from the host, %s after create: %v", addr, time.Since(start).Round(100*time.Millisecond), seen)
	for _, p := range pods {
		if !seen["v1 "+p.Name] {
			t.Errorf("no answer from pod %s; answers: %v", p.Name, seen)
		}
	}
}

// answersFrom GETs url until it saw n different answers (or the context
// ends) and returns how often it saw each.
func answersFrom(ctx context.Context, t *testing.T, url string, n int) map[string]bool {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	seen := map[string]bool{}
	var last string
	for len(seen) < n {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				seen[strings.TrimSpace(string(b))] = true
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d different answers from %s before the deadline, want %d: %v (last: %s)", len(seen), url, n, seen, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return seen
}

// TestReplicatedVolumeAcrossNodes: a file written to a `replicated` volume
// by a pod on www1 is read back by a pod on www3, and is on every brick.
func TestReplicatedVolumeAcrossNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := client(t)
	image := helloImage(t, "v1")
	ns := namespace(t, c, "e2e-replicated-")
	class := "replicated"
	_, err := c.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("written on www1 at %s", time.Now().UTC().Format(time.RFC3339Nano))
	runPod(ctx, t, c, ns, "writer", "www1", image, "write", "/data/e2e/note.txt", text)
	got := runPod(ctx, t, c, ns, "reader", "www3", image, "read", "/data/e2e/note.txt")
	if got != text {
		t.Errorf("the pod on www3 read %q, want %q (written on www1)", got, text)
	}
	pvc, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"db1", "db2", "db3"} {
		path := fmt.Sprintf("/srv/gluster/replicated/brick/%s_%s_data/e2e/note.txt", pvc.Spec.VolumeName, ns)
		if out, err := theLab.Exec(ctx, db, "cat", path); err != nil || string(out) != text {
			t.Errorf("%s's brick: %s: %v %q", db, path, err, out)
		}
	}
}

// runPod runs the hello image with args on node until it exits 0 and
// returns its log.
func runPod(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, name, node, image string, args ...string) string {
	t.Helper()
	_, err := c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName: node, RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "c", Image: image, Args: args,
				VolumeMounts: []corev1.VolumeMount{{Name: "d", MountPath: "/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			switch p.Status.Phase {
			case corev1.PodSucceeded:
				b, err := c.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
				if err != nil {
					t.Fatalf("logs of %s: %v", name, err)
				}
				return string(b)
			case corev1.PodFailed:
				b, _ := c.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
				t.Fatalf("pod %s on %s failed: %s %s", name, node, p.Status.Message, b)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pod %s on %s did not finish before the deadline (%v)", name, node, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
