package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/tsys-group/tsys-ci/internal/contract"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The allocation object: one ConfigMap holds the pool and every app's
// place on it, so one resourceVersion guards all of them.
const (
	DefaultAllocNamespace = "tsys-ci-system"
	DefaultAllocName      = "tsys-ci-lb"
	PoolKey               = "pool.json"
	AllocationsKey        = "allocations.json"
)

// maxAllocAttempts bounds retries after losing a write race.
const maxAllocAttempts = 50

// Pool is the load-balancer addresses (MetalLB's pool) and the port range
// handed out on them. Apps share an address where their ports differ.
type Pool struct {
	Addresses []string  `json:"addresses"`
	Ports     PortRange `json:"ports"`
	// Edge, optional, says where promote reads the edge's HAProxy stats.
	Edge *EdgeConfig `json:"edge,omitempty"`
	// Gateway, optional, says where the gateway's auth service answers
	// (platform.yaml gateway.authURL).
	Gateway *GatewayConfig `json:"gateway,omitempty"`
}

// PortRange is an inclusive range of ports.
type PortRange struct {
	Min int32 `json:"min"`
	Max int32 `json:"max"`
}

// maxPoolAddresses bounds how many addresses a pool may expand to.
const maxPoolAddresses = 4096

// Validate says what is wrong with a pool.
func (p Pool) Validate() error {
	if len(p.Addresses) == 0 {
		return fmt.Errorf("pool has no addresses")
	}
	if _, err := p.addresses(); err != nil {
		return err
	}
	if p.Ports.Min < 1 || p.Ports.Max > 65535 || p.Ports.Min > p.Ports.Max {
		return fmt.Errorf("pool ports: %d-%d is not a port range within 1-65535", p.Ports.Min, p.Ports.Max)
	}
	if p.Edge != nil {
		if err := p.Edge.Validate(); err != nil {
			return fmt.Errorf("pool %w", err)
		}
	}
	if p.Gateway != nil {
		if err := p.Gateway.Validate(); err != nil {
			return fmt.Errorf("pool %w", err)
		}
	}
	return nil
}

// Edge returns the pool's edge settings (nil when it has none, or when no
// pool is configured: an app without exposed ports needs none).
func (a *Allocator) Edge(ctx context.Context) (*EdgeConfig, error) {
	cm, err := a.Client.CoreV1().ConfigMaps(a.Namespace).Get(ctx, a.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the edge settings in %s/%s: %w", a.Namespace, a.Name, err)
	}
	pool, _, err := decodeAllocations(cm)
	if err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s: %w", a.Namespace, a.Name, err)
	}
	return pool.Edge, nil
}

// Gateway returns the pool's gateway settings (nil when it has none, or
// when no pool is configured).
func (a *Allocator) Gateway(ctx context.Context) (*GatewayConfig, error) {
	if a == nil {
		return nil, nil
	}
	cm, err := a.Client.CoreV1().ConfigMaps(a.Namespace).Get(ctx, a.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the gateway settings in %s/%s: %w", a.Namespace, a.Name, err)
	}
	pool, _, err := decodeAllocations(cm)
	if err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s: %w", a.Namespace, a.Name, err)
	}
	return pool.Gateway, nil
}

// Allocator hands out load-balancer addresses and ports from the pool in
// one ConfigMap. Every change is an update conditional on the object's
// resourceVersion, so two promotes running at once never get the same
// address and port: the loser of a race reads again and picks again.
type Allocator struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string
}

// Allocation is an app's place on the load-balancer pool: one address and
// one port per exposed port name. It is stable for the life of the app.
type Allocation struct {
	Address string           `json:"address"`
	Ports   map[string]int32 `json:"ports"`
}

// AppKey identifies an app in the allocation object.
func AppKey(namespace, app string) string { return namespace + "/" + app }

// Allocate returns app's place on the pool, creating it or adding ports to
// it as needed. An app keeps its address and ports for its whole life.
func (a *Allocator) Allocate(ctx context.Context, key string, ports []string) (*Allocation, error) {
	for attempt := 0; attempt < maxAllocAttempts; attempt++ {
		cm, err := a.Client.CoreV1().ConfigMaps(a.Namespace).Get(ctx, a.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("no load-balancer pool configured: ConfigMap %s/%s is missing; create it with key %s such as {\"addresses\":[\"10.0.0.240\"],\"ports\":{\"min\":30000,\"max\":30999}}", a.Namespace, a.Name, PoolKey)
		}
		if err != nil {
			return nil, fmt.Errorf("reading load-balancer allocations %s/%s: %w", a.Namespace, a.Name, err)
		}
		pool, allocs, err := decodeAllocations(cm)
		if err != nil {
			return nil, fmt.Errorf("ConfigMap %s/%s: %w", a.Namespace, a.Name, err)
		}
		got, changed, err := place(pool, allocs, key, ports)
		if err != nil {
			return nil, err
		}
		if !changed {
			return got, nil
		}
		allocs[key] = *got
		data, err := json.MarshalIndent(allocs, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encoding allocations: %w", err)
		}
		next := cm.DeepCopy()
		if next.Data == nil {
			next.Data = map[string]string{}
		}
		next.Data[AllocationsKey] = string(data)
		_, err = a.Client.CoreV1().ConfigMaps(a.Namespace).Update(ctx, next, metav1.UpdateOptions{FieldManager: contract.FieldManager})
		if apierrors.IsConflict(err) {
			continue // another promote allocated first; read its result and pick again
		}
		if err != nil {
			return nil, fmt.Errorf("recording allocation of %s in %s/%s: %w", key, a.Namespace, a.Name, err)
		}
		return got, nil
	}
	return nil, fmt.Errorf("allocating a load-balancer address for %s: lost the race %d times; run the command again", key, maxAllocAttempts)
}

