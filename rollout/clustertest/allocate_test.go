package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/rollout"
)

func poolConfigMap(t *testing.T, cs kubernetes.Interface, ns string, pool rollout.Pool) *rollout.Allocator {
	t.Helper()
	data, err := json.Marshal(pool)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: rollout.DefaultAllocName},
		Data:       map[string]string{rollout.PoolKey: string(data)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &rollout.Allocator{Client: cs, Namespace: ns, Name: rollout.DefaultAllocName}
}

// TestAllocateConcurrent: ten apps allocate two ports each at the same
// moment from a pool of exactly twenty; every address:port goes to one app
// only, and the pool is then full.
func TestAllocateConcurrent(t *testing.T) {
	cs, ns := newNamespace(t)
	alloc := poolConfigMap(t, cs, ns, rollout.Pool{Addresses: []string{"10.89.0.240", "10.89.0.241"}, Ports: rollout.PortRange{Min: 30000, Max: 30009}})
	ctx := context.Background()
	const apps = 10
	got := make([]*rollout.Allocation, apps)
	errs := make([]error, apps)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[i], errs[i] = alloc.Allocate(ctx, rollout.AppKey("team", fmt.Sprintf("app%d", i)), []string{"http", "ssh"})
		}()
	}
	close(start)
	wg.Wait()
	owner := map[string]int{}
	for i := range apps {
		if errs[i] != nil {
			t.Fatalf("app%d: %v", i, errs[i])
		}
		for name, port := range got[i].Ports {
			slot := fmt.Sprintf("%s:%d", got[i].Address, port)
			if prev, dup := owner[slot]; dup {
				t.Errorf("%s handed out twice: app%d and app%d (%s)", slot, prev, i, name)
			}
			owner[slot] = i
		}
	}
	if len(owner) != 2*apps {
		t.Fatalf("%d slots handed out, want %d", len(owner), 2*apps)
	}
	if _, err := alloc.Allocate(ctx, "team/late", []string{"http"}); err == nil || !strings.Contains(err.Error(), "pool is full") {
		t.Fatalf("full pool: %v", err)
	}
	again, err := alloc.Allocate(ctx, rollout.AppKey("team", "app3"), []string{"http", "ssh"})
	if err != nil || again.Address != got[3].Address || again.Ports["http"] != got[3].Ports["http"] {
		t.Fatalf("allocation not stable: %+v then %+v (%v)", got[3], again, err)
	}
}

func TestAllocateWithoutPool(t *testing.T) {
	cs, ns := newNamespace(t)
	alloc := &rollout.Allocator{Client: cs, Namespace: ns, Name: "missing"}
	if _, err := alloc.Allocate(context.Background(), "a/b", []string{"http"}); err == nil || !strings.Contains(err.Error(), "no load-balancer pool configured") {
		t.Fatalf("missing pool: %v", err)
	}
}
