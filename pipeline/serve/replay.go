package serve

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// ReplayCache remembers the webhook deliveries serve accepted during a
// window, so a delivery seen again (Harbor's own retry after a lost reply,
// or someone replaying a captured request) is refused instead of deploying
// twice. Memory is bounded: at most Max keys of 64 bytes; when full, the
// oldest entry goes first.
type ReplayCache struct {
	Window time.Duration
	Max    int

	mu    sync.Mutex
	seen  map[string]time.Time
	order []replayEntry // insertion order; entries expire in this order
}

type replayEntry struct {
	key string
	at  time.Time
}

// DefaultReplayWindow covers Harbor v2.6's whole retry schedule (10
// attempts, about 4.5 hours), so a retry of an accepted delivery is always
// recognized. Events older than the window are refused as stale.
const DefaultReplayWindow = 6 * time.Hour

// DefaultReplayMax bounds the cache; at one push a second it still spans
// almost three hours.
const DefaultReplayMax = 10000

// NewReplayCache returns an empty cache.
func NewReplayCache(window time.Duration, max int) *ReplayCache {
	return &ReplayCache{Window: window, Max: max, seen: map[string]time.Time{}}
}

// Seen reports whether key was recorded within the window before now.
func (c *ReplayCache) Seen(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	_, ok := c.seen[key]
	return ok
}

// Record remembers key as accepted at now. Only accepted deliveries are
// recorded: one refused (not the leader, queue full) must succeed when
// Harbor retries it.
func (c *ReplayCache) Record(key string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if _, ok := c.seen[key]; ok {
		return
	}
	for len(c.seen) >= c.Max && len(c.order) > 0 {
		delete(c.seen, c.order[0].key)
		c.order = c.order[1:]
	}
	c.seen[key] = now
	c.order = append(c.order, replayEntry{key, now})
}

// Len is the number of keys held.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *ReplayCache) expire(now time.Time) {
	n := 0
	for n < len(c.order) && now.Sub(c.order[n].at) >= c.Window {
		delete(c.seen, c.order[n].key)
		n++
	}
	if n > 0 {
		// Copy so the backing array does not grow without bound.
		c.order = append([]replayEntry(nil), c.order[n:]...)
	}
}

func hashKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