func decodeAllocations(cm *corev1.ConfigMap) (Pool, map[string]Allocation, error) {
	var pool Pool
	if err := json.Unmarshal([]byte(cm.Data[PoolKey]), &pool); err != nil {
		return pool, nil, fmt.Errorf("key %s is not a pool: %w", PoolKey, err)
	}
	if err := pool.Validate(); err != nil {
		return pool, nil, fmt.Errorf("key %s: %w", PoolKey, err)
	}
	allocs := map[string]Allocation{}
	if raw := cm.Data[AllocationsKey]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &allocs); err != nil {
			return pool, nil, fmt.Errorf("key %s is not valid: %w", AllocationsKey, err)
		}
	}
	return pool, allocs, nil
}

// place is the pure decision: keep the app's address, give it the lowest
// free ports there; a new app goes to the first address (in pool order)
// with enough free ports, so addresses are shared as far as ports allow.
func place(pool Pool, allocs map[string]Allocation, key string, ports []string) (*Allocation, bool, error) {
	used := map[string]map[int32]string{}
	keys := make([]string, 0, len(allocs))
	for k := range allocs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		al := allocs[k]
		if used[al.Address] == nil {
			used[al.Address] = map[int32]string{}
		}
		for _, p := range al.Ports {
			used[al.Address][p] = k
		}
	}
	if cur, ok := allocs[key]; ok {
		missing := missingPorts(cur, ports)
		if len(missing) == 0 {
			return &cur, false, nil
		}
		free := freePorts(pool.Ports, used[cur.Address], len(missing))
		if len(free) < len(missing) {
			return nil, false, fmt.Errorf("app %s needs ports %v on its address %s but only %d are free in %d-%d; widen the pool's port range", key, missing, cur.Address, len(free), pool.Ports.Min, pool.Ports.Max)
		}
		next := Allocation{Address: cur.Address, Ports: map[string]int32{}}
		for n, p := range cur.Ports {
			next.Ports[n] = p
		}
		for i, name := range missing {
			next.Ports[name] = free[i]
		}
		return &next, true, nil
	}
	addrs, err := pool.addresses()
	if err != nil {
		return nil, false, err
	}
	for _, addr := range addrs {
		free := freePorts(pool.Ports, used[addr], len(ports))
		if len(free) < len(ports) {
			continue
		}
		al := Allocation{Address: addr, Ports: map[string]int32{}}
		for i, name := range ports {
			al.Ports[name] = free[i]
		}
		return &al, true, nil
	}
	return nil, false, fmt.Errorf("load-balancer pool is full: no address of %v has %d free ports in %d-%d; add addresses or widen the range", pool.Addresses, len(ports), pool.Ports.Min, pool.Ports.Max)
}

func missingPorts(al Allocation, ports []string) []string {
	var out []string
	for _, p := range ports {
		if _, ok := al.Ports[p]; !ok {
			out = append(out, p)
		}
	}
	return out
}

func freePorts(r PortRange, used map[int32]string, n int) []int32 {
	var out []int32
	for p := r.Min; p <= r.Max && len(out) < n; p++ {
		if _, taken := used[p]; !taken {
			out = append(out, p)
		}
	}
	return out
}

// addresses expands the pool's entries, written as MetalLB writes them: an
// address, a CIDR ("10.0.0.240/28") or a range ("10.0.0.240-10.0.0.250").
func (p Pool) addresses() ([]string, error) {
	var out []string
	for i, entry := range p.Addresses {
		first, last, err := addressRange(entry)
		if err != nil {
			return nil, fmt.Errorf("pool addresses[%d]: %q %v; write an address, a CIDR or first-last", i, entry, err)
		}
		for a := first; ; a = a.Next() {
			if len(out) == maxPoolAddresses {
				return nil, fmt.Errorf("pool addresses: more than %d addresses", maxPoolAddresses)
			}
			out = append(out, a.String())
			if a == last {
				break
			}
		}
	}
	return out, nil
}

func addressRange(entry string) (netip.Addr, netip.Addr, error) {
	if from, to, ok := strings.Cut(entry, "-"); ok {
		first, err1 := netip.ParseAddr(strings.TrimSpace(from))
		last, err2 := netip.ParseAddr(strings.TrimSpace(to))
		if err1 != nil || err2 != nil || first.Is4() != last.Is4() || last.Less(first) {
			return first, last, fmt.Errorf("is not a range of addresses")
		}
		return first, last, nil
	}
	if strings.Contains(entry, "/") {
		prefix, err := netip.ParsePrefix(entry)
		if err != nil {
			return netip.Addr{}, netip.Addr{}, fmt.Errorf("is not a CIDR")
		}
		prefix = prefix.Masked()
		first := prefix.Addr()
		bits := first.BitLen() - prefix.Bits()
		if bits > 12 {
			return first, first, fmt.Errorf("is larger than %d addresses", maxPoolAddresses)
		}
		last := first
		for range (1 << bits) - 1 {
			last = last.Next()
		}
		return first, last, nil
	}
	a, err := netip.ParseAddr(entry)
	if err != nil {
		return a, a, fmt.Errorf("is not an IP address")
	}
	return a, a, nil
}
