package rollout

import (
	"context"
	"errors"
	"fmt"
)

// rollback returns all traffic to the version that served before the
// candidate and removes the candidate. It is idempotent: a re-run after a
// crash in the middle of it does it again.
func (r *run) rollback(ctx context.Context, reason, result string) error {
	s, n := r.state, *r.spec.Replicas
	if s.ManualRollback && s.Candidate != nil && s.Active != nil {
		return r.undoManualRollback(ctx, reason)
	}
	cand := s.Candidate
	restore := s.Active
	if s.Phase == PhaseSwitched || (restore != nil && cand != nil && *restore == *cand) {
		restore = s.Previous
	}
	servedByCandidate := s.Phase == PhaseCanary || s.Phase == PhaseSwitched || s.Phase == PhaseRollingBack
	if servedByCandidate && cand != nil && restore != nil && restore.Color != cand.Color && r.readyNow(ctx, *restore, n) {
		// The previous version still runs at full strength (a canary at
		// the edge, blue/green before its scale-down): all traffic and
		// all the edge's weight go back to it before anything else.
		if err := r.switchTo(ctx, restore.Color); err != nil {
			return err
		}
		r.logf("all traffic back on %s (%s)%s", restore.Color, restore.Image, r.weightsNote())
	}
	// A rollback is what an abort asks for: a request still in the state
	// (asked of a process that died, and read when this one took the app
	// over) is answered by it and must not stop it at its next check.
	s.AbortRequested = false
	if err := r.save(ctx, PhaseRollingBack, reason); err != nil {
		return err
	}
	switch {
	case cand == nil:
	case restore == nil:
		r.logf("no previous version: removing %s", cand.Image)
		if err := r.deleteDeployment(ctx, cand.Color); err != nil {
			return err
		}
	case restore.Color == cand.Color:
		r.logf("putting %s back on %s", restore.Image, restore.Color)
		if err := r.applyDeployment(ctx, *restore, n); err != nil {
			return err
		}
		if err := r.waitReady(ctx, *restore, n); err != nil {
			return fmt.Errorf("the previous version is not healthy either: %w", err)
		}
	default:
		if err := r.scale(ctx, restore.Color, n); err != nil {
			return err
		}
		if err := r.waitReady(ctx, *restore, n); err != nil {
			return fmt.Errorf("the previous version is not healthy either: %w", err)
		}
		if err := r.switchTo(ctx, restore.Color); err != nil {
			return err
		}
		r.logf("all traffic on %s (%s)%s", restore.Color, restore.Image, r.weightsNote())
		if err := r.edgeShowsBefore(ctx, fmt.Sprintf("removing %s (%s)", cand.Color, cand.Image)); err != nil {
			return err
		}
		if err := r.deleteDeployment(ctx, cand.Color); err != nil {
			return err
		}
		r.logf("removed %s (%s)", cand.Color, cand.Image)
	}
	if cand != nil {
		s.Record(HistoryEntry{Release: *cand, Strategy: s.Strategy, Result: result, Reason: reason, At: r.p.Clock.Now().UTC()})
	}
	if restore != nil && s.Previous != nil && *restore == *s.Previous {
		s.Previous = nil
	}
	s.Active, s.Candidate, s.Step, s.AbortRequested = restore, nil, 0, false
	return r.save(ctx, PhaseStable, "rolled back: "+reason)
}

// edgeShowsBefore waits until the edge shows the weights a rollback wrote,
// before the pods of the version it leaves go (next, what it does then):
// HAProxy applies them a
// moment after the Service says them ('edge sync --watch'), and what it
// still sends to pods already gone fails (seen in the lab: an abort whose
// edge took 2.7 s to apply all weight back answered 9 requests 503). An
// edge that does not show them within EdgeConfirmTimeout does not stop
// the rollback: it says so and goes on, since all traffic belongs on the
// restored version either way.
func (r *run) edgeShowsBefore(ctx context.Context, next string) error {
	err := r.confirmEdge(ctx)
	var failed *versionFailed
	if errors.As(err, &failed) {
		r.logf("warning: %s; %s anyway", failed.reason, next)
		return nil
	}
	return err
}

// Rollback puts the previous version back ('tsys-ci promote --rollback'):
// it is scaled up, checked, and the Service switched to it; the version it
// replaces is kept scaled to zero, so rolling back again goes forward.
func (p *Promoter) Rollback(ctx context.Context, spec *AppSpec) (*Result, error) {
	res := &Result{App: spec.Name, Result: ResultRolledBack}
	p.defaults()
	start := p.Clock.Now()
	err := p.locked(ctx, spec, func(ctx context.Context, r *run) error {
		r.result = res
		s := r.state
		if s.InProgress() && s.ManualRollback && s.Candidate != nil && s.Active != nil {
			// The same command, run again after its process died:
			// finish what it was asked to do.
			if err := p.verifyRecorded(ctx, spec, s.Candidate.Image); err != nil {
				return err
			}
			r.logf("resuming the rollback to %s left at phase %s", s.Candidate.Image, s.Phase)
			res.Strategy, res.Image, res.Resumed = s.Strategy, s.Candidate.Image, true
			return r.manualSwitch(ctx)
		}
		if s.InProgress() {
			return r.rollback(ctx, "rolled back by 'tsys-ci promote --rollback'", ResultRolledBack)
		}
		if s.Previous == nil || s.Active == nil {
			return fmt.Errorf("%s has no previous version to roll back to", spec.Name)
		}
		res.Strategy, res.Image = s.Strategy, s.Previous.Image
		if s.Previous.Color == s.Active.Color {
			return fmt.Errorf("%s: the previous version ran on the same Deployment (%s, rolling or recreate); promote %s again to go back to it", spec.Name, s.Active.Color, s.Previous.Image)
		}
		if err := p.verifyRecorded(ctx, spec, s.Previous.Image); err != nil {
			return err
		}
		cand := *s.Previous
		s.Candidate = &cand
		s.StartedAt = r.p.Clock.Now().UTC()
		return r.manualSwitch(ctx)
	})
	res.Duration = p.Clock.Now().Sub(start)
	return res, err
}

