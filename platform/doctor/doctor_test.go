package doctor

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/platform"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const seedPath = "testdata/seed-cluster.yaml"

// testDay is the day the tests judge versions against, so their findings
// do not change as support windows end.
var testDay = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func seedSnapshot(t *testing.T) *Snapshot {
	t.Helper()
	data, err := os.ReadFile(seedPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSnapshot(data)
	if err != nil {
		t.Fatalf("parsing the seed cluster: %v", err)
	}
	return s
}

func keys(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Severity.String()+" "+f.Check+" "+f.Object)
	}
	return out
}

// TestDoctorSeedCluster: every single point of failure of the company's
// cluster today (the 2021 plan's state) is reported, and nothing else.
func TestDoctorSeedCluster(t *testing.T) {
	got := Analyze(seedSnapshot(t), Options{Now: testDay})
	want := []string{
		"critical cluster-service deployment/kube-system/coredns",
		"critical cluster-service deployment/kube-system/ingress-nginx-controller",
		"critical kubernetes-version nodes db1, db2, db3, www1, www2",
		"critical lb-speakers pod/metallb-system/speaker-hdwkm",
		"critical lb-speakers pod/metallb-system/speaker-nhzf6",
		"critical node-concentration node/db3",
		"critical storage-class cluster",
		"critical storage-class storageclass/local-path",
		"warning cluster-service deployment/kube-system/local-path-provisioner",
		"warning cluster-service deployment/kube-system/metrics-server",
		"warning cluster-service deployment/metallb-system/controller",
		"warning node-concentration node/db1",
	}
	if g, w := strings.Join(keys(got), "\n"), strings.Join(want, "\n"); g != w {
		t.Fatalf("findings differ\ngot:\n%s\nwant:\n%s", g, w)
	}
	byObject := map[string]Finding{}
	for _, f := range got {
		byObject[f.Object] = f
		if f.Why == "" || f.Fix == "" || f.Problem == "" {
			t.Errorf("%s lacks why, fix or problem: %+v", f.Object, f)
		}
	}
	db1 := byObject["pod/metallb-system/speaker-hdwkm"]
	if !strings.Contains(db1.Problem, "on db1 is CrashLoopBackOff (4633 restarts)") {
		t.Errorf("db1 speaker problem: %q", db1.Problem)
	}
	for _, cause := range []string{"ServiceLB", "7946", "node IP"} {
		if !strings.Contains(db1.Fix, cause) {
			t.Errorf("the speaker fix does not name the known cause %q: %s", cause, db1.Fix)
		}
	}
	if f := byObject["pod/metallb-system/speaker-nhzf6"]; !strings.Contains(f.Problem, "www1") || !strings.Contains(f.Problem, "1458 restarts") {
		t.Errorf("www1 speaker problem: %q", f.Problem)
	}
	if f := byObject["deployment/kube-system/metrics-server"]; !strings.Contains(f.Problem, "1 replica (on db1)") {
		t.Errorf("metrics-server problem: %q", f.Problem)
	}
}

func int32p(n int32) *int32 { return &n }

func findPod(s *Snapshot, name string) *corev1.Pod {
	for i := range s.Pods {
		if s.Pods[i].Name == name {
			return &s.Pods[i]
		}
	}
	panic("no pod " + name)
}

func findNode(s *Snapshot, name string) *corev1.Node {
	for i := range s.Nodes {
		if s.Nodes[i].Name == name {
			return &s.Nodes[i]
		}
	}
	panic("no node " + name)
}

func runningPod(ns, name, node string, labels map[string]string) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "c", Ready: true}}},
	}
}

func app(ns, name string, replicas int32, managed bool, spread bool) appsv1.Deployment {
	labels := map[string]string{contract.LabelAppName: name}
	meta := metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{contract.LabelAppName: name}}
	if managed {
		meta.Labels[contract.LabelManagedBy] = contract.ManagedBy
	}
	d := appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
		Replicas: int32p(replicas), Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}},
	}}
	if spread {
		d.Spec.Template.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector: &metav1.LabelSelector{MatchLabels: labels}}}
	}
	return d
}

func pdbFor(ns string, labels map[string]string) policyv1.PodDisruptionBudget {
	one := intstr.FromInt32(1)
	return policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pdb-" + fmt.Sprint(len(labels))},
		Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &one, Selector: &metav1.LabelSelector{MatchLabels: labels}}}
}

