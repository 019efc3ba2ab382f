package manifests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// MetalLB's two resources as v0.13.12's CRDs define the fields used here;
// strict decoding rejects anything else.
type ipAddressPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Addresses  []string `json:"addresses"`
		AutoAssign *bool    `json:"autoAssign,omitempty"`
	} `json:"spec"`
}

type l2Advertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		IPAddressPools []string `json:"ipAddressPools"`
	} `json:"spec"`
}

// object is one decoded document.
type object struct {
	file string
	kind string
	meta metav1.Object
	obj  any
}

func newTyped(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}, nil
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "rbac.authorization.k8s.io/v1/Role":
		return &rbacv1.Role{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}, nil
	case "rbac.authorization.k8s.io/v1/RoleBinding":
		return &rbacv1.RoleBinding{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, nil
	case "storage.k8s.io/v1/StorageClass":
		return &storagev1.StorageClass{}, nil
	case "metallb.io/v1beta1/IPAddressPool":
		return &ipAddressPool{}, nil
	case "metallb.io/v1beta1/L2Advertisement":
		return &l2Advertisement{}, nil
	}
	return nil, fmt.Errorf("no Go type known for %s %s: add it to newTyped", apiVersion, kind)
}

// decodeAll splits every file into documents and decodes each strictly
// (unknown or duplicate fields fail) into its Kubernetes API type.
func decodeAll(t *testing.T, files []File) []object {
	t.Helper()
	var out []object
	for _, f := range files {
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(f.Data)))
		for i := 0; ; i++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: reading document %d: %v", f.Name, i, err)
			}
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s document %d: %v\n%s", f.Name, i, err, doc)
			}
			obj, err := newTyped(tm.APIVersion, tm.Kind)
			if err != nil {
				t.Fatalf("%s document %d: %v", f.Name, i, err)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s document %d (%s): strict decoding: %v\n%s", f.Name, i, tm.Kind, err, doc)
			}
			meta, ok := obj.(metav1.Object)
			if !ok {
				t.Fatalf("%s document %d: %T has no object metadata", f.Name, i, obj)
			}
			out = append(out, object{file: f.Name, kind: tm.Kind, meta: meta, obj: obj})
		}
	}
	return out
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.Bytes()
}

func testParams() Params {
	return Params{
		Subnet:     netip.MustParsePrefix("172.30.0.0/24"),
		ClusterDNS: netip.MustParseAddr("10.96.0.10"),
		Hosts:      []Host{{Name: "db1", IP: netip.MustParseAddr("172.30.0.11")}, {Name: "www1", IP: netip.MustParseAddr("172.30.0.21")}},
	}
}

func render(t *testing.T, p Params) []object {
	t.Helper()
	files, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	return decodeAll(t, files)
}

func find[T any](t *testing.T, objs []object, kind, namespace, name string) T {
	t.Helper()
	for _, o := range objs {
		if o.kind == kind && o.meta.GetNamespace() == namespace && o.meta.GetName() == name {
			v, ok := o.obj.(T)
			if !ok {
				t.Fatalf("%s %s/%s is a %T", kind, namespace, name, o.obj)
			}
			return v
		}
	}
	t.Fatalf("no %s %s/%s in the rendered manifests", kind, namespace, name)
	var zero T
	return zero
}

func podSpecs(objs []object) map[string]corev1.PodSpec {
	specs := map[string]corev1.PodSpec{}
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			specs["Deployment "+v.Namespace+"/"+v.Name] = v.Spec.Template.Spec
		case *appsv1.DaemonSet:
			specs["DaemonSet "+v.Namespace+"/"+v.Name] = v.Spec.Template.Spec
		}
	}
	return specs
}

