package rollout

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPlace(t *testing.T) {
	pool := Pool{Addresses: []string{"10.0.0.240", "10.0.0.241"}, Ports: PortRange{Min: 30000, Max: 30002}}
	allocs := map[string]Allocation{}
	add := func(key string, ports ...string) *Allocation {
		t.Helper()
		al, changed, err := place(pool, allocs, key, ports)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if changed {
			allocs[key] = *al
		}
		return al
	}
	a := add("a/a", "http", "ssh")
	if !reflect.DeepEqual(*a, Allocation{Address: "10.0.0.240", Ports: map[string]int32{"http": 30000, "ssh": 30001}}) {
		t.Fatalf("first app: %+v", a)
	}
	// Shares the first address on the one port left.
	if b := add("b/b", "http"); b.Address != "10.0.0.240" || b.Ports["http"] != 30002 {
		t.Fatalf("second app: %+v", b)
	}
	// Needs two ports: the first address is full, so the second.
	if c := add("c/c", "http", "grpc"); c.Address != "10.0.0.241" || c.Ports["http"] != 30000 || c.Ports["grpc"] != 30001 {
		t.Fatalf("third app: %+v", c)
	}
	// Asking again changes nothing: stable for the life of the app.
	if _, changed, _ := place(pool, allocs, "a/a", []string{"http", "ssh"}); changed {
		t.Fatal("a repeated allocation changed")
	}
	// A new port of c stays on c's address.
	if c := add("c/c", "http", "grpc", "admin"); c.Address != "10.0.0.241" || c.Ports["admin"] != 30002 || c.Ports["http"] != 30000 {
		t.Fatalf("grown app: %+v", c)
	}
	if _, _, err := place(pool, allocs, "d/d", []string{"http"}); err == nil || !strings.Contains(err.Error(), "pool is full") {
		t.Fatalf("full pool: %v", err)
	}
	if _, _, err := place(pool, allocs, "a/a", []string{"http", "ssh", "more"}); err == nil || !strings.Contains(err.Error(), "on its address 10.0.0.240") {
		t.Fatalf("grown app on a full address: %v", err)
	}
}

func TestPoolValidate(t *testing.T) {
	for _, c := range []struct {
		pool Pool
		want string
	}{
		{Pool{Ports: PortRange{1, 2}}, "no addresses"},
		{Pool{Addresses: []string{"nope"}, Ports: PortRange{1, 2}}, `addresses[0]: "nope" is not an IP address`},
		{Pool{Addresses: []string{"10.0.0.9-10.0.0.1"}, Ports: PortRange{1, 2}}, "is not a range"},
		{Pool{Addresses: []string{"10.0.0.0/8"}, Ports: PortRange{1, 2}}, "larger than 4096"},
		{Pool{Addresses: []string{"10.0.0.1"}, Ports: PortRange{5, 2}}, "5-2 is not a port range"},
	} {
		if err := c.pool.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: want %q, got %v", c.pool, c.want, err)
		}
	}
}

func TestPoolAddresses(t *testing.T) {
	p := Pool{Addresses: []string{"10.0.0.240/30", "10.0.1.7-10.0.1.9", "10.0.2.1"}, Ports: PortRange{1, 2}}
	got, err := p.addresses()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.240", "10.0.0.241", "10.0.0.242", "10.0.0.243", "10.0.1.7", "10.0.1.8", "10.0.1.9", "10.0.2.1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// FuzzPool feeds arbitrary pool.json text (written by hand or by the
// platform into a ConfigMap) to the pool checks: no panic, a bounded
// address list, and placement only on the pool's own addresses and ports.
func FuzzPool(f *testing.F) {
	f.Add(`{"addresses":["10.0.0.240/29","10.0.1.1-10.0.1.3"],"ports":{"min":30000,"max":30010}}`)
	f.Add(`{"addresses":["fd00::1-fd00::3"],"ports":{"min":1,"max":65535}}`)
	f.Add(`{"addresses":["10.0.0.1"],"ports":{"min":5,"max":4}}`)
	f.Fuzz(func(t *testing.T, raw string) {
		cm := &corev1.ConfigMap{Data: map[string]string{PoolKey: raw}}
		pool, allocs, err := decodeAllocations(cm)
		if err != nil {
			return
		}
		addrs, err := pool.addresses()
		if err != nil || len(addrs) == 0 || len(addrs) > maxPoolAddresses {
			t.Fatalf("valid pool expands to %d addresses (%v)", len(addrs), err)
		}
		al, _, err := place(pool, allocs, "a/b", []string{"http"})
		if err != nil {
			return
		}
		if al.Address != addrs[0] || al.Ports["http"] != pool.Ports.Min {
			t.Fatalf("first placement %+v on pool %+v", al, pool)
		}
	})
}
