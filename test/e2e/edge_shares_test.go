//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/internal/contract"
)

// weightChange is one value of the app Service's edge-weights annotation
// and when the test first saw it.
type weightChange struct {
	at      time.Time
	weights map[string]int
}

// watchWeights polls the Service's edge-weights annotation every 100 ms
// until stop, which returns each change in order.
func watchWeights(ctx context.Context, c kubernetes.Interface, ns, name string) (stop func() []weightChange) {
	var (
		mu      sync.Mutex
		changes []weightChange
		last    string
	)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			svc, err := c.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
			if err == nil {
				if a := svc.Annotations[contract.AnnotationEdgeWeights]; a != last {
					var w map[string]int
					if json.Unmarshal([]byte(a), &w) == nil {
						mu.Lock()
						changes = append(changes, weightChange{at: time.Now(), weights: w})
						mu.Unlock()
					}
					last = a
				}
			}
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() []weightChange {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return changes
	}
}

// stepShare is the share of the new version among the answers the load
// got while one canary weight held at the edge.
type stepShare struct {
	asked           int // percent
	answers, onNew  int
	from, to        time.Time
	sharePercentage float64
}

// edgeSettle is how long after the annotation changes the test starts
// counting: edge sync --watch (debounce 200 ms) sets the weight through
// HAProxy's runtime API, and requests already sent finish on the old one.
const edgeSettle = 1500 * time.Millisecond

// canaryShares splits the load's answers by the weights the Service asked
// of the edge for newColor, and counts newVersion's share in each step
// that held at least 3 s after settling. The last step (100) ends with
// the load.
func canaryShares(l *load, changes []weightChange, newColor, newVersion string, end time.Time) []stepShare {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []stepShare
	for i, ch := range changes {
		from := ch.at.Add(edgeSettle)
		to := end
		if i+1 < len(changes) {
			to = changes[i+1].at
		}
		if to.Sub(from) < 3*time.Second {
			continue
		}
		s := stepShare{asked: ch.weights[newColor], from: from, to: to}
		for _, h := range l.hits {
			if h.err != "" || h.began.Before(from) || h.at.After(to) {
				continue
			}
			s.answers++
			if h.version == newVersion {
				s.onNew++
			}
		}
		if s.answers > 0 {
			s.sharePercentage = 100 * float64(s.onNew) / float64(s.answers)
		}
		out = append(out, s)
	}
	return out
}

func (s stepShare) String() string {
	return fmt.Sprintf("asked %d%%: %d of %d answers from the new version (%.1f%%, %+.1f points) over %s",
		s.asked, s.onNew, s.answers, s.sharePercentage, s.sharePercentage-float64(s.asked), s.to.Sub(s.from).Round(100*time.Millisecond))
}

// checkShares reports each step's share and fails a step whose share is
// off by more than tolerance points, or a run that measured no step
// below 100.
func checkShares(t *testing.T, shares []stepShare, tolerance float64) {
	t.Helper()
	partial := 0
	for _, s := range shares {
		t.Logf("canary share at the edge: %s", s)
		if s.asked > 0 && s.asked < 100 {
			partial++
		}
		if d := s.sharePercentage - float64(s.asked); s.answers > 0 && (d > tolerance || d < -tolerance) {
			t.Errorf("canary step %d%%: the new version answered %.1f%% of %d requests, off by more than %.0f points", s.asked, s.sharePercentage, s.answers, tolerance)
		}
	}
	if partial == 0 {
		t.Errorf("no canary step below 100%% held long enough to measure: %v", shares)
	}
}