func TestEveryDocumentDecodesStrictly(t *testing.T) {
	objs := render(t, testParams())
	if len(objs) < 30 {
		t.Fatalf("only %d objects rendered; a template lost its documents", len(objs))
	}
	namespaces := map[string]bool{"kube-system": true}
	for _, o := range objs {
		if ns, ok := o.obj.(*corev1.Namespace); ok {
			namespaces[ns.Name] = true
		}
	}
	clusterScoped := map[string]bool{"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true, "StorageClass": true}
	for _, o := range objs {
		ns := o.meta.GetNamespace()
		switch {
		case clusterScoped[o.kind] && ns != "":
			t.Errorf("%s: cluster-scoped %s %s has namespace %q", o.file, o.kind, o.meta.GetName(), ns)
		case !clusterScoped[o.kind] && !namespaces[ns]:
			t.Errorf("%s: %s %s is in namespace %q, which no manifest creates", o.file, o.kind, o.meta.GetName(), ns)
		}
	}
}

func TestCoreDNSTwoReplicasSpread(t *testing.T) {
	p := testParams()
	objs := render(t, p)
	d := find[*appsv1.Deployment](t, objs, "Deployment", "kube-system", "coredns")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Fatalf("coredns replicas = %v, want 2", d.Spec.Replicas)
	}
	podLabels := d.Spec.Template.Labels
	aff := d.Spec.Template.Spec.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Fatal("coredns has no required pod anti-affinity: both replicas could land on one node")
	}
	term := aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0]
	if term.TopologyKey != corev1.LabelHostname {
		t.Errorf("anti-affinity topology key %q, want %q", term.TopologyKey, corev1.LabelHostname)
	}
	sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
	if err != nil || !sel.Matches(labelSet(podLabels)) {
		t.Errorf("anti-affinity selector %v does not match coredns' own pods %v (err %v)", term.LabelSelector, podLabels, err)
	}
	pdb := find[*policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget", "kube-system", "coredns")
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("coredns PDB minAvailable = %v, want 1", pdb.Spec.MinAvailable)
	}
	if s, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || !s.Matches(labelSet(podLabels)) {
		t.Errorf("coredns PDB selector %v does not select coredns' pods", pdb.Spec.Selector)
	}
	svc := find[*corev1.Service](t, objs, "Service", "kube-system", "kube-dns")
	if svc.Spec.ClusterIP != p.ClusterDNS.String() {
		t.Errorf("kube-dns ClusterIP %q, want %v", svc.Spec.ClusterIP, p.ClusterDNS)
	}
	cm := find[*corev1.ConfigMap](t, objs, "ConfigMap", "kube-system", "coredns")
	for _, want := range []string{"kubernetes cluster.local in-addr.arpa ip6.arpa", "172.30.0.11 db1", "172.30.0.21 www1"} {
		if !strings.Contains(cm.Data["Corefile"], want) {
			t.Errorf("Corefile lacks %q:\n%s", want, cm.Data["Corefile"])
		}
	}
	if strings.Contains(cm.Data["Corefile"], "forward") || strings.Contains(cm.Data["Corefile"], "loop") {
		t.Errorf("Corefile forwards or checks for loops although no upstream was given:\n%s", cm.Data["Corefile"])
	}
	p.Upstreams = []string{"192.0.2.53"}
	cm = find[*corev1.ConfigMap](t, render(t, p), "ConfigMap", "kube-system", "coredns")
	for _, want := range []string{"forward . 192.0.2.53 {", "loop"} {
		if !strings.Contains(cm.Data["Corefile"], want) {
			t.Errorf("with an upstream, Corefile lacks %q:\n%s", want, cm.Data["Corefile"])
		}
	}
}

// tolerates is Kubernetes' toleration match (Toleration.ToleratesTaint)
// for the fields used here, without its logger argument.
func tolerates(tol corev1.Toleration, taint corev1.Taint) bool {
	if tol.Effect != "" && tol.Effect != taint.Effect {
		return false
	}
	if tol.Key != taint.Key && !(tol.Key == "" && tol.Operator == corev1.TolerationOpExists) {
		return false
	}
	switch tol.Operator {
	case corev1.TolerationOpExists:
		return true
	case "", corev1.TolerationOpEqual:
		return tol.Value == taint.Value
	}
	return false
}

type labelSet map[string]string

func (l labelSet) Has(k string) bool   { _, ok := l[k]; return ok }
func (l labelSet) Get(k string) string { return l[k] }
func (l labelSet) Lookup(k string) (string, bool) {
	v, ok := l[k]
	return v, ok
}

