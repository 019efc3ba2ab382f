package rollout

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/platform/edge"
)

func exampleSpec(t *testing.T, mod func(*AppSpec)) *AppSpec {
	t.Helper()
	spec, err := LoadSpec(filepath.Join("..", "templates", "app", "tsys-ci.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(spec)
		if err := spec.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	return spec
}

var testOwner = &metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "tsys-ci-shop", UID: "uid-1"}

func TestRenderDeployment(t *testing.T) {
	cases := []struct {
		name     string
		mod      func(*AppSpec)
		strategy appsv1.DeploymentStrategyType
	}{
		{"blue/green", nil, appsv1.RollingUpdateDeploymentStrategyType},
		{"rolling", func(s *AppSpec) { s.Strategy.Type = StrategyRolling }, appsv1.RollingUpdateDeploymentStrategyType},
		{"recreate", func(s *AppSpec) { s.Strategy.Type = StrategyRecreate }, appsv1.RecreateDeploymentStrategyType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := exampleSpec(t, c.mod)
			d := RenderDeployment(spec, Version{Color: ColorGreen, Image: "reg/shop@sha256:abc", Revision: "1a2b3c", Replicas: 2}, testOwner)
			want := map[string]string{contract.LabelManagedBy: "tsys-ci", contract.LabelAppName: "shop", LabelColor: "green"}
			pod := d.Spec.Template.Spec
			ctr := pod.Containers[0]
			checks := []struct {
				what      string
				got, want any
			}{
				{"name", d.Name, "shop-green"},
				{"namespace", d.Namespace, "shop"},
				{"labels", d.Labels, want},
				{"selector", d.Spec.Selector.MatchLabels, want},
				{"pod labels", d.Spec.Template.Labels, want},
				{"owner", d.OwnerReferences[0].Name, "tsys-ci-shop"},
				{"replicas", *d.Spec.Replicas, int32(2)},
				{"strategy", d.Spec.Strategy.Type, c.strategy},
				{"image", ctr.Image, "reg/shop@sha256:abc"},
				{"revision", d.Spec.Template.Annotations[AnnotationRevision], "1a2b3c"},
				{"preStop drain", ctr.Lifecycle.PreStop.Sleep.Seconds, int64(10)},
				{"grace", *pod.TerminationGracePeriodSeconds, int64(40)},
				{"spread key", pod.TopologySpreadConstraints[0].TopologyKey, "kubernetes.io/hostname"},
				{"spread selector", pod.TopologySpreadConstraints[0].LabelSelector.MatchLabels, want},
				{"spread skew", pod.TopologySpreadConstraints[0].MaxSkew, int32(1)},
				{"spread ignores tainted nodes", *pod.TopologySpreadConstraints[0].NodeTaintsPolicy, corev1.NodeInclusionPolicyHonor},
				{"ports", len(ctr.Ports), 3},
				{"readiness", ctr.ReadinessProbe.HTTPGet.Path, "/healthz"},
				{"readiness port", ctr.ReadinessProbe.HTTPGet.Port.StrVal, "http"},
				{"liveness tcp", ctr.LivenessProbe.TCPSocket.Port.StrVal, "http"},
				{"env value", ctr.Env[0], corev1.EnvVar{Name: "LOG_LEVEL", Value: "info"}},
				{"env secret", *ctr.Env[1].ValueFrom.SecretKeyRef, corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "shop-db"}, Key: "password"}},
				{"claim", pod.Volumes[0].PersistentVolumeClaim.ClaimName, "shop-uploads"},
				{"mount", ctr.VolumeMounts[0].MountPath, "/data/uploads"},
				{"cpu", ctr.Resources.Requests.Cpu().String(), "100m"},
				{"memory limit", ctr.Resources.Limits.Memory().String(), "256Mi"},
			}
			for _, ch := range checks {
				if !reflect.DeepEqual(ch.got, ch.want) {
					t.Errorf("%s: got %v, want %v", ch.what, ch.got, ch.want)
				}
			}
			if d.Spec.Strategy.RollingUpdate != nil && d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntVal != 0 {
				t.Errorf("rolling update may take pods down: %+v", d.Spec.Strategy.RollingUpdate)
			}
		})
	}
}

