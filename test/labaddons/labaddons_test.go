package labaddons

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/addons"
	"github.com/tsys-group/tsys-ci/test/apiserver"
	"github.com/tsys-group/tsys-ci/test/lab"
)

func TestMain(m *testing.M) { apiserver.Main(m, nil) }

// The adapter hands the add-ons the lab's own addresses.
func TestClusterAddresses(t *testing.T) {
	c := Cluster{}
	nodes := c.Nodes()
	if len(nodes) != len(lab.Nodes) {
		t.Fatalf("%d nodes, want %d", len(nodes), len(lab.Nodes))
	}
	cp := 0
	for _, n := range nodes {
		if !c.Subnet().Contains(n.Address) {
			t.Errorf("node %s at %s is outside the lab subnet %s", n.Name, n.Address, c.Subnet())
		}
		if n.ControlPlane {
			cp++
		}
	}
	if cp != 3 {
		t.Errorf("%d control-plane nodes, want db1-3", cp)
	}
	first, last := c.LoadBalancerPool()
	if !c.Subnet().Contains(first) || !c.Subnet().Contains(last) || last.Less(first) {
		t.Errorf("MetalLB range %s-%s is not inside %s", first, last, c.Subnet())
	}
	for _, n := range nodes {
		if !n.Address.Less(first) && !last.Less(n.Address) {
			t.Errorf("node %s's address %s is inside the MetalLB range", n.Name, n.Address)
		}
	}
}

// Promote gets the MetalLB range less the addresses the lab keeps, the
// registry's (the first) among them.
func TestPromotePool(t *testing.T) {
	first, last := netip.MustParseAddr("10.213.0.200"), netip.MustParseAddr("10.213.0.250")
	p, err := PromotePool(first, last)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Addresses) != 1 || p.Addresses[0] != "10.213.0.210-10.213.0.250" {
		t.Errorf("pool addresses %v, want [10.213.0.210-10.213.0.250]", p.Addresses)
	}
	if _, err := PromotePool(first, netip.MustParseAddr("10.213.0.205")); err == nil {
		t.Error("a range of 6 addresses gave a pool, want an error: all are kept for the lab")
	}
}

// The pool lands where rollout's allocator looks, an update keeps the
// allocations made, and a second write of the same pool changes nothing.
func TestWritePromotePool(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := apiserver.Client(t)
	p1, err := PromotePool(netip.MustParseAddr("10.213.0.200"), netip.MustParseAddr("10.213.0.250"))
	if err != nil {
		t.Fatal(err)
	}
	if err := WritePromotePool(ctx, c, p1); err != nil {
		t.Fatal(err)
	}
	a := &rollout.Allocator{Client: c, Namespace: rollout.DefaultAllocNamespace, Name: rollout.DefaultAllocName}
	got, err := a.Allocate(ctx, rollout.AppKey("web", "hello"), []string{"http"})
	if err != nil {
		t.Fatalf("allocating from the pool written: %v", err)
	}
	if ip := netip.MustParseAddr(got.Address); ip.Less(netip.MustParseAddr("10.213.0.210")) {
		t.Errorf("allocated %s, one of the addresses the lab keeps", got.Address)
	}
	if port := got.Ports["http"]; port < PromotePorts.Min || port > PromotePorts.Max {
		t.Errorf("allocated port %d, outside %d-%d", port, PromotePorts.Min, PromotePorts.Max)
	}
	cm, err := c.CoreV1().ConfigMaps(rollout.DefaultAllocNamespace).Get(ctx, rollout.DefaultAllocName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rv := cm.ResourceVersion
	if err := WritePromotePool(ctx, c, p1); err != nil {
		t.Fatal(err)
	}
	p2, err := PromotePool(netip.MustParseAddr("10.213.0.200"), netip.MustParseAddr("10.213.0.240"))
	if err != nil {
		t.Fatal(err)
	}
	cm, err = c.CoreV1().ConfigMaps(rollout.DefaultAllocNamespace).Get(ctx, rollout.DefaultAllocName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.ResourceVersion != rv {
		t.Errorf("writing the same pool again changed the ConfigMap (resourceVersion %s -> %s)", rv, cm.ResourceVersion)
	}
	if err := WritePromotePool(ctx, c, p2); err != nil {
		t.Fatal(err)
	}
	cm, err = c.CoreV1().ConfigMaps(rollout.DefaultAllocNamespace).Get(ctx, rollout.DefaultAllocName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pool rollout.Pool
	if err := json.Unmarshal([]byte(cm.Data[rollout.PoolKey]), &pool); err != nil {
		t.Fatal(err)
	}
	if pool.Addresses[0] != "10.213.0.210-10.213.0.240" {
		t.Errorf("pool after the update %v, want 10.213.0.210-10.213.0.240", pool.Addresses)
	}
	if cm.Data[rollout.AllocationsKey] == "" {
		t.Errorf("updating the pool dropped the allocations: %v", cm.Data)
	}
	again, err := a.Allocate(ctx, rollout.AppKey("web", "hello"), []string{"http"})
	if err != nil {
		t.Fatal(err)
	}
	if again.Address != got.Address || again.Ports["http"] != got.Ports["http"] {
		t.Errorf("the app moved from %+v to %+v after the pool update", got, again)
	}
}

var _ addons.Cluster = Cluster{}
