package edge

import (
	"context"
	"fmt"

	"github.com/tsys-group/tsys-ci/internal/contract"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Selector selects the Services tsys-ci manages.
const Selector = contract.LabelManagedBy + "=" + contract.ManagedBy

// ListServices reads the Services tsys-ci manages in namespace (all
// namespaces when it is empty).
func ListServices(ctx context.Context, client kubernetes.Interface, namespace string) ([]corev1.Service, error) {
	list, err := client.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{LabelSelector: Selector})
	if err != nil {
		where := "all namespaces"
		if namespace != "" {
			where = "namespace " + namespace
		}
		return nil, fmt.Errorf("listing Services labelled %s in %s: %w", Selector, where, err)
	}
	return list.Items, nil
}

// ListNodes reads the cluster's Nodes: an edge serving by version sends
// traffic to their NodePorts (pools.go). Nodes are cluster-wide, so even
// an edge watching one namespace needs to read them.
func ListNodes(ctx context.Context, client kubernetes.Interface) ([]corev1.Node, error) {
	list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Nodes: %w (the edge's account needs get, list and watch on nodes: docs/edge.md, --watch)", err)
	}
	return list.Items, nil
}

// RenderCluster is `tsys-ci edge render`: the cluster's edge wiring,
// checked and rendered. Claims Build refuses are left out of what is
// rendered and reported in the *InputError returned with it.
func RenderCluster(ctx context.Context, client kubernetes.Interface, namespace string, opts Options) (*Model, Files, error) {
	services, err := ListServices(ctx, client, namespace)
	if err != nil {
		return nil, Files{}, err
	}
	var nodes []corev1.Node
	if opts.ByVersion {
		if nodes, err = ListNodes(ctx, client); err != nil {
			return nil, Files{}, err
		}
	}
	m, err := Build(services, nodes, opts)
	if m == nil {
		return nil, Files{}, err
	}
	// With an *InputError, m holds everything else: rendered, and the
	// error returned beside it.
	return m, Render(m, opts), err
}

// Summary is one line saying what a Model holds, for logs and the CLI.
func (m *Model) Summary() string {
	s := fmt.Sprintf("%d backends, %d host routes, %d TCP frontends", len(m.Backends), len(m.Routes), len(m.TCPFrontends))
	if len(m.Pending) > 0 {
		s += fmt.Sprintf("; waiting for a load-balancer address: %v", m.Pending)
	}
	return s
}
