package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/rollout"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// AppInfo is what the dashboard shows of one app beyond serve's own
// records: its rollout state (serving, previous, in progress, history) and
// where users reach it.
type AppInfo struct {
	State *rollout.State // nil: never promoted
	// Addresses are ADDRESS:PORT of the app's exposed ports (MetalLB).
	Addresses []string
	// Hosts are the names the edge routes to it.
	Hosts []string
}

// AppReader reads an app's AppInfo; KubeAppReader in the cluster.
type AppReader interface {
	AppInfo(ctx context.Context, namespace, app string) (*AppInfo, error)
}

// KubeAppReader reads the state ConfigMap and the app's Service, with
// the rights serve already has in app namespaces.
type KubeAppReader struct{ Client kubernetes.Interface }

// AppInfo implements AppReader.
func (k KubeAppReader) AppInfo(ctx context.Context, namespace, app string) (*AppInfo, error) {
	st, err := rollout.Status(ctx, k.Client, namespace, app)
	if err != nil {
		return nil, err
	}
	info := &AppInfo{State: st}
	svc, err := k.Client.CoreV1().Services(namespace).Get(ctx, app, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return info, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Service %s/%s: %w", namespace, app, err)
	}
	for _, in := range svc.Status.LoadBalancer.Ingress {
		for _, p := range svc.Spec.Ports {
			info.Addresses = append(info.Addresses, in.IP+":"+strconv.Itoa(int(p.Port)))
		}
	}
	var exposures []struct {
		Hosts []string `json:"hosts"`
	}
	if a := svc.Annotations[contract.AnnotationEdge]; a != "" && json.Unmarshal([]byte(a), &exposures) == nil {
		for _, e := range exposures {
			info.Hosts = append(info.Hosts, e.Hosts...)
		}
	}
	slices.Sort(info.Hosts)
	return info, nil
}
