package rollout

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tsys-group/tsys-ci/internal/contract"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Version is one build of an app placed on one color.
type Version struct {
	Color    string
	Image    string
	Revision string
	Replicas int32
	// Secret is the release's env Secret (EnvSecretName), which the
	// spec's fromEnv variables are read from; "" for a release made
	// before the spec had any: those variables are then left out, as
	// that version ran without them.
	Secret string
}

// DeploymentName is the name of the app's Deployment of one color.
func DeploymentName(app, color string) string { return app + "-" + color }

// PreviewServiceName is the Service that reaches only the new color during
// a blue/green promote, so probes see the new version before users do.
func PreviewServiceName(app string) string { return app + "-preview" }

// RenderDeployment renders the Deployment of one version: pods spread over
// nodes, a preStop wait so endpoints drain before the process gets SIGTERM,
// readiness before traffic.
func RenderDeployment(spec *AppSpec, v Version, owner *metav1.OwnerReference) *appsv1.Deployment {
	labels := colorLabels(spec.Name, v.Color)
	annotations := map[string]string{AnnotationImage: v.Image, AnnotationRevision: v.Revision}
	if v.Secret != "" {
		annotations[AnnotationEnvSecret] = v.Secret
	}
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(spec, DeploymentName(spec.Name, v.Color), labels, owner),
		Spec: appsv1.DeploymentSpec{
			Replicas:             &v.Replicas,
			Selector:             &metav1.LabelSelector{MatchLabels: labels},
			RevisionHistoryLimit: ptr(int32(3)),
			Strategy:             deploymentStrategy(spec.Strategy.Type),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      labels,
					Annotations: copyLabels(annotations),
				},
				Spec: podSpec(spec, v, labels),
			},
		},
	}
	d.Annotations = annotations
	return d
}

func deploymentStrategy(t string) appsv1.DeploymentStrategy {
	if t == StrategyRecreate {
		return appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	}
	// Never fewer ready pods than wanted while pods are replaced in place.
	zero, one := intstr.FromInt32(0), intstr.FromInt32(1)
	return appsv1.DeploymentStrategy{
		Type:          appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &one},
	}
}

func podSpec(spec *AppSpec, v Version, labels map[string]string) corev1.PodSpec {
	c := corev1.Container{
		Name:            "app",
		Image:           v.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Resources:       resources(spec.Resources),
		ReadinessProbe:  probe(spec.Health.Readiness),
		LivenessProbe:   probe(spec.Health.Liveness),
		Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			Sleep: &corev1.SleepAction{Seconds: int64(spec.Shutdown.Drain.Seconds())},
		}},
	}
	for _, p := range spec.Ports {
		c.Ports = append(c.Ports, corev1.ContainerPort{Name: p.Name, ContainerPort: p.ContainerPort, Protocol: corev1.ProtocolTCP})
	}
	for _, e := range spec.Env {
		ev := corev1.EnvVar{Name: e.Name, Value: e.Value}
		switch {
		case e.SecretRef != nil:
			ev.ValueFrom = &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: e.SecretRef.Name}, Key: e.SecretRef.Key,
			}}
		case e.FromEnv != "" && v.Secret == "":
			continue
		case e.FromEnv != "":
			// The key is the variable's name in the pod (RenderEnvSecret).
			ev.ValueFrom = &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: v.Secret}, Key: e.Name,
			}}
		}
		c.Env = append(c.Env, ev)
	}
	ps := corev1.PodSpec{
		TerminationGracePeriodSeconds: ptr(int64(spec.Shutdown.GracePeriod.Seconds())),
		EnableServiceLinks:            ptr(false),
		// One pod per node before any node gets a second. Tainted nodes
		// (the control plane, a node that went down) are not counted:
		// with the default policy they count as empty domains, and four
		// replicas on three workers beside three servers never schedule.
		TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
			MaxSkew:           1,
			TopologyKey:       "kubernetes.io/hostname",
			WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: labels},
			NodeTaintsPolicy:  ptr(corev1.NodeInclusionPolicyHonor),
		}},
	}
	for _, vol := range spec.Volumes {
		claim := ClaimName(spec.Name, vol.Name)
		ps.Volumes = append(ps.Volumes, corev1.Volume{Name: vol.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
		}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: vol.Name, MountPath: vol.MountPath})
	}
	ps.Containers = []corev1.Container{c}
	return ps
}

