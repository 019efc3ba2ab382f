package clustertest

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/apiserver"
	"github.com/tsys-group/tsys-ci/test/podstandin"
)

// TestDeleteFromTheCLI: 'tsys-ci delete APP' run as a person would, after
// a promote by the same binary: the app's objects go, its address and
// ports go back to the pool, and a second run says nothing was left.
func TestDeleteFromTheCLI(t *testing.T) {
	ctx := context.Background()
	cs := apiserver.Client(t)
	ns := apiserver.Namespace(t, cs, "cli-delete")
	podstandin.Start(t, cs, ns)
	pool, _ := json.Marshal(rollout.Pool{Addresses: []string{"10.89.0.250"}, Ports: rollout.PortRange{Min: 31000, Max: 31009}})
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: rollout.DefaultAllocName},
		Data: map[string]string{rollout.PoolKey: string(pool)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spec := filepath.Join(dir, "tsys-ci.yaml")
	write(t, spec, "name: shop\nnamespace: "+ns+"\nreplicas: 2\nports: [{name: http, containerPort: 8080, expose: true}]\n"+
		"strategy: {type: blueGreen, blueGreen: {scaleDownDelay: 1s}}\n")
	image := "reg.example/shop/shop@sha256:" + strings.Repeat("a1", 32)
	if out, code := run(t, nil, "promote", "shop", "--kubeconfig", kubeconfig, "--spec", spec, "--image", image, "--allow-unsigned", "--pool-namespace", ns); code != 0 {
		t.Fatalf("promote: exit %d\n%s", code, out)
	}

	cmd := exec.Command(tsysCI, "delete", "shop", "--spec", spec, "--kubeconfig", kubeconfig, "--pool-namespace", ns)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Deployment/shop-blue") || !strings.Contains(string(out), "gave 10.89.0.250 (http 31000) back to the pool") {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	if l, _ := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
		t.Fatalf("%d Deployments left", len(l.Items))
	}
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, rollout.DefaultAllocName, metav1.GetOptions{})
	if err != nil || strings.Contains(cm.Data[rollout.AllocationsKey], ns+"/shop") {
		t.Fatalf("the pool still holds shop: %v %q", err, cm.Data[rollout.AllocationsKey])
	}

	cmd = exec.Command(tsysCI, "delete", "shop", "-n", ns, "--kubeconfig", kubeconfig, "--pool-namespace", ns, "-o", "json")
	out, err = cmd.Output()
	var res rollout.DeleteResult
	if err != nil || json.Unmarshal(out, &res) != nil || len(res.Deleted) != 0 || res.Freed != nil {
		t.Fatalf("delete run again: %v %s", err, out)
	}
	if out, code := run(t, nil, "delete", "--kubeconfig", kubeconfig); code != 2 {
		t.Fatalf("delete without an app: exit %d, want 2\n%s", code, out)
	}
}