// healthy turns the seed cluster into what the platform should look like
// after its own setup: 3 replicas of each cluster service spread over
// nodes with budgets, healthy speakers, Longhorn as the default class.
func healthy(s *Snapshot) {
	nodes := []string{"db1", "db2", "db3", "www1", "www2"}
	for i := range s.Nodes {
		s.Nodes[i].Status.NodeInfo.KubeletVersion = "v1.35.3+k3s1"
	}
	for i := range s.Deployments {
		d := &s.Deployments[i]
		d.Spec.Replicas = int32p(3)
		s.PDBs = append(s.PDBs, pdbFor(d.Namespace, d.Spec.Template.Labels))
		for j := 0; j < 2; j++ {
			s.Pods = append(s.Pods, runningPod(d.Namespace, fmt.Sprintf("%s-extra-%d", d.Name, j), nodes[(i+j+1)%len(nodes)], d.Spec.Template.Labels))
		}
	}
	for _, name := range []string{"speaker-hdwkm", "speaker-nhzf6"} {
		p := findPod(s, name)
		p.Status.ContainerStatuses[0] = corev1.ContainerStatus{Name: "c", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	}
	s.StorageClasses[0].Annotations = nil
	s.StorageClasses = append(s.StorageClasses, storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: "longhorn", Annotations: map[string]string{defaultClassAnnotation: "true"}},
		Provisioner: "driver.longhorn.io", Parameters: map[string]string{"numberOfReplicas": "3"}})
	s.Longhorn = &LonghornState{Settings: map[string]string{"node-down-pod-deletion-policy": platform.DefaultNodeDownPodDeletionPolicy},
		Volumes: []LonghornVolume{{Name: "pvc-1", NumberOfReplicas: 3, Robustness: "healthy"}}}
}