func resources(r Resources) corev1.ResourceRequirements {
	list := func(l ResourceList) corev1.ResourceList {
		out := corev1.ResourceList{}
		if l.CPU != "" {
			out[corev1.ResourceCPU] = resource.MustParse(l.CPU)
		}
		if l.Memory != "" {
			out[corev1.ResourceMemory] = resource.MustParse(l.Memory)
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return corev1.ResourceRequirements{Requests: list(r.Requests), Limits: list(r.Limits)}
}

func probe(c *Check) *corev1.Probe {
	if c == nil {
		return nil
	}
	p := &corev1.Probe{PeriodSeconds: int32(c.Period.Seconds()), FailureThreshold: c.FailureThreshold}
	port := intstr.FromString(c.Port)
	if c.HTTP != "" {
		p.HTTPGet = &corev1.HTTPGetAction{Path: c.HTTP, Port: port}
	} else {
		p.TCPSocket = &corev1.TCPSocketAction{Port: port}
	}
	return p
}

// ClaimName is the PersistentVolumeClaim of one volume of app, shared by
// both colors.
func ClaimName(app, volume string) string { return app + "-" + volume }

// RenderClaims renders the app's volumes. They carry no owner reference:
// data outlives every version and the app's rollout state.
func RenderClaims(spec *AppSpec) []*corev1.PersistentVolumeClaim {
	var out []*corev1.PersistentVolumeClaim
	for _, v := range spec.Volumes {
		out = append(out, &corev1.PersistentVolumeClaim{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: objectMeta(spec, ClaimName(spec.Name, v.Name), AppLabels(spec.Name), nil),
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.PersistentVolumeAccessMode(v.AccessMode)},
				StorageClassName: ptr(v.Class),
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceStorage: resource.MustParse(v.Size),
				}},
			},
		})
	}
	return out
}

// RenderPDB keeps at least all but one pod of the app up through voluntary
// disruptions (node drains). An app with one replica gets none: a budget
// of zero disruptions would block every drain.
func RenderPDB(spec *AppSpec, owner *metav1.OwnerReference) *policyv1.PodDisruptionBudget {
	if *spec.Replicas < 2 {
		return nil
	}
	one := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: objectMeta(spec, spec.Name, AppLabels(spec.Name), owner),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &one,
			Selector:       &metav1.LabelSelector{MatchLabels: AppLabels(spec.Name)},
		},
	}
}

// EdgeEntry is one element of the tsys-ci.io/edge annotation (contract
// with the edge area).
type EdgeEntry struct {
	Port            string   `json:"port"`
	Hosts           []string `json:"hosts,omitempty"`
	TCPFrontendPort int32    `json:"tcpFrontendPort,omitempty"`
	// ResendAfterMs is Port.ResendAfter in milliseconds.
	ResendAfterMs int64 `json:"resendAfterMs,omitempty"`
	// Sticky is Port.Sticky.
	Sticky bool `json:"sticky,omitempty"`
}

// EdgeAnnotation renders the edge wiring of the exposed ports that have
// host names or a pass-through frontend port, in spec order. An exposed port
// with neither is reached on its load-balancer address only.
func EdgeAnnotation(spec *AppSpec) string {
	entries := []EdgeEntry{}
	for _, p := range spec.Ports {
		if p.Expose && (len(p.Hosts) > 0 || p.TCPFrontendPort != 0) {
			e := EdgeEntry{Port: p.Name, Hosts: p.Hosts, TCPFrontendPort: p.TCPFrontendPort, Sticky: p.Sticky}
			if d, err := time.ParseDuration(p.ResendAfter); err == nil && p.ResendAfter != "" {
				e.ResendAfterMs = d.Milliseconds() // checked by Validate
			}
			entries = append(entries, e)
		}
	}
	data, err := json.Marshal(entries)
	if err != nil {
		panic(fmt.Sprintf("marshalling edge entries: %v", err)) // plain structs cannot fail
	}
	return string(data)
}

// ExposedPorts returns the names of the ports on the load-balancer address.
func ExposedPorts(spec *AppSpec) []string {
	var out []string
	for _, p := range spec.Ports {
		if p.Expose {
			out = append(out, p.Name)
		}
	}
	return out
}

