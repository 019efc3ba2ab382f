// Package clustertest runs platform doctor and apply against a real
// kube-apiserver and etcd (test/apiserver): the seed cluster's objects are
// created through the API and read back with client-go, and Helm releases
// are installed, upgraded and rolled back through the API server's own
// validation.
package clustertest

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/platform"
	"github.com/tsys-group/tsys-ci/platform/doctor"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/templates"
	"github.com/tsys-group/tsys-ci/test/apiserver"
)

var server *apiserver.Server

func TestMain(m *testing.M) {
	os.Exit(apiserver.RunTests(m, func(s *apiserver.Server) { server = s }))
}

func clients(t *testing.T) (kubernetes.Interface, dynamic.Interface) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(server.Config)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(server.Config)
	if err != nil {
		t.Fatal(err)
	}
	return cs, dyn
}

func ensureNamespace(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// replay creates every object of a snapshot through the API, status included.
func replay(ctx context.Context, t *testing.T, cs kubernetes.Interface, s *doctor.Snapshot) {
	t.Helper()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("replaying %s: %v", what, err)
		}
	}
	for _, n := range s.Nodes {
		n := n
		created, err := cs.CoreV1().Nodes().Create(ctx, &n, metav1.CreateOptions{})
		must("node "+n.Name, err)
		created.Status = n.Status
		_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
		must("node status "+n.Name, err)
	}
	for _, sc := range s.StorageClasses {
		sc := sc
		_, err := cs.StorageV1().StorageClasses().Create(ctx, &sc, metav1.CreateOptions{})
		must("storage class "+sc.Name, err)
	}
	for _, d := range s.Deployments {
		d := d
		ensureNamespace(ctx, t, cs, d.Namespace)
		created, err := cs.AppsV1().Deployments(d.Namespace).Create(ctx, &d, metav1.CreateOptions{})
		must("deployment "+d.Name, err)
		created.Status = d.Status
		_, err = cs.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
		must("deployment status "+d.Name, err)
	}
	for _, ds := range s.DaemonSets {
		ds := ds
		ensureNamespace(ctx, t, cs, ds.Namespace)
		created, err := cs.AppsV1().DaemonSets(ds.Namespace).Create(ctx, &ds, metav1.CreateOptions{})
		must("daemonset "+ds.Name, err)
		created.Status = ds.Status
		_, err = cs.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
		must("daemonset status "+ds.Name, err)
	}
	for _, svc := range s.Services {
		svc := svc
		ensureNamespace(ctx, t, cs, svc.Namespace)
		_, err := cs.CoreV1().Services(svc.Namespace).Create(ctx, &svc, metav1.CreateOptions{})
		must("service "+svc.Name, err)
	}
	for _, p := range s.Pods {
		p := p
		ensureNamespace(ctx, t, cs, p.Namespace)
		created, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, &p, metav1.CreateOptions{})
		must("pod "+p.Name, err)
		created.Status = p.Status
		_, err = cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
		must("pod status "+p.Name, err)
	}
}

func keys(fs []doctor.Finding) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Severity.String()+" "+f.Check+" "+f.Object+": "+f.Problem)
	}
	return strings.Join(out, "\n")
}

