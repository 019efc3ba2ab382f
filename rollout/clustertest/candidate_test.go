package clustertest

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/rollout"
)

// TestEdgeCandidateForTesters (issue 23 item 4): from the moment the new
// version is ready, before its probes and before any weight, the app
// Service names it as the edge's candidate (testers reach it with the
// canary header); the switch, a rollback and a canary's end remove it.
func TestEdgeCandidateForTesters(t *testing.T) {
	for _, strategy := range []string{rollout.StrategyBlueGreen, rollout.StrategyCanary} {
		t.Run(strategy, func(t *testing.T) {
			a := newApp(t, func(s *rollout.AppSpec) {
				s.Strategy.Type = strategy
				s.Strategy.Canary.Steps = []int{5, 100}
			})
			a.useEdgeStandIn(true)
			candidate := func() string {
				svc, err := a.cs.CoreV1().Services(a.ns).Get(context.Background(), a.spec.Name, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return "" // the first version's probes: no Service yet
				}
				if err != nil {
					t.Error(err)
					return "?"
				}
				return svc.Annotations[contract.AnnotationEdgeCandidate]
			}
			var seen []string
			a.mu.Lock()
			a.onProbe = func() { seen = append(seen, candidate()) }
			a.mu.Unlock()
			for _, image := range []string{"reg/shop@sha256:v1", "reg/shop@sha256:v2"} {
				if _, err := a.edgePromoter("test").Promote(context.Background(), rollout.Request{Spec: a.spec, Image: image}); err != nil {
					t.Fatalf("promote %s: %v\n%s", image, err, a.out)
				}
				if c := candidate(); c != "" {
					t.Fatalf("after promote %s the Service still names candidate %q", image, c)
				}
			}
			a.mu.Lock()
			probes := append([]string(nil), seen...)
			seen = nil
			a.mu.Unlock()
			// v1 had nothing to weigh against: no candidate. v2 (green)
			// was the candidate at every probe.
			if !strings.Contains(strings.Join(probes, ","), "green") || strings.Contains(strings.Join(probes, ","), "blue") {
				t.Errorf("candidate at each probe: %q; want green while v2 was probed", probes)
			}
			if !strings.Contains(a.out.String(), "testers reach green through the edge with the header X-Tsys-Canary: always") {
				t.Errorf("promote did not say testers may try v2:\n%s", a.out)
			}

			// A version that fails its probes: named while probed, gone
			// once rolled back.
			if _, err := a.edgePromoter("test").Promote(context.Background(), rollout.Request{Spec: a.spec, Image: "reg/bad@sha256:v3"}); err == nil {
				t.Fatalf("promote of a failing version succeeded\n%s", a.out)
			}
			a.mu.Lock()
			probes = append([]string(nil), seen...)
			a.onProbe = nil
			a.mu.Unlock()
			if len(probes) == 0 || probes[0] != "blue" {
				t.Errorf("candidate at the failing version's probes: %q; want blue", probes)
			}
			if c := candidate(); c != "" {
				t.Errorf("after the rollback the Service still names candidate %q", c)
			}
		})
	}
}
