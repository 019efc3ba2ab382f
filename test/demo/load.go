package demo

import (
	"context"
	"sort"
	"sync"
	"time"
)

// load sends GET requests from a few workers until stopped and counts what
// failed: the honest measure of availability during a promote.
type load struct {
	mu     sync.Mutex
	events []event
	errs   map[string]int
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type event struct {
	at time.Time
	ok bool
}

// LoadStats are a load run's totals; Outage is the longest span from the
// last good answer before a failure to the first good answer after it.
type LoadStats struct {
	Total, Failed int
	Outage        time.Duration
	Errors        map[string]int
}

// startLoad starts workers that GET url back to back (a pause of pace
// between requests of one worker).
func startLoad(ctx context.Context, url string, workers int, pace time.Duration) *load {
	ctx, cancel := context.WithCancel(ctx)
	l := &load{cancel: cancel, errs: map[string]int{}}
	for i := 0; i < workers; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				_, err := get(ctx, url)
				if ctx.Err() != nil {
					return // stopped mid-request: not the app's failure
				}
				l.mu.Lock()
				l.events = append(l.events, event{at: time.Now(), ok: err == nil})
				if err != nil {
					l.errs[shortErr(err)]++
				}
				l.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(pace):
				}
			}
		}()
	}
	return l
}

// stop ends the load and sums it up.
func (l *load) stop() LoadStats {
	l.cancel()
	l.wg.Wait()
	sort.Slice(l.events, func(i, j int) bool { return l.events[i].at.Before(l.events[j].at) })
	st := LoadStats{Total: len(l.events), Errors: l.errs}
	var lastOK time.Time
	failing := false
	for _, e := range l.events {
		switch {
		case !e.ok:
			st.Failed++
			failing = true
		case failing:
			from := lastOK
			if from.IsZero() {
				from = l.events[0].at
			}
			if d := e.at.Sub(from); d > st.Outage {
				st.Outage = d
			}
			failing = false
			lastOK = e.at
		default:
			lastOK = e.at
		}
	}
	if failing && len(l.events) > 0 { // never came back before the end
		from := lastOK
		if from.IsZero() {
			from = l.events[0].at
		}
		st.Outage = l.events[len(l.events)-1].at.Sub(from)
	}
	return st
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}
