package rollout

import (
	"context"
	"fmt"
)

// inPlace strategies replace the pods of the active color.
func inPlace(strategy string) bool {
	return strategy == StrategyRolling || strategy == StrategyRecreate
}

// blueGreen also serves rolling and recreate: then the candidate is the
// active color updated in place, and the switch changes nothing.
func (r *run) blueGreen(ctx context.Context) error {
	s, n := r.state, *r.spec.Replicas
	if s.Phase == PhaseDeploying {
		if err := r.deployCandidate(ctx, n); err != nil {
			return err
		}
	}
	if s.Phase == PhaseProbing {
		if err := r.runProbes(ctx); err != nil {
			return err
		}
		if err := r.switchTo(ctx, s.Candidate.Color); err != nil {
			return err
		}
		if s.Active != nil {
			prev := *s.Active
			s.Previous = &prev
		}
		s.Active = s.Candidate
		if err := r.save(ctx, PhaseSwitched, "traffic on "+s.Active.Color); err != nil {
			return err
		}
		r.logf("switched: all traffic on %s (%s)%s", s.Active.Color, s.Active.Image, r.weightsNote())
		if err := r.confirmEdge(ctx); err != nil {
			return err
		}
		r.progress(ProgressSwitched)
	}
	if s.Phase == PhaseSwitched {
		return r.finish(ctx, true)
	}
	return fmt.Errorf("blue/green promote found at unexpected phase %s", s.Phase)
}
