//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/test/lab"
)

// echoImage builds test/e2e/testdata/echo into an image FROM scratch and
// imports it into every node; it returns the image's name in containerd.
func echoImage(ctx context.Context, t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, "echo"), "./testdata/echo")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the echo app: %v: %s", err, out)
	}
	df := "FROM scratch\nCOPY echo /echo\nUSER 65534:65534\nENTRYPOINT [\"/echo\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := "tsys-lab/echo:e2e"
	if out, err := exec.CommandContext(ctx, "docker", "build", "-q", "-t", ref, dir).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", ref).Run() })
	archive := filepath.Join(dir, "lab-echo-e2e.tar")
	if out, err := exec.CommandContext(ctx, "docker", "save", "-o", archive, ref).CombinedOutput(); err != nil {
		t.Fatalf("docker save: %v: %s", err, out)
	}
	if err := theLab.ImportImage(ctx, archive); err != nil {
		t.Fatal(err)
	}
	// Not re-imported at every later boot: it is this test's.
	t.Cleanup(func() { _ = theLab.ForgetImage(archive) })
	return "docker.io/" + ref
}

// Pod networking across nodes and ClusterIPs work: a client pod on the one
// www node with no echo replica reaches both replicas, on the two other www
// nodes, through the Service's ClusterIP (CNI bridge + host-local per node,
// routes between nodes, kube-proxy in iptables mode).
func TestServiceReachesPodsOnOtherNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := client(t)
	ns := namespace(t, c, "e2e-net-")
	image := echoImage(ctx, t)

	two := int32(2)
	labels := map[string]string{"app": "echo"}
	_, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &two,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
							LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
							TopologyKey:   "kubernetes.io/hostname",
						}},
					}},
					Containers: []corev1.Container{{
						Name: "echo", Image: image, ImagePullPolicy: corev1.PullNever,
						Args:  []string{"serve", ":8080"},
						Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
						// The kubelet's probe crosses the node's bridge.
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := c.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	servers := waitReadyPods(ctx, t, c, ns, "app=echo", 2)
	used := map[string]bool{}
	for _, p := range servers {
		used[p.Spec.NodeName] = true
		t.Logf("echo replica %s on %s (%s)", p.Name, p.Spec.NodeName, p.Status.PodIP)
	}
	var clientNode string
	for _, n := range lab.Nodes {
		if n.Role == "www" && !used[n.Name] {
			clientNode = n.Name
		}
	}
	if clientNode == "" {
		t.Fatalf("both replicas' nodes %v leave no www node free for the client", used)
	}

	zero := int32(0)
	url := fmt.Sprintf("http://%s/", svc.Spec.ClusterIP)
	_, err = c.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "client"},
		Spec: batchv1.JobSpec{
			BackoffLimit: &zero,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "client"}},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					NodeSelector:  map[string]string{"kubernetes.io/hostname": clientNode},
					Containers: []corev1.Container{{
						Name: "get", Image: image, ImagePullPolicy: corev1.PullNever,
						Args: []string{"get", url, "2", "60s"},
					}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		job, err := c.BatchV1().Jobs(ns).Get(ctx, "client", metav1.GetOptions{})
		if err == nil && (job.Status.Succeeded > 0 || job.Status.Failed > 0) {
			logs := podLogs(ctx, c, ns, "app=client")
			if job.Status.Failed > 0 {
				t.Fatalf("the client on %s did not reach both replicas through %s:\n%s", clientNode, url, logs)
			}
			t.Logf("client on %s through %s:\n%s", clientNode, url, logs)
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("client Job did not finish: %v\n%s", err, podLogs(context.Background(), c, ns, "app=client"))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// waitReadyPods waits for n Ready pods matching selector.
func waitReadyPods(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, selector string, n int) []corev1.Pod {
	t.Helper()
	for {
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err == nil {
			var ready []corev1.Pod
			for _, p := range pods.Items {
				for _, cond := range p.Status.Conditions {
					if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
						ready = append(ready, p)
					}
				}
			}
			if len(ready) >= n {
				return ready
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("fewer than %d Ready pods %s in %s before the deadline (%v)", n, selector, ns, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// podLogs returns the logs of the pods matching selector (through the API
// server and the kubelet), or why they could not be had.
func podLogs(ctx context.Context, c kubernetes.Interface, ns, selector string) string {
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "(listing pods: " + err.Error() + ")"
	}
	var out string
	for _, p := range pods.Items {
		b, err := c.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			out += fmt.Sprintf("(logs of %s: %v)\n", p.Name, err)
			continue
		}
		out += string(b)
	}
	return out
}
