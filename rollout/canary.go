package rollout

import (
	"context"
	"fmt"
	"math"
	"strconv"
)

// CanaryStep is one weight a canary promote really gives. Inside the
// cluster a Service spreads connections evenly over ready endpoints, so the
// weight is the share of pods on the new version: with N replicas only
// multiples of 1/N exist. Requested lists the spec's steps this one stands
// for (several requested steps can land on the same pod counts).
type CanaryStep struct {
	Requested  []int `json:"requested"`
	CanaryPods int32 `json:"canaryPods"`
	StablePods int32 `json:"stablePods"`
	// Weight is the canary's real share of traffic, in percent.
	Weight float64 `json:"weight"`
	// Note says how the real weight differs from the requested one; empty
	// when they are equal.
	Note string `json:"note,omitempty"`
	// AtEdge says the weight is the edge's (HAProxy server weights,
	// exact), not a pod ratio.
	AtEdge bool `json:"atEdge,omitempty"`
}

// PlanEdgeCanary is the plan when the edge weighs the versions: every
// requested weight exactly, whatever the replica count. Both versions run
// all replicas until 100 % (the capacity of a blue/green promote), so any
// split can be served; the app Service stays on the stable version until
// the last step.
func PlanEdgeCanary(replicas int32, steps []int) ([]CanaryStep, error) {
	var plan []CanaryStep
	for _, w := range steps {
		if w < 1 || w > 100 {
			return nil, fmt.Errorf("canary step %d%%: a weight must be 1-100", w)
		}
		st := CanaryStep{Requested: []int{w}, CanaryPods: replicas, StablePods: replicas, Weight: float64(w), AtEdge: true}
		if w == 100 {
			st.StablePods = 0
		}
		plan = append(plan, st)
	}
	if len(plan) == 0 || plan[len(plan)-1].StablePods != 0 {
		return nil, fmt.Errorf("canary steps %v do not end at 100%%; add a last step of 100", steps)
	}
	return plan, nil
}

// WeightString formats the real weight ("50%", "33.3%").
func (s CanaryStep) WeightString() string { return percent(s.Weight) }

// PlanCanary turns requested weights (ascending, ending at 100) into the pod
// counts replicas can give: the nearest share k/replicas, at least one
// canary pod and, below 100 %, at least one stable pod. The total stays at
// replicas, so a step costs no extra capacity once the canary pods are
// ready. It never claims a weight the counts cannot give: each step's Note
// says which weight was really used.
func PlanCanary(replicas int32, steps []int) ([]CanaryStep, error) {
	if replicas < 2 {
		return nil, fmt.Errorf("canary with %d replica(s): a weight below 100%% needs at least 2 replicas; set replicas: 2 or more, or use strategy blueGreen", replicas)
	}
	var plan []CanaryStep
	for _, w := range steps {
		if w < 1 || w > 100 {
			return nil, fmt.Errorf("canary step %d%%: a weight must be 1-100", w)
		}
		k := canaryPods(replicas, w)
		if n := len(plan); n > 0 && plan[n-1].CanaryPods == k {
			last := &plan[n-1]
			last.Requested = append(last.Requested, w)
			last.Note = note(replicas, last.Requested, k)
			continue
		}
		plan = append(plan, CanaryStep{
			Requested:  []int{w},
			CanaryPods: k,
			StablePods: replicas - k,
			Weight:     100 * float64(k) / float64(replicas),
			Note:       note(replicas, []int{w}, k),
		})
	}
	if len(plan) == 0 || plan[len(plan)-1].StablePods != 0 {
		return nil, fmt.Errorf("canary steps %v do not end at 100%%; add a last step of 100", steps)
	}
	return plan, nil
}

func canaryPods(replicas int32, w int) int32 {
	if w == 100 {
		return replicas
	}
	k := int32(math.Round(float64(w) * float64(replicas) / 100))
	return max(1, min(k, replicas-1))
}

func note(replicas int32, requested []int, k int32) string {
	given := 100 * float64(k) / float64(replicas)
	asked := ""
	for i, w := range requested {
		if i > 0 {
			asked += " and "
		}
		asked += strconv.Itoa(w) + "%"
	}
	if len(requested) == 1 && float64(requested[0]) == given {
		return ""
	}
	msg := fmt.Sprintf("asked %s; %d replicas give %s (%d of %d pods on the new version)", asked, replicas, percent(given), k, replicas)
	if len(requested) > 1 {
		msg += ", so these steps are one"
	}
	return msg + "; exact weights need more replicas or weights at the edge"
}

func percent(w float64) string {
	return strconv.FormatFloat(math.Round(w*10)/10, 'f', -1, 64) + "%"
}

