package rollout

import (
	"sync"
	"time"
)

// stepClock is a test clock: every Now moves time on by tick and After
// returns at once after moving time on by d, so probes run without waiting
// and measured latencies are exactly tick.
type stepClock struct {
	mu   sync.Mutex
	now  time.Time
	tick time.Duration
}

func newStepClock(tick time.Duration) *stepClock {
	return &stepClock{now: time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC), tick: tick}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.tick)
	return c.now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}