func TestSpeakersRunOnEveryNode(t *testing.T) {
	objs := render(t, testParams())
	ds := find[*appsv1.DaemonSet](t, objs, "DaemonSet", "metallb-system", "speaker")
	spec := ds.Spec.Template.Spec
	// A db node's taint as the lab sets it.
	taint := corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}
	tolerated := false
	for _, tol := range spec.Tolerations {
		if tolerates(tol, taint) {
			tolerated = true
		}
	}
	if !tolerated {
		t.Fatalf("speaker tolerations %v do not tolerate %v: db1-3 would have no speaker", spec.Tolerations, taint)
	}
	if !spec.HostNetwork {
		t.Error("speaker is not on the host network: it could not answer ARP for the node")
	}
	if len(spec.NodeSelector) > 1 || (len(spec.NodeSelector) == 1 && spec.NodeSelector[corev1.LabelOSStable] != "linux") {
		t.Errorf("speaker node selector %v would leave nodes out", spec.NodeSelector)
	}
	if spec.Affinity != nil {
		t.Errorf("speaker has an affinity %v that could leave nodes out", spec.Affinity)
	}
}

func TestMetalLBPoolFromSubnet(t *testing.T) {
	objs := render(t, testParams())
	pool := find[*ipAddressPool](t, objs, "IPAddressPool", "metallb-system", "lab-pool")
	if want := []string{"172.30.0.192-172.30.0.254"}; !slices.Equal(pool.Spec.Addresses, want) {
		t.Errorf("pool addresses %v, want %v", pool.Spec.Addresses, want)
	}
	adv := find[*l2Advertisement](t, objs, "L2Advertisement", "metallb-system", "lab-l2")
	if !slices.Equal(adv.Spec.IPAddressPools, []string{"lab-pool"}) {
		t.Errorf("L2Advertisement pools %v, want [lab-pool]", adv.Spec.IPAddressPools)
	}
	svc := find[*corev1.Service](t, objs, "Service", "lab-registry", "registry")
	if got := svc.Annotations["metallb.universe.tf/loadBalancerIPs"]; got != "172.30.0.192" {
		t.Errorf("registry address %q, want the pool's first address 172.30.0.192", got)
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		t.Errorf("registry Service type %q, want LoadBalancer", svc.Spec.Type)
	}
}

func TestUpperRange(t *testing.T) {
	for _, c := range []struct{ subnet, first, last, err string }{
		{"172.30.0.0/24", "172.30.0.192", "172.30.0.254", ""},
		{"10.5.0.0/16", "10.5.192.0", "10.5.255.254", ""},
		{"192.168.7.16/28", "192.168.7.28", "192.168.7.30", ""},
		{"172.30.0.77/24", "172.30.0.192", "172.30.0.254", ""},
		{"10.0.0.0/30", "", "", "too small"},
		{"fd00::/64", "", "", "IPv4"},
	} {
		first, last, err := UpperRange(netip.MustParsePrefix(c.subnet))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("UpperRange(%s) error %v, want one containing %q", c.subnet, err, c.err)
			}
			continue
		}
		if err != nil || first.String() != c.first || last.String() != c.last {
			t.Errorf("UpperRange(%s) = %v-%v %v, want %s-%s", c.subnet, first, last, err, c.first, c.last)
		}
	}
}

func TestParamsRejected(t *testing.T) {
	base := testParams()
	for name, mutate := range map[string]func(*Params){
		"no cluster DNS": func(p *Params) { p.ClusterDNS = netip.Addr{} },
		"pool outside": func(p *Params) {
			p.PoolFirst, p.PoolLast = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.9")
		},
		"half a pool":        func(p *Params) { p.PoolFirst = netip.MustParseAddr("172.30.0.200") },
		"registry outside":   func(p *Params) { p.RegistryIP = netip.MustParseAddr("172.30.0.5") },
		"relative shared":    func(p *Params) { p.SharedPath = "replicated" },
		"shared under local": func(p *Params) { p.LocalPath, p.SharedPath = "/srv/lp", "/srv/lp/shared" },
		"no subnet":          func(p *Params) { p.Subnet = netip.Prefix{} },
	} {
		p := base
		mutate(&p)
		if _, err := Render(p); err == nil {
			t.Errorf("%s: Render accepted %+v", name, p)
		}
	}
}

