package clustertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/rollout"
)

// setClock is a clock the test moves by hand.
type setClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *setClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *setClock) After(d time.Duration) <-chan time.Time {
	return make(chan time.Time) // never fires: no renewals in these tests
}
func (c *setClock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// TestLeaseOneWinner races eight promotes of one app for its lease: one
// wins, the others are told who holds it.
func TestLeaseOneWinner(t *testing.T) {
	cs, ns := newNamespace(t)
	clock := &setClock{now: time.Now()}
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	locks := make([]*rollout.Lock, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			locks[i], errs[i] = rollout.AcquireLock(ctx, cs, clock, ns, "shop", fmt.Sprintf("holder-%d", i), 30*time.Second)
		}()
	}
	close(start)
	wg.Wait()
	winners := 0
	var winner *rollout.Lock
	for i := range n {
		var held *rollout.HeldError
		switch {
		case errs[i] == nil:
			winners++
			winner = locks[i]
		case errors.As(errs[i], &held):
			if held.App != "shop" || held.Holder == fmt.Sprintf("holder-%d", i) {
				t.Errorf("loser %d told %+v", i, held)
			}
		default:
			t.Errorf("holder-%d: unexpected error %v", i, errs[i])
		}
	}
	if winners != 1 {
		t.Fatalf("%d promotes hold the lease at once", winners)
	}
	if err := winner.Renew(ctx); err != nil {
		t.Fatalf("winner cannot renew: %v", err)
	}
	if err := winner.Release(ctx); err != nil {
		t.Fatal(err)
	}
	next, err := rollout.AcquireLock(ctx, cs, clock, ns, "shop", "after-release", 30*time.Second)
	if err != nil {
		t.Fatalf("lease not free after release: %v", err)
	}
	_ = next
}

// TestLeaseExpiry: a holder that stops renewing (a killed process) loses
// the lease after its duration, and then cannot renew or release it.
func TestLeaseExpiry(t *testing.T) {
	cs, ns := newNamespace(t)
	clock := &setClock{now: time.Now()}
	ctx := context.Background()
	dead, err := rollout.AcquireLock(ctx, cs, clock, ns, "shop", "dead", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	clock.add(29 * time.Second)
	var held *rollout.HeldError
	if _, err := rollout.AcquireLock(ctx, cs, clock, ns, "shop", "rerun", 30*time.Second); !errors.As(err, &held) || held.Holder != "dead" {
		t.Fatalf("lease taken before it expired: %v", err)
	}
	clock.add(2 * time.Second)
	rerun, err := rollout.AcquireLock(ctx, cs, clock, ns, "shop", "rerun", 30*time.Second)
	if err != nil {
		t.Fatalf("expired lease not taken over: %v", err)
	}
	if err := dead.Renew(ctx); err == nil {
		t.Fatal("the old holder renewed a lease another process took over")
	}
	if err := dead.Release(ctx); err == nil {
		t.Fatal("the old holder released a lease another process holds")
	}
	if err := rerun.Renew(ctx); err != nil {
		t.Fatalf("new holder cannot renew: %v", err)
	}
}