func TestRenderServiceContract(t *testing.T) {
	spec := exampleSpec(t, nil)
	alloc := &Allocation{Address: "10.89.0.240", Ports: map[string]int32{"http": 30001, "ssh": 30002}}
	svc, err := RenderService(spec, alloc, ColorBlue, testOwner)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Name != "shop" || svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		t.Fatalf("service %s is %s, want shop LoadBalancer", svc.Name, svc.Spec.Type)
	}
	var ports []string
	for _, p := range svc.Spec.Ports {
		ports = append(ports, p.Name+":"+p.TargetPort.StrVal+":"+itoa(p.Port))
	}
	if want := []string{"http:http:30001", "ssh:ssh:30002"}; !reflect.DeepEqual(ports, want) {
		t.Errorf("ports %v, want %v (metrics is not exposed)", ports, want)
	}
	if got := svc.Annotations[AnnotationLBIPs]; got != "10.89.0.240" {
		t.Errorf("loadBalancerIPs %q", got)
	}
	if got := svc.Annotations[AnnotationAllowShared]; got != "tsys-ci-10.89.0.240" {
		t.Errorf("allow-shared-ip %q", got)
	}
	var edge []map[string]any
	if err := json.Unmarshal([]byte(svc.Annotations[contract.AnnotationEdge]), &edge); err != nil {
		t.Fatalf("edge annotation is not JSON: %v", err)
	}
	want := `[{"port":"http","hosts":["shop.company.example"]},{"port":"ssh","tcpFrontendPort":2222}]`
	if svc.Annotations[contract.AnnotationEdge] != want {
		t.Errorf("edge annotation\n got %s\nwant %s", svc.Annotations[contract.AnnotationEdge], want)
	}
	if svc.Spec.Selector[LabelColor] != ColorBlue || svc.Labels[contract.LabelManagedBy] != contract.ManagedBy {
		t.Errorf("selector %v labels %v", svc.Spec.Selector, svc.Labels)
	}
	both, err := RenderService(spec, alloc, "", testOwner)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := both.Spec.Selector[LabelColor]; ok {
		t.Errorf("canary service selects one color: %v", both.Spec.Selector)
	}
}

func TestRenderServiceNeedsAllocation(t *testing.T) {
	spec := exampleSpec(t, nil)
	if _, err := RenderService(spec, nil, ColorBlue, nil); err == nil {
		t.Fatal("exposed ports without an allocation were rendered")
	}
	if _, err := RenderService(spec, &Allocation{Address: "10.0.0.1", Ports: map[string]int32{"http": 1}}, ColorBlue, nil); err == nil {
		t.Fatal("a port without an allocated number was rendered")
	}
	internal := exampleSpec(t, func(s *AppSpec) {
		for i := range s.Ports {
			s.Ports[i].Expose, s.Ports[i].Hosts, s.Ports[i].TCPFrontendPort = false, nil, 0
		}
	})
	svc, err := RenderService(internal, nil, ColorBlue, nil)
	if err != nil || svc.Spec.Type != corev1.ServiceTypeClusterIP || len(svc.Spec.Ports) != 3 || svc.Annotations[contract.AnnotationEdge] != "" {
		t.Fatalf("internal-only app: %v %+v", err, svc)
	}
}

func TestRenderPreviewPDBClaims(t *testing.T) {
	spec := exampleSpec(t, nil)
	prev := RenderPreviewService(spec, ColorGreen, testOwner)
	if prev.Name != "shop-preview" || prev.Spec.Type != corev1.ServiceTypeClusterIP || prev.Spec.Selector[LabelColor] != ColorGreen || prev.Spec.Ports[0].Port != 8080 {
		t.Errorf("preview service %+v", prev)
	}
	pdb := RenderPDB(spec, testOwner)
	if pdb == nil || pdb.Spec.MaxUnavailable.IntVal != 1 || !reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, AppLabels("shop")) {
		t.Errorf("pdb %+v", pdb)
	}
	single := exampleSpec(t, func(s *AppSpec) { one := int32(1); s.Replicas = &one; s.Strategy.Type = StrategyRecreate })
	if RenderPDB(single, nil) != nil {
		t.Error("a one-replica app got a PDB that would block every drain")
	}
	claims := RenderClaims(spec)
	if len(claims) != 1 {
		t.Fatalf("%d claims", len(claims))
	}
	c := claims[0]
	if c.Name != "shop-uploads" || *c.Spec.StorageClassName != "replicated" || c.Spec.AccessModes[0] != corev1.ReadWriteMany ||
		c.Spec.Resources.Requests.Storage().String() != "1Gi" || len(c.OwnerReferences) != 0 || c.Labels[contract.LabelAppName] != "shop" {
		t.Errorf("claim %+v", c)
	}
}