func TestDoctorAnalyze(t *testing.T) {
	cases := []struct {
		name string
		edit func(s *Snapshot)
		opts Options
		// want: "severity check object" of findings that must be present,
		// with a fragment of their problem or fix after " | ".
		want []string
		// none: checks that must not appear.
		none []string
	}{
		{"healthy platform has nothing above info", healthy, Options{}, nil,
			[]string{"critical", "warning"}},
		{"two servers", func(s *Snapshot) {
			healthy(s)
			s.Nodes = s.Nodes[1:] // db2 goes
		}, Options{}, []string{"critical servers cluster (servers: db3, db1) | 2 control-plane server(s)"}, nil},
		{"four servers", func(s *Snapshot) {
			healthy(s)
			findNode(s, "www1").Labels["node-role.kubernetes.io/control-plane"] = "true"
		}, Options{}, []string{"warning servers cluster (servers: db2, db3, db1, www1) | even number"}, nil},
		{"node not ready", func(s *Snapshot) {
			healthy(s)
			findNode(s, "www2").Status.Conditions[0].Status = corev1.ConditionUnknown
		}, Options{}, []string{"critical node-ready node/www2 | not Ready"}, nil},
		{"replicas all on one node", func(s *Snapshot) {
			healthy(s)
			for i := range s.Pods {
				if s.Pods[i].Labels["k8s-app"] == "kube-dns" {
					s.Pods[i].Spec.NodeName = "db3"
				}
			}
		}, Options{}, []string{"critical cluster-service deployment/kube-system/coredns | all 3 running replicas are on db3"}, nil},
		{"k3s servicelb still on", func(s *Snapshot) {
			s.Pods = append(s.Pods, runningPod("kube-system", "svclb-ingress-nginx-controller-x7k2p", "www1",
				map[string]string{"svccontroller.k3s.cattle.io/svcname": "ingress-nginx-controller"}))
		}, Options{}, []string{
			"critical k3s-servicelb kube-system/svclb-ingress-nginx-controller-x7k2p (+0 more) | disable: [servicelb]",
			"critical lb-speakers pod/metallb-system/speaker-hdwkm | Seen here: k3s's ServiceLB is still enabled",
		}, nil},
		{"memberlist port taken", func(s *Snapshot) {
			findPod(s, "speaker-hdwkm").Status.ContainerStatuses[0].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{
				ExitCode: 1, Message: "failed to create memberlist: Could not set up network transport: failed to obtain an address: Failed to start TCP listener on \"10.251.51.1\" port 7946: listen tcp 10.251.51.1:7946: bind: address already in use"}
		}, Options{}, []string{"critical lb-speakers pod/metallb-system/speaker-hdwkm | memberlist port is taken"}, nil},
		{"wrong node IP", func(s *Snapshot) {
			findPod(s, "speaker-nhzf6").Status.PodIP = "192.168.122.11"
		}, Options{}, []string{"critical lb-speakers pod/metallb-system/speaker-nhzf6 | has IP 192.168.122.11 but the node's InternalIP is 10.251.50.1"}, nil},
		{"speaker missing on a NoExecute-tainted server", func(s *Snapshot) {
			healthy(s)
			findNode(s, "db1").Spec.Taints = []corev1.Taint{{Key: "CriticalAddonsOnly", Value: "true", Effect: corev1.TaintEffectNoExecute}}
			var pods []corev1.Pod
			for _, p := range s.Pods {
				if p.Name != "speaker-hdwkm" {
					pods = append(pods, p)
				}
			}
			s.Pods = pods
		}, Options{}, []string{"warning lb-speakers node/db1 | CriticalAddonsOnly=true:NoExecute not tolerated"}, []string{"critical"}},
		{"load balancers without speakers", func(s *Snapshot) {
			s.DaemonSets = nil
		}, Options{}, []string{"critical lb-speakers metallb-system | no MetalLB speaker"}, nil},
		{"longhorn left at defaults", func(s *Snapshot) {
			healthy(s)
			s.Longhorn.Settings = map[string]string{}
			s.Longhorn.Volumes = append(s.Longhorn.Volumes, LonghornVolume{Name: "pvc-2", NumberOfReplicas: 2, Robustness: "degraded"})
		}, Options{}, []string{
			"warning longhorn setting/node-down-pod-deletion-policy | do-nothing (default)",
			"warning longhorn volume/pvc-2 | 2 replica(s)",
			"warning longhorn volume/pvc-2 | degraded",
		}, nil},
		{"volume on a class that does not replicate", func(s *Snapshot) {
			healthy(s)
			cls := "local-path"
			s.PVCs = append(s.PVCs, corev1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Namespace: "whiteboard", Name: "data", Labels: map[string]string{contract.LabelManagedBy: contract.ManagedBy}},
				Spec:       corev1.PersistentVolumeClaimSpec{StorageClassName: &cls}})
		}, Options{}, []string{"critical volume-class pvc/whiteboard/data | local-path"}, nil},
		{"lab's replicated class counts when named", func(s *Snapshot) {
			s.StorageClasses = append(s.StorageClasses, storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "replicated",
				Annotations: map[string]string{defaultClassAnnotation: "true"}}, Provisioner: "rancher.io/local-path"})
			s.StorageClasses[0].Annotations = nil
		}, Options{ReplicatedClasses: []string{"replicated"}}, nil, []string{"storage-class"}},
		{"managed app with one replica", func(s *Snapshot) {
			healthy(s)
			s.Deployments = append(s.Deployments, app("whiteboard", "whiteboard", 1, true, true))
		}, Options{}, []string{"critical workload deployment/whiteboard/whiteboard | app managed by tsys-ci with 1 replica"}, nil},
		{"managed app without PDB or spread", func(s *Snapshot) {
			healthy(s)
			s.Deployments = append(s.Deployments, app("whiteboard", "whiteboard", 2, true, false))
		}, Options{}, []string{
			"warning workload deployment/whiteboard/whiteboard | nothing keeping them on different nodes",
			"warning workload deployment/whiteboard/whiteboard | no PodDisruptionBudget",
		}, []string{"critical"}},
		{"managed app replicas on one node", func(s *Snapshot) {
			healthy(s)
			d := app("whiteboard", "whiteboard", 2, true, true)
			s.Deployments = append(s.Deployments, d)
			s.PDBs = append(s.PDBs, pdbFor("whiteboard", d.Spec.Template.Labels))
			s.Pods = append(s.Pods, runningPod("whiteboard", "wb-1", "www2", d.Spec.Template.Labels), runningPod("whiteboard", "wb-2", "www2", d.Spec.Template.Labels))
		}, Options{}, []string{"critical workload deployment/whiteboard/whiteboard | all 2 running replicas are on www2"}, nil},
		{"managed app with one replica on a single-writer volume is a warning", func(s *Snapshot) {
			healthy(s)
			d := app("whiteboard", "whiteboard", 1, true, true)
			d.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
			s.Deployments = append(s.Deployments, d)
			cls := "replicated"
			s.PVCs = append(s.PVCs, corev1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Namespace: "whiteboard", Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &cls,
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}})
		}, Options{ReplicatedClasses: []string{"replicated"}}, []string{"warning workload deployment/whiteboard/whiteboard | 1 replica on a single-writer volume"}, []string{"critical"}},
		{"the idle color of a blue/green app, scaled to zero, is not a finding", func(s *Snapshot) {
			healthy(s)
			d := app("shop", "shop-blue", 0, true, true)
			s.Deployments = append(s.Deployments, d)
		}, Options{}, nil, []string{"shop-blue"}},
		{"other workload with one replica is a warning", func(s *Snapshot) {
			healthy(s)
			s.Deployments = append(s.Deployments, app("team", "wiki", 1, false, false))
		}, Options{}, []string{"warning workload deployment/team/wiki | workload with 1 replica"}, []string{"critical"}},
		// issue 26: the gateway (k3s's Traefik) with one replica, or two without a budget.
		{"one gateway replica", func(s *Snapshot) {
			healthy(s)
			d := app("kube-system", "traefik", 1, false, true)
			s.Deployments = append(s.Deployments, d)
			s.Pods = append(s.Pods, runningPod("kube-system", "traefik-1", "www1", d.Spec.Template.Labels))
		}, Options{}, []string{"critical cluster-service deployment/kube-system/traefik | 1 replica (on www1)"}, nil},
		{"gateway without a budget", func(s *Snapshot) {
			healthy(s)
			d := app("kube-system", "traefik", 2, false, true)
			s.Deployments = append(s.Deployments, d)
			s.Pods = append(s.Pods, runningPod("kube-system", "traefik-1", "www1", d.Spec.Template.Labels),
				runningPod("kube-system", "traefik-2", "www2", d.Spec.Template.Labels))
		}, Options{}, []string{"warning cluster-service deployment/kube-system/traefik | 2 replicas but no PodDisruptionBudget"}, nil},
		{"gateway with two replicas and a budget", func(s *Snapshot) {
			healthy(s)
			d := app("kube-system", "traefik", 2, false, true)
			s.Deployments = append(s.Deployments, d)
			s.PDBs = append(s.PDBs, pdbFor("kube-system", d.Spec.Template.Labels))
			s.Pods = append(s.Pods, runningPod("kube-system", "traefik-1", "www1", d.Spec.Template.Labels),
				runningPod("kube-system", "traefik-2", "www2", d.Spec.Template.Labels))
		}, Options{}, nil, []string{"traefik"}},
		{"one tsys-ci serve replica", func(s *Snapshot) {
			healthy(s)
			s.Deployments = append(s.Deployments, app("tsys-ci", "tsys-ci-serve", 1, true, true))
		}, Options{}, []string{"critical tsys-ci-serve deployment/tsys-ci/tsys-ci-serve | 1 tsys-ci serve replica"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := seedSnapshot(t)
			tc.edit(s)
			if tc.opts.Now.IsZero() {
				tc.opts.Now = testDay
			}
			got := Analyze(s, tc.opts)
			all := strings.Join(keys(got), "\n")
			for _, w := range tc.want {
				key, fragment, _ := strings.Cut(w, " | ")
				found := false
				for _, f := range got {
					if f.Severity.String()+" "+f.Check+" "+f.Object == key && strings.Contains(f.Problem+" "+f.Fix, fragment) {
						found = true
					}
				}
				if !found {
					t.Errorf("missing finding %q\ngot:\n%s", w, all)
				}
			}
			for _, n := range tc.none {
				for _, k := range keys(got) {
					if strings.Contains(k, n) {
						t.Errorf("unexpected finding %q", k)
					}
				}
			}
		})
	}
}