// manualSwitch brings the candidate (the previous version) up and switches
// to it, keeping the current one at zero for the next rollback.
func (r *run) manualSwitch(ctx context.Context) error {
	s, n := r.state, *r.spec.Replicas
	c, cur := *s.Candidate, *s.Active
	s.ManualRollback = true
	if err := r.save(ctx, PhaseRollingBack, "rolling back to "+c.Image); err != nil {
		return err
	}
	r.logf("rolling back to %s on %s", c.Image, c.Color)
	if err := r.scale(ctx, c.Color, n); err != nil {
		return err
	}
	if err := r.waitReady(ctx, c, n); err != nil {
		return fmt.Errorf("the previous version does not come up (traffic stays on %s): %w", cur.Image, err)
	}
	if err := r.switchTo(ctx, c.Color); err != nil {
		return err
	}
	if err := r.edgeShowsBefore(ctx, fmt.Sprintf("scaling %s (%s) to zero", cur.Color, cur.Image)); err != nil {
		return err
	}
	if err := r.scale(ctx, cur.Color, 0); err != nil {
		return err
	}
	s.Record(HistoryEntry{Release: c, Strategy: s.Strategy, Result: ResultRolledBack, Reason: "manual rollback from " + cur.Image, At: r.p.Clock.Now().UTC()})
	s.Active, s.Previous, s.Candidate, s.ManualRollback = &c, &cur, nil, false
	r.logf("all traffic on %s (%s)", c.Color, c.Image)
	return r.save(ctx, PhaseStable, "rolled back to "+c.Image)
}

// undoManualRollback returns a 'promote --rollback' left half done to
// where it started: the version that served gets its pods and all traffic
// back, and the previous version is scaled to zero again, not removed, so
// a later rollback still finds it.
func (r *run) undoManualRollback(ctx context.Context, reason string) error {
	s, n := r.state, *r.spec.Replicas
	c, cur := *s.Candidate, *s.Active
	if err := r.save(ctx, PhaseRollingBack, reason); err != nil {
		return err
	}
	r.logf("undoing the rollback to %s left half done: all traffic back to %s", c.Image, cur.Image)
	if err := r.scale(ctx, cur.Color, n); err != nil {
		return err
	}
	if err := r.waitReady(ctx, cur, n); err != nil {
		return fmt.Errorf("the serving version is not healthy: %w", err)
	}
	if err := r.switchTo(ctx, cur.Color); err != nil {
		return err
	}
	if err := r.edgeShowsBefore(ctx, fmt.Sprintf("scaling %s (%s) to zero", c.Color, c.Image)); err != nil {
		return err
	}
	if err := r.scale(ctx, c.Color, 0); err != nil {
		return err
	}
	r.logf("all traffic on %s (%s); %s (%s) kept at zero for a rollback", cur.Color, cur.Image, c.Color, c.Image)
	s.Record(HistoryEntry{Release: c, Strategy: s.Strategy, Result: ResultAborted, Reason: "rollback to it undone: " + reason, At: r.p.Clock.Now().UTC()})
	s.Candidate, s.ManualRollback, s.Step, s.AbortRequested = nil, false, 0, false
	return r.save(ctx, PhaseStable, "rollback undone: "+reason)
}

// Abort stops a promote. If another process holds the app's lease it asks
// that process to roll back (it checks between steps); if none does, it
// rolls the unfinished promote back itself.
func (p *Promoter) Abort(ctx context.Context, spec *AppSpec) (*Result, error) {
	p.defaults()
	res := &Result{App: spec.Name, Result: ResultAborted}
	err := p.locked(ctx, spec, func(ctx context.Context, r *run) error {
		r.result = res
		if !r.state.InProgress() {
			res.Result = "unchanged"
			r.logf("no promote in progress")
			return nil
		}
		return r.rollback(ctx, "aborted by 'tsys-ci abort'", ResultAborted)
	})
	if held, ok := err.(*HeldError); ok {
		res.Result, res.Reason = ResultAbortRequested, "asked "+held.Holder+", which runs the promote, to roll it back"
		return res, p.requestAbort(ctx, spec, held)
	}
	return res, err
}

func (p *Promoter) requestAbort(ctx context.Context, spec *AppSpec, held *HeldError) error {
	store := &StateStore{Client: p.Client, Namespace: spec.Namespace, App: spec.Name, Clock: p.Clock}
	s, err := store.Load(ctx)
	if err != nil {
		return err
	}
	s.AbortRequested = true
	if err := store.Save(ctx, s); err != nil {
		return fmt.Errorf("asking the running promote (%s) to abort: %w; try again", held.Holder, err)
	}
	p.logf(spec.Name, "asked the running promote (%s) to roll back; it does so at its next check ('tsys-ci status %s' shows it)", held.Holder, spec.Name)
	return nil
}