func itoa(n int32) string { b, _ := json.Marshal(n); return string(b) }

// TestEdgeAnnotationParsesAtTheEdge checks the contract from both sides:
// what rollout writes, the edge's own parser accepts.
func TestEdgeAnnotationParsesAtTheEdge(t *testing.T) {
	spec := exampleSpec(t, func(s *AppSpec) {
		s.Ports = append(s.Ports, Port{Name: "plain", ContainerPort: 7000, Protocol: ProtocolTCP, Expose: true})
	})
	got, err := edge.ParseAnnotation(EdgeAnnotation(spec))
	if err != nil {
		t.Fatalf("the edge refuses rollout's annotation: %v", err)
	}
	want := []edge.Exposure{{Port: "http", Hosts: []string{"shop.company.example"}}, {Port: "ssh", TCPFrontendPort: 2222}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("edge reads %+v, want %+v", got, want)
	}
	resend := exampleSpec(t, func(s *AppSpec) { s.Ports[0].ResendAfter, s.Ports[0].Sticky = "1500ms", true })
	if got, err := edge.ParseAnnotation(EdgeAnnotation(resend)); err != nil || got[0].ResendAfterMs != 1500 || !got[0].Sticky {
		t.Fatalf("resendAfter 1500ms and sticky reach the edge as %+v (%v), want resendAfterMs 1500 and sticky", got, err)
	}
	none := exampleSpec(t, func(s *AppSpec) {
		for i := range s.Ports {
			s.Ports[i].Hosts, s.Ports[i].TCPFrontendPort = nil, 0
		}
	})
	if _, err := edge.ParseAnnotation(EdgeAnnotation(none)); err != nil || EdgeAnnotation(none) != "[]" {
		t.Fatalf("an app with nothing for the edge: %q %v", EdgeAnnotation(none), err)
	}
}

// TestRenderColorService: the per-color Service the edge reaches a version
// through has the contract's shape: NodePort, Local policy, the hosted
// ports only (not ssh, not metrics), selecting one color.
func TestRenderColorService(t *testing.T) {
	spec := exampleSpec(t, nil)
	svc := RenderColorService(spec, ColorGreen, testOwner)
	want := map[string]string{contract.LabelManagedBy: "tsys-ci", contract.LabelAppName: "shop", LabelColor: "green"}
	checks := []struct {
		what      string
		got, want any
	}{
		{"name", svc.Name, contract.ColorServiceName("shop", ColorGreen)},
		{"namespace", svc.Namespace, "shop"},
		{"type", svc.Spec.Type, corev1.ServiceTypeNodePort},
		{"policy", svc.Spec.ExternalTrafficPolicy, corev1.ServiceExternalTrafficPolicyLocal},
		{"selector", svc.Spec.Selector, want},
		{"labels", svc.Labels, want},
		{"owner", svc.OwnerReferences[0].UID, testOwner.UID},
		{"ports", len(svc.Spec.Ports), 1},
		{"port name", svc.Spec.Ports[0].Name, "http"},
		{"port", svc.Spec.Ports[0].Port, int32(8080)},
		{"target", svc.Spec.Ports[0].TargetPort.StrVal, "http"},
		{"node port left to the API server", svc.Spec.Ports[0].NodePort, int32(0)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	noHosts := exampleSpec(t, func(s *AppSpec) { s.Ports[0].Hosts = nil })
	if svc := RenderColorService(noHosts, ColorBlue, testOwner); svc != nil {
		t.Errorf("an app without hosts got a color Service: %+v", svc)
	}
}
