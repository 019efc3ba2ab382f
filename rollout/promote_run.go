package rollout

import (
	"context"
	"errors"
	"fmt"
)

// Promote puts req.Image live with the spec's strategy (or req.Strategy).
// It resumes a promote of the same image that a dead process left under
// way, and rolls back one of another image first. When the new version
// fails its probes or its pods fail, traffic returns to the previous
// version on its own and a *ProbeFailedError is returned.
func (p *Promoter) Promote(ctx context.Context, req Request) (*Result, error) {
	spec := req.Spec
	strategy := req.Strategy
	if strategy == "" {
		strategy = spec.Strategy.Type
	}
	if strategy != spec.Strategy.Type {
		copied := *spec
		copied.Strategy.Type = strategy
		if err := copied.Validate(); err != nil {
			return nil, fmt.Errorf("--strategy %s: %w", strategy, err)
		}
		spec = &copied
	}
	res := &Result{App: spec.Name, Strategy: strategy, Image: req.Image}
	p.defaults()
	start := p.Clock.Now()
	err := p.locked(ctx, spec, func(ctx context.Context, r *run) error {
		r.result = res
		return r.promote(ctx, Release{Image: req.Image, Revision: req.Revision})
	})
	res.Duration = p.Clock.Now().Sub(start)
	return res, err
}

func (r *run) promote(ctx context.Context, want Release) error {
	s := r.state
	if s.Phase == PhaseSwitched && s.Candidate != nil && s.Candidate.Image != want.Image {
		// Traffic was already all on that version and its probes passed:
		// complete it rather than undo it.
		r.logf("the promote of %s had switched all traffic before it stopped; completing it first", s.Candidate.Image)
		if err := r.finish(ctx, false); err != nil {
			return fmt.Errorf("completing the interrupted promote: %w", err)
		}
	}
	if s.InProgress() {
		if s.Candidate != nil && s.Candidate.Image == want.Image && s.Strategy == r.spec.Strategy.Type && s.Phase != PhaseRollingBack {
			r.logf("resuming the promote of %s left at phase %s", want.Image, s.Phase)
			r.result.Resumed = true
			return r.drive(ctx)
		}
		what := "<none>"
		if s.Candidate != nil {
			what = s.Candidate.Image
		}
		r.logf("a promote of %s (%s) was left at phase %s; rolling it back before promoting %s", what, s.Strategy, s.Phase, want.Image)
		if err := r.rollback(ctx, "interrupted; superseded by "+want.Image, ResultRolledBack); err != nil {
			return fmt.Errorf("rolling back the interrupted promote: %w", err)
		}
	}
	if s.Active != nil && s.Active.Image == want.Image {
		// The version runs already; the spec's Service side (ports, hosts
		// for the edge) and budget may still have changed, so apply them.
		if err := r.switchTo(ctx, s.Active.Color); err != nil {
			return err
		}
		if pdb := RenderPDB(r.spec, r.store.Owner()); pdb != nil {
			if err := Apply(ctx, r.p.Client, pdb); err != nil {
				return err
			}
		}
		r.logf("%s already serves %s; Service and budget applied, pods unchanged (a change to the pods needs a new image)", s.Active.Color, want.Image)
		r.result.Result = "unchanged"
		return nil
	}
	alloc, err := r.allocate(ctx)
	if err != nil {
		return err
	}
	r.result.Address = alloc
	want.Color = ColorBlue
	if s.Active != nil {
		want.Color = OtherColor(s.Active.Color)
		if inPlace(r.spec.Strategy.Type) {
			want.Color = s.Active.Color
		}
	}
	s.Candidate, s.Strategy, s.Step, s.AbortRequested = &want, r.spec.Strategy.Type, 0, false
	s.StartedAt = r.p.Clock.Now().UTC()
	if err := r.save(ctx, PhaseDeploying, "deploying "+want.Image+" on "+want.Color); err != nil {
		return err
	}
	return r.drive(ctx)
}

// inPlace strategies replace the pods of the active color.
func inPlace(strategy string) bool {
	return strategy == StrategyRolling || strategy == StrategyRecreate
}

// drive runs the phases from the recorded one to the end, rolling back on
// any failure of the new version.
func (r *run) drive(ctx context.Context) error {
	err := r.phases(ctx)
	var failed *versionFailed
	switch {
	case err == nil:
		r.result.Result = ResultPromoted
		return nil
	case errors.Is(err, errAborted):
		r.logf("abort requested; rolling back")
		if rbErr := r.rollback(context.WithoutCancel(ctx), "aborted", ResultAborted); rbErr != nil {
			return fmt.Errorf("aborted, but the rollback failed: %w", rbErr)
		}
		r.result.Result, r.result.Reason = ResultAborted, "aborted by 'tsys-ci abort'"
		return fmt.Errorf("promote of %s %s", r.spec.Name, r.result.Reason)
	case errors.As(err, &failed):
		r.logf("FAILED: %s; rolling back", failed.reason)
		if rbErr := r.rollback(context.WithoutCancel(ctx), failed.reason, ResultRolledBack); rbErr != nil {
			return fmt.Errorf("new version failed (%s) and the rollback failed: %w", failed.reason, rbErr)
		}
		r.result.Result, r.result.Reason = ResultRolledBack, failed.reason
		return &ProbeFailedError{App: r.spec.Name, Image: r.result.Image, Reason: failed.reason}
	case errors.Is(err, context.Canceled) && r.state.Phase == PhaseCanary && !errors.Is(context.Cause(ctx), ErrHandedOver):
		// Stopped on purpose (Ctrl-C, an aborted Jenkins build) while
		// traffic is split: do not leave it split until someone re-runs.
		r.logf("stopped during a canary step; returning all traffic to the stable version")
		if rbErr := r.rollback(context.WithoutCancel(ctx), "stopped during a canary step", ResultAborted); rbErr != nil {
			return fmt.Errorf("stopped during a canary step, and the rollback failed: %w", rbErr)
		}
		r.result.Result, r.result.Reason = ResultAborted, "stopped during a canary step"
		return fmt.Errorf("promote of %s stopped during a canary step; rolled back", r.spec.Name)
	default:
		// The cluster or this process failed, not the version: leave the
		// recorded phase so a re-run resumes or rolls back.
		return fmt.Errorf("%w; the promote is left at phase %s: run the same promote again to resume it, or 'tsys-ci abort %s' to roll it back", err, r.state.Phase, r.spec.Name)
	}
}

// versionFailed marks a failure of the new version (probes, pods), as
// opposed to a failure to talk to the cluster.
type versionFailed struct{ reason string }

func (v *versionFailed) Error() string { return v.reason }

func (r *run) phases(ctx context.Context) error {
	switch r.spec.Strategy.Type {
	case StrategyCanary:
		return r.canary(ctx)
	default:
		return r.blueGreen(ctx)
	}
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
		r.logf("switched: all traffic on %s (%s)", s.Active.Color, s.Active.Image)
	}
	if s.Phase == PhaseSwitched {
		return r.finish(ctx, true)
	}
	return fmt.Errorf("blue/green promote found at unexpected phase %s", s.Phase)
}