// canary moves traffic in the steps the replica count can give (pod
// ratios), probing the new version at each.
func (r *run) canary(ctx context.Context) error {
	s, n := r.state, *r.spec.Replicas
	plan, err := PlanCanary(n, r.spec.Strategy.Canary.Steps)
	if s.EdgeCanary {
		plan, err = PlanEdgeCanary(n, r.spec.Strategy.Canary.Steps)
	}
	if err != nil {
		return err
	}
	r.result.Steps = plan
	if s.EdgeCanary && s.Phase == PhaseDeploying {
		r.logf("canary steps %v%% of the edge's requests, exact (HAProxy weights); both versions run %d pods until 100%%", r.spec.Strategy.Canary.Steps, n)
	}
	if s.Active == nil {
		// Nothing to weigh against: the first version takes all traffic
		// once probed, as with blue/green.
		plan = plan[len(plan)-1:]
	}
	if s.Phase == PhaseDeploying {
		if err := r.deployCandidate(ctx, plan[0].CanaryPods); err != nil {
			return err
		}
	}
	if s.Phase == PhaseProbing {
		if err := r.runProbes(ctx); err != nil {
			return err
		}
		s.Step = 0
		if err := r.save(ctx, PhaseCanary, "canary step 1"); err != nil {
			return err
		}
	}
	for s.Phase == PhaseCanary && s.Step < len(plan) && plan[s.Step].StablePods > 0 {
		step := r.canaryStep
		if s.EdgeCanary {
			step = r.edgeCanaryStep
		}
		if err := step(ctx, plan, s.Step); err != nil {
			return err
		}
		s.Step++
		if err := r.save(ctx, PhaseCanary, fmt.Sprintf("canary step %d", s.Step+1)); err != nil {
			return err
		}
	}
	if s.Phase == PhaseCanary {
		c := *s.Candidate
		if err := r.applyDeployment(ctx, c, n); err != nil {
			return err
		}
		if err := r.waitReady(ctx, c, n); err != nil {
			return err
		}
		if err := r.switchTo(ctx, c.Color); err != nil {
			return err
		}
		if s.Active != nil {
			prev := *s.Active
			s.Previous = &prev
		}
		s.Active = s.Candidate
		if err := r.save(ctx, PhaseSwitched, "traffic on "+c.Color); err != nil {
			return err
		}
		r.logf("step %d/%d: 100%% (%d of %d pods new): all traffic on %s%s", len(plan), len(plan), n, n, c.Color, r.weightsNote())
		if err := r.confirmEdge(ctx); err != nil {
			return err
		}
		r.progress(ProgressSwitched)
	}
	if s.Phase == PhaseSwitched {
		return r.finish(ctx, true)
	}
	return fmt.Errorf("canary promote found at unexpected phase %s", s.Phase)
}

// canaryStep puts one step's pod counts in place (new pods ready first,
// then old ones removed, so capacity never drops) and probes through it.
func (r *run) canaryStep(ctx context.Context, plan []CanaryStep, i int) error {
	st, c, old := plan[i], *r.state.Candidate, *r.state.Active
	if err := r.applyDeployment(ctx, c, st.CanaryPods); err != nil {
		return err
	}
	if err := r.waitReady(ctx, c, st.CanaryPods); err != nil {
		return err
	}
	// The edge follows the pod ratio: its per-color servers get the
	// weights the pods give.
	if err := r.route(ctx, "", split(old.Color, c.Color, int(math.Round(st.Weight)))); err != nil {
		return err
	}
	if err := r.save(ctx, PhaseCanary, fmt.Sprintf("canary step %d: %s on the new version", i+1, st.WeightString())); err != nil {
		return err
	}
	if err := r.scale(ctx, old.Color, st.StablePods); err != nil {
		return err
	}
	line := fmt.Sprintf("step %d/%d: %s of traffic on the new version (%d of %d pods)", i+1, len(plan), st.WeightString(), st.CanaryPods, st.CanaryPods+st.StablePods)
	if st.Note != "" {
		line += "; " + st.Note
	}
	r.logf("%s", line)
	if err := r.runProbes(ctx); err != nil {
		return err
	}
	return r.watch(ctx, c, st.CanaryPods, r.spec.Strategy.Canary.StepPause.Duration)
}

// edgeCanaryStep gives the new version the step's exact share of the
// edge's requests (both versions run all replicas; the app Service stays
// on the stable one), records it, waits for the edge to apply it, probes,
// and judges the new version for the step's pause.
func (r *run) edgeCanaryStep(ctx context.Context, plan []CanaryStep, i int) error {
	st, c, old := plan[i], *r.state.Candidate, *r.state.Active
	w := split(old.Color, c.Color, st.Requested[0])
	if err := r.route(ctx, old.Color, w); err != nil {
		return err
	}
	if err := r.save(ctx, PhaseCanary, fmt.Sprintf("canary step %d: %d%% at the edge", i+1, st.Requested[0])); err != nil {
		return err
	}
	r.logf("step %d/%d: %d%% of the edge's requests on the new version (exact: edge weights %s)", i+1, len(plan), st.Requested[0], w.Describe())
	if err := r.confirmEdge(ctx); err != nil {
		return err
	}
	if err := r.runProbes(ctx); err != nil {
		return err
	}
	return r.watch(ctx, c, *r.spec.Replicas, r.spec.Strategy.Canary.StepPause.Duration)
}
