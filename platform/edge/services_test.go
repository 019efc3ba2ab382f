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