// RenderService renders the app's Service. With exposed ports it is the
// LoadBalancer Service of the contract: the address and ports from alloc,
// MetalLB's annotations and the edge wiring. Without, a ClusterIP Service
// with every port. color selects one Deployment; "" selects both (a
// weighted canary).
func RenderService(spec *AppSpec, alloc *Allocation, color string, owner *metav1.OwnerReference) (*corev1.Service, error) {
	selector := AppLabels(spec.Name)
	if color != "" {
		selector[LabelColor] = color
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(spec, spec.Name, AppLabels(spec.Name), owner),
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: selector},
	}
	exposed := ExposedPorts(spec)
	if len(exposed) == 0 {
		svc.Spec.Ports = servicePorts(spec, nil)
		return svc, nil
	}
	if alloc == nil {
		return nil, fmt.Errorf("app %s exposes ports %v but has no load-balancer address allocated", spec.Name, exposed)
	}
	ports := map[string]int32{}
	for _, name := range exposed {
		port, ok := alloc.Ports[name]
		if !ok {
			return nil, fmt.Errorf("app %s: port %s has no load-balancer port allocated at %s", spec.Name, name, alloc.Address)
		}
		ports[name] = port
	}
	svc.Spec.Type = corev1.ServiceTypeLoadBalancer
	// Cluster policy: MetalLB shares an address between Services with
	// different selectors only with it, and any node can take traffic.
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	svc.Spec.Ports = servicePorts(spec, ports)
	svc.Annotations = map[string]string{
		AnnotationLBIPs:         alloc.Address,
		AnnotationAllowShared:   SharingKey(alloc.Address),
		contract.AnnotationEdge: EdgeAnnotation(spec),
	}
	return svc, nil
}

// SharingKey is MetalLB's allow-shared-ip key for an address. Every Service
// on a pool address carries it from the start, so a later app can share
// the address without touching the first one.
func SharingKey(address string) string { return "tsys-ci-" + address }

// servicePorts lists exposed ports at their allocated numbers, or every
// port at its container port when ports is nil.
func servicePorts(spec *AppSpec, ports map[string]int32) []corev1.ServicePort {
	var out []corev1.ServicePort
	for _, p := range spec.Ports {
		number := p.ContainerPort
		if ports != nil {
			n, ok := ports[p.Name]
			if !ok {
				continue
			}
			number = n
		}
		out = append(out, corev1.ServicePort{Name: p.Name, Port: number, TargetPort: intstr.FromString(p.Name), Protocol: corev1.ProtocolTCP})
	}
	return out
}

// RenderPreviewService renders the ClusterIP Service that reaches only one
// color, every port at its container port: probes go through it (by the
// API server's service proxy) before the switch.
func RenderPreviewService(spec *AppSpec, color string, owner *metav1.OwnerReference) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(spec, PreviewServiceName(spec.Name), AppLabels(spec.Name), owner),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: colorLabels(spec.Name, color),
			Ports:    servicePorts(spec, nil),
		},
	}
}

func objectMeta(spec *AppSpec, name string, labels map[string]string, owner *metav1.OwnerReference) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Name: name, Namespace: spec.Namespace, Labels: copyLabels(labels)}
	if owner != nil {
		m.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return m
}

func copyLabels(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// HostedPorts are the ports the edge routes by host name (exposed HTTP
// ports with hosts), in spec order. An app with any gets per-color Services
// and edge weights.
func HostedPorts(spec *AppSpec) []Port {
	var out []Port
	for _, p := range spec.Ports {
		if p.Expose && len(p.Hosts) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// RenderColorService renders the Service through which the edge reaches
// one color of the app (contract.ColorServiceName): NodePort with
// externalTrafficPolicy Local, so a node's port reaches only that node's
// pods of the color and a dead node takes only its own edge servers with
// it; the hosted ports under their names, at their container ports (the
// API server allocates the node ports). Nil for an app with no hosted
// port: the edge reaches it on its load-balancer address only.
func RenderColorService(spec *AppSpec, color string, owner *metav1.OwnerReference) *corev1.Service {
	hosted := HostedPorts(spec)
	if len(hosted) == 0 {
		return nil
	}
	labels := colorLabels(spec.Name, color)
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(spec, contract.ColorServiceName(spec.Name, color), labels, owner),
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeNodePort,
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			Selector:              copyLabels(labels),
		},
	}
	for _, p := range hosted {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: p.Name, Port: p.ContainerPort, TargetPort: intstr.FromString(p.Name), Protocol: corev1.ProtocolTCP})
	}
	return svc
}
