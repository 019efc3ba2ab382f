package clustertest

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/apiserver"
)

// The dashboard's KubeAppReader reads promote's state ConfigMap and the
// Service rollout renders (with the address MetalLB would write in its
// status) from a real API server.
func TestKubeAppReader(t *testing.T) {
	c := apiserver.Client(t)
	ctx := context.Background()
	namespace(t, c, "app-info")
	r := serve.KubeAppReader{Client: c}

	info, err := r.AppInfo(ctx, "app-info", "shop")
	if err != nil || info.State != nil || len(info.Addresses) != 0 || len(info.Hosts) != 0 {
		t.Fatalf("an app never promoted: %+v %v", info, err)
	}

	st := &rollout.StateStore{Client: c, Namespace: "app-info", App: "shop", Clock: rollout.RealClock{}}
	state, err := st.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	image := "harbor.company.example/demo/shop@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	state.Active = &rollout.Release{Color: "green", Image: image, Revision: "abc1234"}
	state.Record(rollout.HistoryEntry{Release: *state.Active, Strategy: rollout.StrategyBlueGreen, Result: rollout.ResultPromoted})
	if err := st.Save(ctx, state); err != nil {
		t.Fatal(err)
	}
	spec, err := rollout.ParseSpec([]byte("name: shop\nnamespace: app-info\nports:\n- {name: http, containerPort: 8080, expose: true, hosts: [www.shop.example, shop.example]}\n- {name: admin, containerPort: 9090}\n"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := rollout.RenderService(spec, &rollout.Allocation{Address: "192.0.2.10", Ports: map[string]int32{"http": 8443}}, "green", nil)
	if err != nil {
		t.Fatal(err)
	}
	svc.Namespace = "app-info"
	if svc, err = c.CoreV1().Services("app-info").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}
	if _, err := c.CoreV1().Services("app-info").UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	info, err = r.AppInfo(ctx, "app-info", "shop")
	if err != nil {
		t.Fatal(err)
	}
	if info.State == nil || info.State.Active == nil || info.State.Active.Image != image || info.State.Phase != rollout.PhaseStable || len(info.State.History) != 1 {
		t.Fatalf("state %+v", info.State)
	}
	if !slices.Equal(info.Addresses, []string{"192.0.2.10:8443"}) || !slices.Equal(info.Hosts, []string{"shop.example", "www.shop.example"}) {
		t.Fatalf("addresses %v, hosts %v", info.Addresses, info.Hosts)
	}
}
