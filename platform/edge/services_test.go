package edge

import (
	"maps"
	"slices"

	"github.com/tsys-group/tsys-ci/internal/contract"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// lbService is a LoadBalancer Service as promote writes it: labelled,
// annotated with the edge wiring, ports named, addresses in its status.
func lbService(ns, name, edge string, ports map[string]int32, ips ...string) corev1.Service {
	svc := corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels:      map[string]string{contract.LabelManagedBy: contract.ManagedBy, contract.LabelAppName: name},
			Annotations: map[string]string{contract.AnnotationEdge: edge},
		},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
	}
	for _, pn := range slices.Sorted(maps.Keys(ports)) {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: pn, Port: ports[pn], Protocol: corev1.ProtocolTCP})
	}
	for _, ip := range ips {
		svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return svc
}

// colorService is a color Service as rollout writes it: NodePort, labelled
// with the app and the color, the app's HTTP ports under the same names
// with their node ports.
func colorService(ns, app, color string, nodePorts map[string]int32) corev1.Service {
	svc := corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: contract.ColorServiceName(app, color),
			Labels: map[string]string{contract.LabelManagedBy: contract.ManagedBy, contract.LabelAppName: app, contract.LabelColor: color},
		},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort,
			Selector: map[string]string{contract.LabelManagedBy: contract.ManagedBy, contract.LabelAppName: app, contract.LabelColor: color}},
	}
	for _, pn := range slices.Sorted(maps.Keys(nodePorts)) {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: pn, Port: 80, NodePort: nodePorts[pn], Protocol: corev1.ProtocolTCP})
	}
	return svc
}

// withVersions gives an app Service the selector rollout writes (the live
// color, or both when color is "") and, unless weights is "", the
// edge-weights annotation.
func withVersions(svc corev1.Service, color, weights string) corev1.Service {
	svc.Spec.Selector = map[string]string{contract.LabelManagedBy: contract.ManagedBy, contract.LabelAppName: svc.Name}
	if color != "" {
		svc.Spec.Selector[contract.LabelColor] = color
	}
	if weights != "" {
		svc.Annotations[contract.AnnotationEdgeWeights] = weights
	}
	return svc
}

// node is a cluster Node with an InternalIP (none when ip is "") and taints.
func node(name, ip string, taints ...corev1.Taint) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Taints: taints}}
	if ip != "" {
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}
	}
	return n
}