func TestDoctorFindingsAreSortedBySeverity(t *testing.T) {
	got := Analyze(seedSnapshot(t), Options{})
	if !sort.SliceIsSorted(got, func(i, j int) bool { return got[i].Severity > got[j].Severity }) {
		t.Fatalf("findings not most severe first: %v", keys(got))
	}
}

func TestParseSnapshotErrors(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: v1\nkind: Node\nmetadata: {name: a}\nspec: {taints: 3}\n",
		"apiVersion: v1\nkind: List\nitems: [3]\n",
		"kind: [",
	} {
		if _, err := ParseSnapshot([]byte(doc)); err == nil {
			t.Errorf("ParseSnapshot(%q) succeeded", doc)
		}
	}
}

func FuzzParseSnapshot(f *testing.F) {
	seed, err := os.ReadFile(seedPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: longhorn.io/v1beta2, kind: Volume, metadata: {name: v}, spec: {numberOfReplicas: 2}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSnapshot(data)
		if err != nil {
			return
		}
		// Whatever parses must be analysable without panicking.
		_ = Analyze(s, Options{})
	})
}

// doctor -o json reads back into the report it was written from.
func TestDoctorReportJSONRoundTrip(t *testing.T) {
	in := NewReport([]Finding{{Severity: SeverityCritical, Check: CheckServe, Object: "deployment/a/b", Problem: "p"}, {Severity: SeverityInfo, Check: CheckWorkload}})
	var buf strings.Builder
	if err := in.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var out Report
	if err := json.Unmarshal([]byte(buf.String()), &out); err != nil {
		t.Fatalf("reading doctor's JSON back: %v\n%s", err, buf.String())
	}
	if fmt.Sprint(out) != fmt.Sprint(in) {
		t.Errorf("round trip:\n%v\nwant\n%v", out, in)
	}
	if err := json.Unmarshal([]byte(`{"findings":[{"severity":"fatal"}]}`), &out); err == nil || !strings.Contains(err.Error(), "want info, warning or critical") {
		t.Errorf("an unknown severity: %v", err)
	}
}
