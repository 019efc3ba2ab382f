package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tsys-group/tsys-ci/rollout"
)

// PromoterDeployer carries out serve's deploys with rollout's promote, the
// same code the CLI and the Jenkins step run: the app's lease, the
// recorded state, the probes and the automatic rollback are promote's.
type PromoterDeployer struct {
	// Promoter is copied for each deploy, with Out set to the deploy's log.
	Promoter rollout.Promoter
	// Verify checks the image's signature and returns it by digest; it is
	// required (the CLI's --verify-key or --allow-unsigned choice).
	Verify func(ctx context.Context, image string) (string, error)
	Log    *slog.Logger
	// EnvSecrets gives promote the values of the spec's fromEnv variables,
	// from the policy's envSecret (DeployRequest.EnvSecret); nil: a
	// promote of a spec with fromEnv entries is refused.
	EnvSecrets *EnvSecrets
	// ResumeWait bounds how long a resume waits for the app's lease while
	// another process holds it (a replica still draining, or a dead one's
	// lease not expired yet); default DefaultResumeWait.
	ResumeWait time.Duration
}

// DefaultResumeWait is a resume's default wait for the app's lease: a
// draining replica may run its deploys for serve's whole shutdown timeout
// (5 min by default), and a dead one's lease expires within two lease
// durations.
const DefaultResumeWait = 6 * time.Minute

// resumePoll is how often a waiting resume asks for the app's lease
// again: a replica handing its deploys over releases the lease at any
// moment, long before it would expire (one read each time).
const resumePoll = 2 * time.Second

// Unfinished reports the promote or rollback a stopped process left under
// way for an app (nil when none), from the app's rollout state in the
// cluster.
func (d *PromoterDeployer) Unfinished(ctx context.Context, namespace, app string) (*Unfinished, error) {
	st, err := rollout.Status(ctx, d.Promoter.Client, namespace, app)
	if err != nil || st == nil || !st.InProgress() {
		return nil, err
	}
	u := &Unfinished{Phase: string(st.Phase)}
	if st.Candidate != nil {
		u.Image, u.Revision = st.Candidate.Image, st.Candidate.Revision
	}
	return u, nil
}

// Deploy runs one promote or rollback. A promote whose new version failed
// its probes returns an error wrapping ErrRolledBack.
func (d *PromoterDeployer) Deploy(ctx context.Context, req DeployRequest) error {
	spec, err := rollout.LoadSpec(req.Spec)
	if err != nil {
		return fmt.Errorf("policy %s: %w", req.Policy, err)
	}
	if req.Stage != "" && spec.Name == req.App {
		// One spec for every stage; each stage's copy runs in its own
		// namespace (serve.yaml's stages).
		spec.Namespace = req.Namespace
	}
	if spec.Name != req.App || spec.Namespace != req.Namespace {
		return fmt.Errorf("policy %s: the spec %s now describes %s/%s, not %s/%s; fix the policy or the spec", req.Policy, req.Spec, spec.Namespace, spec.Name, req.Namespace, req.App)
	}
	out := &lineLog{log: d.Log.With("id", req.ID, "app", req.App, "namespace", req.Namespace)}
	defer out.flush()
	p := d.Promoter
	p.Out = out
	p.Progress = ProgressFrom(ctx)
	// Resume and rollback deploy images read from the rollout state,
	// which more than serve can write: serve's image policy checks them
	// again (issue 17 finding 8).
	p.VerifyRecorded = func(ctx context.Context, image string) error {
		_, err := d.Verify(ctx, image)
		return err
	}
	var res *rollout.Result
	switch req.Kind {
	case DeployRollback:
		res, err = p.Rollback(ctx, spec)
	case DeployResume:
		res, err = d.resume(ctx, &p, spec)
		if err == nil && res.Result == rollout.ResultRolledBack {
			return fmt.Errorf("%w: an interrupted rollback was finished (%s)", ErrRolledBack, res.Reason)
		}
	case DeployAbort:
		// Its own lease holder: serve's own deploy of the app may hold
		// the lease under Holder, and must be asked, not raced.
		p.Holder += "/abort"
		res, err = p.Abort(ctx, spec)
		switch {
		case err != nil:
		case res.Result == rollout.ResultAbortRequested:
			return fmt.Errorf("%w: %s", ErrAbortRequested, res.Reason)
		case res.Result != rollout.ResultAborted:
			return fmt.Errorf("%s/%s: %w", spec.Namespace, spec.Name, ErrNothingToAbort)
		}
	case DeployPromote:
		// The values first: a missing Secret or key refuses the deploy
		// before anything in the cluster changes (verifying may record
		// the digest for admission).
		lookup, lerr := d.EnvSecrets.Lookup(ctx, req.Policy, req.EnvSecret, spec)
		if lerr != nil {
			return lerr
		}
		p.LookupEnv = lookup
		image, verr := d.Verify(ctx, req.Image)
		if verr != nil {
			return fmt.Errorf("refusing to promote %s: %w", req.Image, verr)
		}
		res, err = p.Promote(ctx, rollout.Request{Spec: spec, Image: image, Strategy: req.Strategy, Revision: req.Tag})
	default:
		return fmt.Errorf("unknown deploy kind %q", req.Kind)
	}
	var failed *rollout.ProbeFailedError
	if errors.As(err, &failed) {
		return fmt.Errorf("%w: %v", ErrRolledBack, err)
	}
	if err != nil {
		return err
	}
	d.Log.Info("promote result", "id", req.ID, "app", res.App, "strategy", res.Strategy, "image", res.Image,
		"result", res.Result, "resumed", res.Resumed, "seconds", res.Duration.Seconds())
	return nil
}

// resume runs promote's Resume, waiting while another process holds the
// app's lease: the replica that was running the deploy may still be
// draining it, or have died with its lease not yet expired.
func (d *PromoterDeployer) resume(ctx context.Context, p *rollout.Promoter, spec *rollout.AppSpec) (*rollout.Result, error) {
	clock := p.Clock
	if clock == nil {
		clock = rollout.RealClock{}
	}
	wait := d.ResumeWait
	if wait <= 0 {
		wait = DefaultResumeWait
	}
	giveUp := clock.Now().Add(wait)
	told := ""
	for {
		res, err := p.Resume(ctx, spec)
		var held *rollout.HeldError
		if !errors.As(err, &held) {
			return res, err
		}
		now := clock.Now()
		if !now.Before(giveUp) {
			return res, fmt.Errorf("resuming %s/%s: gave up after %s: %w", spec.Namespace, spec.Name, wait, err)
		}
		// Ask again soon, or when the lease would expire if that is
		// sooner: a live holder renews it, a handing-over one releases it.
		next := max(min(held.Expires.Sub(now), resumePoll), 100*time.Millisecond)
		if told != held.Holder {
			told = held.Holder
			fmt.Fprintf(p.Out, "%s holds the lease of %s until %s unless renewed or released; asking again every %s\n",
				held.Holder, spec.Name, held.Expires.UTC().Format("15:04:05"), resumePoll)
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("resuming %s/%s: %w", spec.Namespace, spec.Name, ctx.Err())
		case <-clock.After(next):
		}
	}
}

// lineLog turns promote's progress lines (written for a Jenkins console)
// into log records.
type lineLog struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.log.Info("promote progress", "line", string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
}

func (l *lineLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.log.Info("promote progress", "line", string(l.buf))
		l.buf = nil
	}
}