func TestReplicatedClassIsShared(t *testing.T) {
	p := testParams()
	p.SharedPath = "/mnt/lab-gluster"
	objs := render(t, p)
	cm := find[*corev1.ConfigMap](t, objs, "ConfigMap", "local-path-storage", "local-path-config")
	var cfg LocalPathConfig
	dec := json.NewDecoder(strings.NewReader(cm.Data["config.json"]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("local-path config.json: %v\n%s", err, cm.Data["config.json"])
	}
	rep, ok := cfg.StorageClassConfigs["replicated"]
	if !ok || rep.SharedFileSystemPath != "/mnt/lab-gluster" || len(rep.NodePathMap) != 0 {
		t.Errorf("replicated class config %+v, want sharedFileSystemPath /mnt/lab-gluster and no nodePathMap", rep)
	}
	lp := cfg.StorageClassConfigs["local-path"]
	if lp.SharedFileSystemPath != "" || len(lp.NodePathMap) != 1 || !slices.Equal(lp.NodePathMap[0].Paths, []string{DefaultLocalPath}) {
		t.Errorf("local-path class config %+v, want the node-local %s", lp, DefaultLocalPath)
	}
	if cfg.SetupCommand != HelperBinary || cfg.TeardownCommand != HelperBinary {
		t.Errorf("setup/teardown %q/%q, want %s (no busybox image here)", cfg.SetupCommand, cfg.TeardownCommand, HelperBinary)
	}
	// The provisioner refuses classes missing from storageClassConfigs.
	for _, o := range objs {
		if sc, ok := o.obj.(*storagev1.StorageClass); ok {
			if sc.Provisioner != "rancher.io/local-path" {
				t.Errorf("StorageClass %s provisioner %q", sc.Name, sc.Provisioner)
			}
			if _, ok := cfg.StorageClassConfigs[sc.Name]; !ok {
				t.Errorf("StorageClass %s has no entry in local-path's storageClassConfigs", sc.Name)
			}
		}
	}
	var helper corev1.Pod
	if err := yaml.UnmarshalStrict([]byte(cm.Data["helperPod.yaml"]), &helper); err != nil {
		t.Fatalf("helperPod.yaml: %v", err)
	}
	if env := helper.Spec.Containers[0].Env; len(env) != 1 || env[0].Name != "LOCAL_PATH_HELPER_REQUIRE_FUSE_UNDER" || env[0].Value != "/mnt/lab-gluster" {
		t.Errorf("helper pod env %v: want LOCAL_PATH_HELPER_REQUIRE_FUSE_UNDER=/mnt/lab-gluster", env)
	}
	if helper.Spec.Containers[0].Image != DefaultImages().LocalPath {
		t.Errorf("helper pod image %q, want %q", helper.Spec.Containers[0].Image, DefaultImages().LocalPath)
	}
	pvc := find[*corev1.PersistentVolumeClaim](t, objs, "PersistentVolumeClaim", "lab-registry", "registry-data")
	if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "replicated" {
		t.Errorf("registry data class %v, want replicated (so it survives its node)", pvc.Spec.StorageClassName)
	}
}

// TestImagesMatchBuildScript: every container runs an image that
// scripts/addon-images.sh builds, under the same name and version, and never
// tries to pull it.
func TestImagesMatchBuildScript(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("..", "..", "..", "scripts", "addon-images.sh"))
	if err != nil {
		t.Fatal(err)
	}
	built := map[string]bool{}
	prefix := regexp.MustCompile(`(?m)^registry_prefix=(\S+)$`).FindSubmatch(script)
	if prefix == nil {
		t.Fatal("scripts/addon-images.sh has no registry_prefix= line")
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+"([a-z-]+)\|[a-z]+\|(v[0-9.]+)\|`).FindAllSubmatch(script, -1) {
		built[string(prefix[1])+"/"+string(m[1])+":"+string(m[2])] = true
	}
	if len(built) != 5 {
		t.Fatalf("found %d components in scripts/addon-images.sh, want 5: %v", len(built), built)
	}
	for _, img := range DefaultImages().All() {
		if !built[img] {
			t.Errorf("image %s is not one scripts/addon-images.sh builds (%v)", img, built)
		}
	}
	used := map[string]bool{}
	for where, spec := range podSpecs(render(t, testParams())) {
		for _, c := range append(spec.InitContainers, spec.Containers...) {
			used[c.Image] = true
			if !built[c.Image] {
				t.Errorf("%s container %s runs %s, which scripts/addon-images.sh does not build", where, c.Name, c.Image)
			}
			if c.ImagePullPolicy != corev1.PullIfNotPresent {
				t.Errorf("%s container %s pull policy %q: the images are imported, never pulled; want IfNotPresent", where, c.Name, c.ImagePullPolicy)
			}
		}
	}
	for img := range built {
		if !used[img] {
			t.Errorf("image %s is built but no manifest runs it", img)
		}
	}
}
