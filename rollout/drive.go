package rollout

import (
	"context"
	"errors"
	"fmt"
)

// drive runs the phases from the recorded one to the end, rolling back on
// any failure of the new version.
func (r *run) drive(ctx context.Context) error {
	err := r.phases(ctx)
	var failed *versionFailed
	switch {
	case err == nil:
		r.result.Result = ResultPromoted
		return nil
	case errors.Is(err, ErrAborted):
		r.logf("abort requested; rolling back")
		if rbErr := r.rollback(context.WithoutCancel(ctx), "aborted", ResultAborted); rbErr != nil {
			return fmt.Errorf("aborted, but the rollback failed: %w", rbErr)
		}
		r.result.Result, r.result.Reason = ResultAborted, "aborted by 'tsys-ci abort'"
		return fmt.Errorf("promote of %s rolled back: %w", r.spec.Name, ErrAborted)
	case errors.As(err, &failed):
		r.logf("FAILED: %s; rolling back", failed.reason)
		if rbErr := r.rollback(context.WithoutCancel(ctx), failed.reason, ResultRolledBack); rbErr != nil {
			return fmt.Errorf("new version failed (%s) and the rollback failed: %w", failed.reason, rbErr)
		}
		r.result.Result, r.result.Reason = ResultRolledBack, failed.reason
		event := EventVersionFailed
		if failed.analysis {
			event = EventAnalysisFailed
		}
		r.warnEvent(context.WithoutCancel(ctx), event, fmt.Sprintf("%s rolled back: %s", r.result.Image, failed.reason))
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
type versionFailed struct {
	reason string
	// analysis: the edge's counters of its users' requests failed it.
	analysis bool
}

func (v *versionFailed) Error() string { return v.reason }

func (r *run) phases(ctx context.Context) error {
	switch r.spec.Strategy.Type {
	case StrategyCanary:
		return r.canary(ctx)
	default:
		return r.blueGreen(ctx)
	}
}
