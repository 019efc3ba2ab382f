package clustertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/rollout"
)

// setClock is a clock the test moves by hand. After moves it on by d at
// once, first running onAfter (a holder renewing while another waits).
type setClock struct {
	mu      sync.Mutex
	now     time.Time
	onAfter func()
}

func (c *setClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *setClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	hook := c.onAfter
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	c.add(d)
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
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
			locks[i], errs[i] = rollout.AcquireLock(ctx, cs, clock, ns, "shop", fmt.Sprintf("holder-%d", i), 30*time.Second, nil)
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
	next, err := rollout.AcquireLock(ctx, cs, clock, ns, "shop", "after-release", 30*time.Second, nil)
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
	dead, err := rollout.AcquireLock(ctx, cs, clock, ns, "shop", "dead", 30*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	clock.add(29 * time.Second)
	var held *rollout.HeldError
	if _, err := rollout.AcquireLock(ctx, cs, clock, ns, "shop", "rerun", 30*time.Second, nil); !errors.As(err, &held) || held.Holder != "dead" {
		t.Fatalf("lease taken before it expired: %v", err)
	}
	clock.add(2 * time.Second)
	rerun, err := rollout.AcquireLock(ctx, cs, clock, ns, "shop", "rerun", 30*time.Second, nil)
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

// TestLeaseSkewedClock: a process whose clock runs ahead sees a live
// holder's lease as expired; it watches the lease for one duration first,
// sees it renewed, and stays out.
func TestLeaseSkewedClock(t *testing.T) {
	cs, ns := newNamespace(t)
	ctx := context.Background()
	liveClock := &setClock{now: time.Now()}
	live, err := rollout.AcquireLock(ctx, cs, liveClock, ns, "shop", "live", 30*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	ahead := &setClock{now: time.Now().Add(time.Minute), onAfter: func() {
		liveClock.add(10 * time.Second)
		if err := live.Renew(ctx); err != nil {
			t.Errorf("live holder cannot renew: %v", err)
		}
	}}
	var waited []string
	_, err = rollout.AcquireLock(ctx, cs, ahead, ns, "shop", "ahead", 30*time.Second, func(f string, a ...any) { waited = append(waited, fmt.Sprintf(f, a...)) })
	var held *rollout.HeldError
	if !errors.As(err, &held) || held.Holder != "live" {
		t.Fatalf("a clock running ahead took a live lease: %v", err)
	}
	if len(waited) != 1 || !strings.Contains(waited[0], "watching it for 30s") {
		t.Fatalf("the wait was not announced: %q", waited)
	}
}
