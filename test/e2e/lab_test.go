//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/test/lab"
)

// The cluster forms: six Ready nodes with their roles, the control-plane
// taint on db1-db3, and kubectl talks to it through the stable address.
func TestClusterHasSixReadyNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := client(t)
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]corev1.Node{}
	for _, n := range nodes.Items {
		got[n.Name] = n
	}
	for _, want := range lab.Nodes {
		n, ok := got[want.Name]
		if !ok {
			t.Errorf("node %s is not registered", want.Name)
			continue
		}
		ready := false
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			t.Errorf("node %s is not Ready: %+v", want.Name, n.Status.Conditions)
		}
		tainted := false
		for _, taint := range n.Spec.Taints {
			if taint.Key == "node-role.kubernetes.io/control-plane" && taint.Effect == corev1.TaintEffectNoSchedule {
				tainted = true
			}
		}
		if tainted != (want.Role == "db") {
			t.Errorf("node %s (role %s): control-plane taint %v", want.Name, want.Role, tainted)
		}
		if addr := internalIP(n); addr != want.IP {
			t.Errorf("node %s has address %q, want %s", want.Name, addr, want.IP)
		}
	}
	if len(nodes.Items) != len(lab.Nodes) {
		t.Errorf("%d nodes registered, want %d", len(nodes.Items), len(lab.Nodes))
	}

	kubectl, err := theLab.Kubectl(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", theLab.Kubeconfig(), "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("kubectl version: %v", err)
	}
	var v struct {
		ServerVersion struct{ GitVersion string } `json:"serverVersion"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("kubectl version output %s: %v", out, err)
	}
	sv, err := version.ParseSemantic(v.ServerVersion.GitVersion)
	if err != nil || sv.Major() != 1 || sv.Minor() != 34 {
		t.Fatalf("server version %q (%v), want v1.34.x", v.ServerVersion.GitVersion, err)
	}
	t.Logf("kubectl version: server %s", v.ServerVersion.GitVersion)
}

func internalIP(n corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// The kubelets write host-wide sysctls; the lab shields them, so the host
// keeps its own values.
func TestHostSysctlsUntouched(t *testing.T) {
	now := readSysctls()
	for k, before := range hostSysctls {
		if now[k] != before {
			t.Errorf("host /proc/sys/%s changed from %s to %s while the lab ran", k, before, now[k])
		}
	}
	inside, err := theLab.Exec(context.Background(), "www1", "cat", "/proc/sys/vm/overcommit_memory")
	if err != nil {
		t.Fatal(err)
	}
	// The kubelet sets 1 in its (shielded) view: proof it wrote, and the
	// write did not reach the host.
	if got := strings.TrimSpace(string(inside)); got != "1" {
		t.Errorf("www1 sees vm/overcommit_memory = %s, want the kubelet's 1", got)
	}
}

// With db1 frozen and cut off (the honest power loss; or killed, see
// stopMode), the API keeps serving reads and writes through the stable
// address.
func TestAPIServesWithDB1Frozen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := client(t)
	ns := namespace(t, c, "e2e-api-")

	start := time.Now()
	stopNode(t, "db1", stopMode())

	// The first write through the stable address after the freeze: HAProxy
	// must notice the dead server, and etcd may have to elect a new leader.
	deadline := time.Now().Add(90 * time.Second)
	var lastErr error
	for {
		_, lastErr = c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "first"},
			Data:       map[string]string{"at": time.Now().Format(time.RFC3339Nano)},
		}, metav1.CreateOptions{})
		if lastErr == nil || apierrors.IsAlreadyExists(lastErr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write succeeded through the stable address within 90 s of freezing db1; last error: %v", lastErr)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("db1 stopped (%s): first write through %s succeeded %s after the stop", stopMode(), lab.APIAddress, time.Since(start).Round(10*time.Millisecond))

	// From then on every read and write works.
	for i := range 20 {
		name := fmt.Sprintf("cm-%d", i)
		if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": fmt.Sprint(i)},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("write %d with db1 frozen: %v", i, err)
		}
		got, err := c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("read %d with db1 frozen: %v", i, err)
		}
		if got.Data["i"] != fmt.Sprint(i) {
			t.Fatalf("read back %v, want i=%d", got.Data, i)
		}
	}
	list, err := c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list with db1 frozen: %v", err)
	}
	if len(list.Items) < 21 {
		t.Fatalf("listed %d ConfigMaps, want at least 21", len(list.Items))
	}
}

// A pod on a www node that loses power runs again on another node; the test
// prints how long that took.
func TestPodMovesWhenItsNodeFreezes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := client(t)
	ns := namespace(t, c, "e2e-move-")
	one := int32(1)
	labels := map[string]string{"app": "mover"}
	_, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "mover"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "pause", Image: lab.PauseImage(), ImagePullPolicy: corev1.PullNever,
				}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first := waitPodRunning(ctx, t, c, ns, "")
	t.Logf("pod %s running on %s", first.Name, first.Spec.NodeName)

	start := time.Now()
	stopNode(t, first.Spec.NodeName, stopMode())
	notReady := watchNotReady(ctx, c, first.Spec.NodeName, start)
	moved := waitPodRunning(ctx, t, c, ns, first.Spec.NodeName)
	if d, ok := <-notReady; ok {
		t.Logf("%s stopped (%s): node not Ready %s after the stop", first.Spec.NodeName, stopMode(), d.Round(100*time.Millisecond))
	}
	t.Logf("%s stopped (%s): pod %s Running and Ready on %s %s after the stop",
		first.Spec.NodeName, stopMode(), moved.Name, moved.Spec.NodeName, time.Since(start).Round(100*time.Millisecond))
}

// watchNotReady reports how long after start the node stopped being Ready
// (for the log: the drill's timeline), or closes without a value if the test
// ends first.
func watchNotReady(ctx context.Context, c kubernetes.Interface, node string, start time.Time) <-chan time.Duration {
	ch := make(chan time.Duration, 1)
	go func() {
		defer close(ch)
		for ctx.Err() == nil {
			n, err := c.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
			if err == nil {
				for _, cond := range n.Status.Conditions {
					if cond.Type == corev1.NodeReady && cond.Status != corev1.ConditionTrue {
						ch <- time.Since(start)
						return
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	return ch
}

// waitPodRunning waits for a Running, Ready pod in ns on a node other than
// notOn and not being deleted.
func waitPodRunning(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, notOn string) corev1.Pod {
	t.Helper()
	var last string
	for {
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			var states []string
			for _, p := range pods.Items {
				states = append(states, p.Name+"@"+p.Spec.NodeName+":"+string(p.Status.Phase))
				if p.DeletionTimestamp != nil || p.Spec.NodeName == "" || p.Spec.NodeName == notOn || p.Status.Phase != corev1.PodRunning {
					continue
				}
				for _, cond := range p.Status.Conditions {
					if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
						return p
					}
				}
			}
			last = strings.Join(states, " ")
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no Running, Ready pod in %s off %q before the deadline; last seen: %s", ns, notOn, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// namespace makes a fresh namespace, deleted when the test ends.
func namespace(t *testing.T, c kubernetes.Interface, prefix string) string {
	t.Helper()
	ns, err := c.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}
