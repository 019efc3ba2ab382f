package serve

import (
	"sync"
	"time"
)

// LoginThrottle slows down repeated failed logins, per login name and per
// client address, so guessing passwords for one account or spraying many
// accounts from one address both get slow. After Free failures a key must
// wait Base, doubling with each further failure up to Max; a key with no
// failure for Forget is forgotten. Time comes from the caller, so tests
// advance it instead of sleeping.
type LoginThrottle struct {
	Free   int
	Base   time.Duration
	Max    time.Duration
	Forget time.Duration
	// Cap bounds the number of keys held.
	Cap int

	mu   sync.Mutex
	keys map[string]*throttleEntry
	// fullUntil: the map was full of keys that must wait, so a failure
	// could not be recorded; until then a key not held waits too.
	fullUntil time.Time
}

type throttleEntry struct {
	failures int
	last     time.Time
	until    time.Time
}

// NewLoginThrottle returns a throttle with tsys-ci serve's defaults: three
// free failures, then 1 s doubling up to 5 min, forgotten after 15 min.
func NewLoginThrottle() *LoginThrottle {
	return &LoginThrottle{Free: 3, Base: time.Second, Max: 5 * time.Minute, Forget: 15 * time.Minute, Cap: 10000,
		keys: map[string]*throttleEntry{}}
}

// Wait returns how long the caller must still wait before a login for any
// of keys is tried; zero means go ahead.
func (t *LoginThrottle) Wait(now time.Time, keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		e := t.keys[k]
		if e == nil {
			if d := t.fullUntil.Sub(now); d > wait {
				wait = d
			}
			continue
		}
		if now.Sub(e.last) >= t.Forget {
			delete(t.keys, k)
			continue
		}
		if d := e.until.Sub(now); d > wait {
			wait = d
		}
	}
	return wait
}

// Fail records a failed login for every key.
func (t *LoginThrottle) Fail(now time.Time, keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		e := t.keys[k]
		if e == nil || now.Sub(e.last) >= t.Forget {
			if !t.makeRoom(now) {
				// Full of keys that must wait: record nothing, and make
				// every key not held wait (fail closed) rather than let
				// this one go unthrottled.
				t.fullUntil = now.Add(t.Base)
				continue
			}
			e = &throttleEntry{}
			t.keys[k] = e
		}
		e.failures++
		e.last = now
		if over := e.failures - t.Free; over > 0 {
			d := t.Base
			for i := 1; i < over && d < t.Max; i++ {
				d *= 2
			}
			if d > t.Max {
				d = t.Max
			}
			e.until = now.Add(d)
		}
	}
}

// Succeed forgets the failures of key (the login name, not the address: one
// good account must not clear an address that sprays others).
func (t *LoginThrottle) Succeed(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.keys, key)
}

// makeRoom drops forgotten keys when the map is full; if it is still
// full, the key that must not wait now with the fewest failures (the
// oldest of those). A key that must wait is never dropped: filling the
// map (many addresses spraying new names) must not clear someone's
// throttle, and dropping a key that has not reached its wait costs an
// attacker a failure per key of the full map for each one. It reports
// false when every key must wait (nothing dropped). Called with mu held.
func (t *LoginThrottle) makeRoom(now time.Time) bool {
	if len(t.keys) < t.Cap {
		return true
	}
	victim := ""
	var vf int
	var vAt time.Time
	for k, e := range t.keys {
		if now.Sub(e.last) >= t.Forget {
			delete(t.keys, k)
			continue
		}
		if e.until.After(now) {
			continue
		}
		if victim == "" || e.failures < vf || e.failures == vf && e.last.Before(vAt) {
			victim, vf, vAt = k, e.failures, e.last
		}
	}
	if len(t.keys) < t.Cap {
		return true
	}
	if victim == "" {
		return false
	}
	delete(t.keys, victim)
	return true
}
