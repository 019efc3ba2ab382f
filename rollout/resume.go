package rollout

import (
	"context"
	"fmt"
)

// Resume finishes the promote a stopped process left under way, whatever
// its image: it drives it on from its recorded phase (with the strategy it
// was started with), or, when it was rolling back, finishes the rollback.
// Nothing in progress: Result "unchanged". A finished rollback returns
// Result ResultRolledBack and no error; a resumed promote whose version
// then fails rolls back as Promote does (*ProbeFailedError).
//
// verifyRecorded runs VerifyRecorded and the source check on an image
// read from the state.
func (p *Promoter) verifyRecorded(ctx context.Context, spec *AppSpec, image string) error {
	if p.VerifyRecorded != nil {
		if err := p.VerifyRecorded(ctx, image); err != nil {
			return fmt.Errorf("%s, recorded in the rollout state, fails the image check (%v); not deployed: promote a signed image, or 'tsys-ci abort' an interrupted promote", image, err)
		}
	}
	if err := p.checkSource(ctx, spec, image); err != nil {
		return fmt.Errorf("%s, recorded in the rollout state, fails the source check (%v); not deployed: promote an image built from the spec's source.repository, or 'tsys-ci abort' an interrupted promote", image, err)
	}
	return nil
}

// checkSource runs CheckSource when the spec names a source repository.
func (p *Promoter) checkSource(ctx context.Context, spec *AppSpec, image string) error {
	want := spec.Source.Repository
	if want == "" {
		return nil
	}
	if p.CheckSource == nil {
		if p.Out != nil {
			fmt.Fprintf(p.Out, "source.repository %s is not checked: images are not verified (--allow-unsigned)\n", want)
		}
		return nil
	}
	return p.CheckSource(ctx, image, want)
}

// It is what a new 'tsys-ci serve' leader runs for the deploys the old one
// was carrying out when it died; the app's lease keeps it from racing a
// process that is still alive.
func (p *Promoter) Resume(ctx context.Context, spec *AppSpec) (*Result, error) {
	p.defaults()
	res := &Result{App: spec.Name, Result: "unchanged"}
	start := p.Clock.Now()
	err := p.locked(ctx, spec, func(ctx context.Context, r *run) error {
		r.result = res
		s := r.state
		if !s.InProgress() {
			r.logf("no promote in progress; nothing to resume")
			return nil
		}
		res.Strategy = s.Strategy
		if s.Candidate != nil {
			res.Image = s.Candidate.Image
		}
		if s.Phase == PhaseRollingBack || s.Candidate == nil {
			reason := s.Message
			if reason == "" {
				reason = "interrupted"
			}
			r.logf("finishing the rollback left at phase %s (%s)", s.Phase, reason)
			if err := r.rollback(ctx, reason, ResultRolledBack); err != nil {
				return fmt.Errorf("finishing the interrupted rollback: %w", err)
			}
			res.Result, res.Reason = ResultRolledBack, reason
			return nil
		}
		if s.Strategy != "" && s.Strategy != r.spec.Strategy.Type {
			copied := *r.spec
			copied.Strategy.Type = s.Strategy
			if err := copied.Validate(); err != nil {
				return fmt.Errorf("the interrupted promote used strategy %s, which the spec no longer allows (%v); run 'tsys-ci abort %s' to roll it back", s.Strategy, err, spec.Name)
			}
			r.spec = &copied
		}
		if err := p.verifyRecorded(ctx, spec, s.Candidate.Image); err != nil {
			return err
		}
		r.logf("resuming the promote of %s left at phase %s", s.Candidate.Image, s.Phase)
		res.Resumed = true
		return r.drive(ctx)
	})
	res.Duration = p.Clock.Now().Sub(start)
	return res, err
}
