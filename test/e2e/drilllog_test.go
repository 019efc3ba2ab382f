//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// drillLog keeps what happened when during a drill (the test's own steps,
// every change of an app's endpoints and pods), so a failed request can be
// set beside them: a request that fails once in thousands says nothing by
// itself.
type drillLog struct {
	mu      sync.Mutex
	entries []drillEntry
}

type drillEntry struct {
	at   time.Time
	what string
}

func (tl *drillLog) mark(format string, args ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.entries = append(tl.entries, drillEntry{time.Now(), fmt.Sprintf(format, args...)})
}

// markAt is mark at a given time (a request that failed is put where it was sent).
func (tl *drillLog) markAt(at time.Time, what string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.entries = append(tl.entries, drillEntry{at, what})
}

// watchNamespace marks every change of the EndpointSlices and pods in ns
// until ctx ends: which addresses are ready, serving or terminating, and
// each pod's phase, readiness and deletion; and MetalLB's nodeAssigned
// events, which say from which node an address is announced. Its client
// is watchClient: the tests' client ends a watch after 5 s.
func (tl *drillLog) watchNamespace(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	c := watchClient(t)
	eps, err := c.DiscoveryV1().EndpointSlices(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watching the EndpointSlices of %s: %v", ns, err)
	}
	pods, err := c.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		eps.Stop()
		t.Fatalf("watching the pods of %s: %v", ns, err)
	}
	announced, err := c.CoreV1().Events(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "reason=nodeAssigned"})
	if err != nil {
		eps.Stop()
		pods.Stop()
		t.Fatalf("watching MetalLB's nodeAssigned events in %s: %v", ns, err)
	}
	go func() {
		defer eps.Stop()
		defer pods.Stop()
		defer announced.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-eps.ResultChan():
				if !ok {
					tl.mark("EndpointSlice watch of %s closed", ns)
					return
				}
				if s, ok := ev.Object.(*discoveryv1.EndpointSlice); ok {
					tl.mark("endpoints %s %s: %s", ev.Type, s.Name, describeSlice(s))
				}
			case ev, ok := <-pods.ResultChan():
				if !ok {
					tl.mark("pod watch of %s closed", ns)
					return
				}
				if p, ok := ev.Object.(*corev1.Pod); ok {
					tl.mark("pod %s %s: %s", ev.Type, p.Name, describePod(ev.Type, p))
				}
			case ev, ok := <-announced.ResultChan():
				if !ok {
					tl.mark("event watch of %s closed", ns)
					return
				}
				if e, ok := ev.Object.(*corev1.Event); ok && ev.Type != watch.Deleted {
					// At the event's own time (to the second): the
					// watch starts with the events already there.
					at := e.LastTimestamp.Time
					if at.IsZero() {
						at = time.Now()
					}
					tl.markAt(at, fmt.Sprintf("MetalLB on Service %s: %s (event %s, count %d)", e.InvolvedObject.Name, e.Message, ev.Type, e.Count))
				}
			}
		}
	}()
}

func describeSlice(s *discoveryv1.EndpointSlice) string {
	var parts []string
	for _, e := range s.Endpoints {
		state := []string{}
		if e.Conditions.Ready != nil && *e.Conditions.Ready {
			state = append(state, "ready")
		}
		if e.Conditions.Serving != nil && *e.Conditions.Serving {
			state = append(state, "serving")
		}
		if e.Conditions.Terminating != nil && *e.Conditions.Terminating {
			state = append(state, "terminating")
		}
		node := ""
		if e.NodeName != nil {
			node = "@" + *e.NodeName
		}
		parts = append(parts, strings.Join(e.Addresses, ",")+node+"["+strings.Join(state, " ")+"]")
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func describePod(typ watch.EventType, p *corev1.Pod) string {
	ready := "not ready"
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			ready = "ready"
		}
	}
	s := fmt.Sprintf("%s %s on %s ip %s", p.Status.Phase, ready, p.Spec.NodeName, p.Status.PodIP)
	if p.DeletionTimestamp != nil && typ != watch.Deleted {
		s += " terminating"
	}
	return s
}

// addFailures puts the load's failed requests into the timeline at the
// moment each was sent, so they are read in order with the rest.
func (tl *drillLog) addFailures(l *load) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hits {
		if h.version == "" {
			tl.mu.Lock()
			tl.entries = append(tl.entries, drillEntry{h.began, fmt.Sprintf("FAILED request of client %s sent here, failed after %s: %s",
				h.client, h.at.Sub(h.began).Round(time.Millisecond), h.err)})
			tl.mu.Unlock()
		}
	}
	for _, h := range l.noRoute {
		tl.mu.Lock()
		tl.entries = append(tl.entries, drillEntry{h.began, fmt.Sprintf("request of client %s sent here found no route after %s, set apart (the lab's layer 2): %s",
			h.client, h.at.Sub(h.began).Round(time.Millisecond), h.err)})
		tl.mu.Unlock()
	}
}

// log writes the timeline to the test's log in time order, times in UTC
// as the load's failure texts are.
func (tl *drillLog) log(t *testing.T, title string) {
	t.Helper()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	sort.SliceStable(tl.entries, func(i, j int) bool { return tl.entries[i].at.Before(tl.entries[j].at) })
	var b strings.Builder
	for _, e := range tl.entries {
		fmt.Fprintf(&b, "  %s %s\n", e.at.UTC().Format("15:04:05.000"), e.what)
	}
	t.Logf("what happened during %s:\n%s", title, b.String())
}

// explainFailures logs the drill log with the load's failed requests in it
// when there were any, and nothing otherwise.
func (tl *drillLog) explainFailures(t *testing.T, l *load, what string) {
	t.Helper()
	l.mu.Lock()
	failed := len(l.noRoute)
	for _, fs := range l.failures {
		failed += len(fs)
	}
	l.mu.Unlock()
	if failed == 0 {
		return
	}
	tl.addFailures(l)
	tl.log(t, what)
}