// TestDoctorOnReplayedSeedCluster creates the company's cluster as the plan
// shows it on a real API server, reads it back with CollectSnapshot and
// expects the same findings as the analysis of the file.
func TestDoctorOnReplayedSeedCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	data, err := os.ReadFile("../doctor/testdata/seed-cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := doctor.ParseSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	cs, dyn := clients(t)
	replay(ctx, t, cs, fromFile)

	live, err := doctor.CollectSnapshot(ctx, cs, dyn)
	if err != nil {
		t.Fatalf("collecting from the API server: %v", err)
	}
	if live.Longhorn != nil {
		t.Errorf("Longhorn reported although its CRDs are absent")
	}
	want := keys(doctor.Analyze(fromFile, doctor.Options{}))
	got := keys(doctor.Analyze(live, doctor.Options{}))
	if got != want {
		t.Fatalf("findings from the API server differ from the file's\ngot:\n%s\nwant:\n%s", got, want)
	}
	for _, w := range []string{"speaker on db1 is CrashLoopBackOff (4633 restarts)", "speaker on www1 is CrashLoopBackOff (1458 restarts)", "coredns: 1 replica"} {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
}

// helmConfig is Helm's view of the test API server, through its kubeconfig.
func helmConfig(t *testing.T) func(ns string) (*action.Configuration, error) {
	return func(ns string) (*action.Configuration, error) {
		kubeconfig := server.Kubeconfig
		flags := genericclioptions.NewConfigFlags(false)
		flags.KubeConfig, flags.Namespace = &kubeconfig, &ns
		cfg := &action.Configuration{}
		if err := cfg.Init(flags, ns, "secret", func(string, ...interface{}) {}); err != nil {
			return nil, err
		}
		return cfg, nil
	}
}

func TestApplyOnRealAPIServer(t *testing.T) {
	spec, err := platform.LoadSpec("../../templates/platform/platform.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// k3s's HelmChartConfig CRD (the gateway's; k3s's helm controller
	// defines it in production).
	apiserver.InstallCRDs(t, "../testdata/crds/helm.cattle.io_helmchartconfigs.yaml")
	tmpl, err := fs.Sub(templates.Platform, "platform")
	if err != nil {
		t.Fatal(err)
	}
	ssa, err := platform.ServerSideApply(server.Config)
	if err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	opts := platform.HelmOptions{Config: helmConfig(t), LoadChart: platform.ChartsDir("../testdata/charts"), Templates: tmpl,
		Wait: true, Timeout: time.Minute, Progress: &progress, ApplyObjects: ssa}
	steps, err := platform.Apply(spec, opts)
	if err != nil {
		t.Fatalf("first apply: %v\n%s", err, progress.String())
	}
	t.Logf("first apply:\n%s", progress.String())
	if len(steps) != 7 || steps[6].Component != platform.ServeComponent || steps[6].Release != platform.ServeRelease || steps[6].Namespace != "tsys-ci" {
		t.Fatalf("steps %+v", steps)
	}
	cs, _ := clients(t)
	cm, err := cs.CoreV1().ConfigMaps("longhorn-system").Get(context.Background(), "longhorn-values", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the longhorn release's ConfigMap is not in the API server: %v", err)
	}
	if !strings.Contains(cm.Data["values.yaml"], "createDefaultDiskLabeledNodes: true") {
		t.Errorf("longhorn values in the cluster:\n%s", cm.Data["values.yaml"])
	}
	_, dyn := clients(t)
	pool, err := dyn.Resource(schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "ipaddresspools"}).
		Namespace("metallb-system").Get(context.Background(), "lan", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("MetalLB pool not applied after MetalLB's chart: %v", err)
	}
	ns, err := cs.CoreV1().Namespaces().Get(context.Background(), "metallb-system", metav1.GetOptions{})
	if err != nil || ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("metallb-system lacks the privileged Pod Security label: %v %v", ns.Labels, err)
	}
	// render's PodDisruptionBudgets for Harbor, applied after its chart.
	if pdb, err := cs.PolicyV1().PodDisruptionBudgets("harbor").Get(context.Background(), "harbor-core", metav1.GetOptions{}); err != nil ||
		pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.Selector.MatchLabels["component"] != "core" {
		t.Errorf("harbor-core's PodDisruptionBudget after apply: %+v (%v)", pdb, err)
	}
	// The gateway's HelmChartConfig (issue 26), applied after MetalLB's pools.
	hcc, err := dyn.Resource(schema.GroupVersionResource{Group: "helm.cattle.io", Version: "v1", Resource: "helmchartconfigs"}).
		Namespace("kube-system").Get(context.Background(), "traefik", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the gateway's HelmChartConfig was not applied: %v\n%s", err, progress.String())
	}
	if values, _, _ := unstructured.NestedString(hcc.Object, "spec", "valuesContent"); !strings.Contains(values, "replicas: 2") || !strings.Contains(values, "podDisruptionBudget:") {
		t.Errorf("the gateway's HelmChartConfig holds:\n%s", values)
	}
	// The promote pool: made after MetalLB, and one promote allocates from.
	ctx := context.Background()
	if _, err := cs.CoreV1().ConfigMaps(rollout.DefaultAllocNamespace).Get(ctx, rollout.DefaultAllocName, metav1.GetOptions{}); err != nil {
		t.Fatalf("apply did not create promote's pool: %v", err)
	}
	alloc := &rollout.Allocator{Client: cs, Namespace: rollout.DefaultAllocNamespace, Name: rollout.DefaultAllocName}
	got, err := alloc.Allocate(ctx, rollout.AppKey("shop", "web"), []string{"http"})
	if err != nil {
		t.Fatalf("promote cannot allocate from the pool apply made: %v", err)
	}
	if got.Address != "10.251.50.220" || got.Ports["http"] != 30000 {
		t.Errorf("allocation %+v, want 10.251.50.220:30000, the pool's first", got)
	}
	poolCM, err := cs.CoreV1().ConfigMaps(rollout.DefaultAllocNamespace).Get(ctx, rollout.DefaultAllocName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	progress.Reset()
	if _, err := platform.Apply(spec, opts); err != nil {
		t.Fatalf("second apply: %v", err)
	}
	if !strings.Contains(progress.String(), "namespaces: 0 of 8 changed") || !strings.Contains(progress.String(), "L2 advertisements: 0 of 4 changed") ||
		!strings.Contains(progress.String(), "tsys-ci-system/tsys-ci-lb: 0 of 1 changed") ||
		!strings.Contains(progress.String(), "harbor's PodDisruptionBudgets: 0 of 5 changed") ||
		!strings.Contains(progress.String(), "gateway HelmChartConfig kube-system/traefik: 0 of 1 changed") ||
		strings.Count(progress.String(), ": unchanged (") != 7 {
		t.Errorf("second apply changed something:\n%s", progress.String())
	}
	if again, err := cs.CoreV1().ConfigMaps(rollout.DefaultAllocNamespace).Get(ctx, rollout.DefaultAllocName, metav1.GetOptions{}); err != nil || again.ResourceVersion != poolCM.ResourceVersion {
		t.Errorf("the second apply rewrote the pool ConfigMap (%v)", err)
	}
	// A changed port range is applied, and the allocations promote made are kept.
	spec.PaaS.Promote.Ports.Max = 31999
	progress.Reset()
	if _, err := platform.Apply(spec, opts); err != nil {
		t.Fatalf("apply of a wider port range: %v", err)
	}
	if !strings.Contains(progress.String(), "tsys-ci-system/tsys-ci-lb: 1 of 1 changed") {
		t.Errorf("the changed pool was not applied:\n%s", progress.String())
	}
	if same, err := alloc.Allocate(ctx, rollout.AppKey("shop", "web"), []string{"http"}); err != nil || same.Address != got.Address || same.Ports["http"] != got.Ports["http"] {
		t.Errorf("after the pool changed, shop/web has %+v (%v), want its place %+v kept", same, err, got)
	}
	updated, err := cs.CoreV1().ConfigMaps(rollout.DefaultAllocNamespace).Get(ctx, rollout.DefaultAllocName, metav1.GetOptions{})
	if err != nil || !strings.Contains(updated.Data[rollout.PoolKey], `"max":31999`) || updated.Data[rollout.AllocationsKey] == "" {
		t.Errorf("pool ConfigMap after the change: %v (%v)", updated.Data, err)
	}
	again, err := dyn.Resource(schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "ipaddresspools"}).
		Namespace("metallb-system").Get(context.Background(), "lan", metav1.GetOptions{})
	if err != nil || again.GetResourceVersion() != pool.GetResourceVersion() {
		t.Errorf("the pool was rewritten by the second apply (%v)", err)
	}
	plan, err := platform.Plan(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range plan {
		if s.Action != platform.StepUnchanged {
			t.Errorf("after apply, plan wants to %s %s (%s)", s.Action, s.Component, s.Reason)
		}
	}
	// An upgrade the API server rejects (an invalid object name) fails and
	// is rolled back; harbor, later in the order and also changed, is not touched.
	l := spec.Components["longhorn"]
	l.Values = map[string]any{"testExtraConfigMap": "Not_A_Valid_Name"}
	spec.Components["longhorn"] = l
	h := spec.Components["harbor"]
	h.Values = map[string]any{"testExtraConfigMap": "harbor-extra"}
	spec.Components["harbor"] = h
	_, err = platform.Apply(spec, opts)
	var aerr *platform.ApplyError
	if !errors.As(err, &aerr) || aerr.Step.Component != "longhorn" || aerr.RolledBack != 1 || aerr.RollbackErr != nil {
		t.Fatalf("got %v, want longhorn's upgrade rejected and rolled back to 1", err)
	}
	t.Logf("apply error as shown: %v", err)
	for _, c := range []struct {
		ns, name string
		revision int
	}{{"longhorn-system", "longhorn", 3}, {"harbor", "harbor", 1}} {
		cfg, err := helmConfig(t)(c.ns)
		if err != nil {
			t.Fatal(err)
		}
		rel, err := action.NewGet(cfg).Run(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if rel.Version != c.revision || rel.Info.Status != "deployed" {
			t.Errorf("%s after the failed apply: revision %d, %s; want %d, deployed", c.name, rel.Version, rel.Info.Status, c.revision)
		}
	}
	if _, err := cs.CoreV1().ConfigMaps("harbor").Get(context.Background(), "harbor-extra", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("harbor's new ConfigMap exists (or the lookup failed: %v): harbor was upgraded after the failure", err)
	}
}

// NotReadyReasons reads, through the API server, why a release's pods are
// not ready: a pod waiting on its image, one not scheduled; a ready pod and
// other apps' pods are not listed.
func TestNotReadyReasonsOnRealAPIServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, _ := clients(t)
	ns := "why-not-ready"
	ensureNamespace(ctx, t, cs, ns)
	manifest := `---
# Source: c/templates/workload.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: registry.lab/web:no-such-tag}]}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80}]
`
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.lab/web:no-such-tag"}}}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := func(name, app, node string, status corev1.PodStatus) {
		t.Helper()
		p, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "registry.lab/web:no-such-tag"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status = status
		if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pod("web-pull", "web", "www2", corev1.PodStatus{Phase: corev1.PodPending,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: "registry.lab/web:no-such-tag",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "registry.lab/web:no-such-tag"`}}}}})
	pod("web-pending", "web", "", corev1.PodStatus{Phase: corev1.PodPending,
		Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/6 nodes are available"}}})
	pod("web-pull-2", "web", "www3", corev1.PodStatus{Phase: corev1.PodPending,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: "registry.lab/web:no-such-tag",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "registry.lab/web:no-such-tag"`}}}}})
	pod("web-ok", "web", "www1", corev1.PodStatus{Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}})
	pod("other", "other", "www3", corev1.PodStatus{Phase: corev1.PodPending})

	got, err := platform.NotReadyReasons(ctx, cs, ns, manifest)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`Deployment web: pod web-pending on no node: not scheduled (Unschedulable): 0/6 nodes are available`,
		`Deployment web: pods web-pull on www2, web-pull-2 on www3: container app ImagePullBackOff: Back-off pulling image "registry.lab/web:no-such-tag"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := platform.NotReadyReasons(ctx, cs, "no-such-namespace", manifest); err == nil || !strings.Contains(err.Error(), "reading Deployment web in no-such-namespace") {
		t.Errorf("a workload that is not there: %v", err)
	}
}
