package clustertest

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/apiserver"
)

// Issue 17 finding 3: the newest accepted push of an app is kept in the
// app's namespace, beside (not in) promote's state ConfigMap, never moved
// back, and read by any replica.
func TestKubePushOrder(t *testing.T) {
	c := apiserver.Client(t)
	ctx := context.Background()
	namespace(t, c, "push-order")
	a, b := &serve.KubePushOrder{Client: c}, &serve.KubePushOrder{Client: c}
	if m, err := a.Newest(ctx, "push-order", "shop"); err != nil || m != nil {
		t.Fatalf("nothing recorded yet: %+v %v", m, err)
	}
	// promote's state exists and is written while serve records.
	st := &rollout.StateStore{Client: c, Namespace: "push-order", App: "shop", Clock: rollout.RealClock{}}
	state, err := st.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	newer := serve.PushMark{OccurAt: 200, Tag: "main-2", Digest: "sha256:2", Policy: "shop-main", Key: "k2"}
	if err := a.Record(ctx, "push-order", "shop", newer); err != nil {
		t.Fatal(err)
	}
	if err := b.Record(ctx, "push-order", "shop", serve.PushMark{OccurAt: 100, Tag: "main-1", Key: "k1"}); err != nil {
		t.Fatal(err)
	}
	if m, err := b.Newest(ctx, "push-order", "shop"); err != nil || m == nil || *m != newer {
		t.Fatalf("newest after an older record: %+v %v, want %+v", m, err, newer)
	}
	if err := st.Save(ctx, state); err != nil {
		t.Fatalf("promote's state write after serve recorded a push: %v", err)
	}
	if _, err := c.CoreV1().ConfigMaps("push-order").Get(ctx, serve.PushOrderName("shop"), metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.Record(ctx, "no-such-namespace", "shop", newer); err == nil || !strings.Contains(err.Error(), "no-such-namespace/shop") {
		t.Fatalf("a missing namespace: %v", err)
	}
}
