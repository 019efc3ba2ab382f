package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Defaults of a Promoter.
const (
	DefaultPollInterval = 2 * time.Second
	DefaultReadyTimeout = 5 * time.Minute
	// DefaultSampleInterval: the analysis reads the edge every second.
	DefaultSampleInterval = time.Second
	// DefaultEdgeConfirmTimeout: 'edge sync --watch' applies a weight
	// change in well under a second; 30 s means it is not running.
	DefaultEdgeConfirmTimeout = 30 * time.Second
)

// ProbeFailedError means the new version failed its probes or its pods
// failed, and promote rolled it back: traffic is on the previous version.
// The CLI exits 3 on it.
type ProbeFailedError struct {
	App, Image, Reason string
}

func (e *ProbeFailedError) Error() string {
	return fmt.Sprintf("promote of %s to %s failed and was rolled back: %s", e.App, e.Image, e.Reason)
}

// ErrAborted is returned by waits when 'tsys-ci abort' (or serve's abort,
// the dashboard's button) asked to stop; a promote that rolled back on it
// returns an error wrapping it, so callers tell an abort from a failure.
var ErrAborted = errors.New("aborted by 'tsys-ci abort'")

// ErrHandedOver is the cause a caller gives when it cancels a promote so
// that another process resumes it (serve's replica shutting down, its
// deploys taken over by the next leader): promote then leaves the
// recorded phase as it is, even mid-canary, where a plain cancellation
// (Ctrl-C) returns the traffic to the stable version first.
var ErrHandedOver = errors.New("handed over to another process, which resumes it from the rollout state")

// ProbeTarget says where probes reach one Service port of the app and with
// which client; ServiceProxy gives the API server's service proxy, so a
// promote run from a laptop probes the preview Service without a route
// into the cluster.
type ProbeTarget func(namespace, service, port string) (baseURL string, client *http.Client)

// Promoter runs promotes, rollbacks and aborts of apps on one cluster. One
// value serves the CLI, 'tsys-ci serve' and the Jenkins steps.
type Promoter struct {
	Client kubernetes.Interface
	// Dynamic writes the gateway's objects of the spec's api: section
	// (Traefik's IngressRoute and Middlewares) and removes them; nil: an
	// app with api: is refused.
	Dynamic   dynamic.Interface
	Clock     Clock
	Out       io.Writer // progress lines for a Jenkins console
	Allocator *Allocator
	Probe     ProbeTarget
	// Holder identifies this process in the app's Lease.
	Holder string
	// HolderGone, when set, is asked about another holder's lease that
	// has not expired or is about to be taken over: a process it proves
	// dead frees the app at once instead of after the lease expires and
	// is watched for one more duration (about a minute with the default).
	HolderGone HolderGone
	// VerifyRecorded, when set, checks an image read from the rollout
	// state before Resume or Rollback deploys it (the candidate of a
	// resumed promote, the previous version a rollback returns to): that
	// ConfigMap can be written by more than the process that verified it.
	VerifyRecorded func(ctx context.Context, image string) error
	// CheckSource, when set, checks that image (by digest) carries a
	// signed provenance naming the source repository the app's spec
	// names (source.repository); it is asked only when the spec names
	// one, for the image to promote and for images read from the
	// rollout state. Nil (no key to verify with: --allow-unsigned) skips
	// the check and says so.
	CheckSource   func(ctx context.Context, image, repository string) error
	LeaseDuration time.Duration
	PollInterval  time.Duration
	ReadyTimeout  time.Duration
	// EdgeStats reads the edge's HAProxy stats CSV (at the pool's
	// edge.statsURL) for the analysis; nil: no auth, the default client.
	EdgeStats *EdgeStatsReader
	// SampleInterval is how often the analysis samples the edge
	// (default 1 s); EdgeConfirmTimeout bounds the wait for the edge to
	// show weights promote wrote (default 30 s).
	SampleInterval     time.Duration
	EdgeConfirmTimeout time.Duration
	// PrometheusClient asks the spec's analysis.prometheus address; nil:
	// the default client.
	PrometheusClient *http.Client
	// Progress, when set, is told of the moments people are notified of
	// that only promote sees (ProgressSwitched); it must not block.
	Progress func(Progress)
	// LookupEnv reads the spec's fromEnv variables (os.LookupEnv in the
	// CLI; the policy's envSecret in serve). Nil: none is set, so a spec with fromEnv entries
	// is refused.
	LookupEnv LookupEnv
}

// Progress is a moment of a promote that callers pass on as a notice.
type Progress struct {
	Kind      string // ProgressSwitched
	Namespace string
	App       string
	Image     string // the version now serving
	Previous  string // the version that served before ("" for a first one)
	Strategy  string
	At        time.Time
}

// ProgressSwitched: all traffic is on the new version (the blue/green
// switch, or a canary at 100 %), and the edge shows it when there is one;
// the previous version still runs until the scale-down delay ends.
const ProgressSwitched = "switched"

// progress tells p.Progress, if set, of a moment of this promote.
func (r *run) progress(kind string) {
	if r.p.Progress == nil {
		return
	}
	s := r.state
	pr := Progress{Kind: kind, Namespace: r.spec.Namespace, App: r.spec.Name, Strategy: s.Strategy, At: r.p.Clock.Now().UTC()}
	if s.Active != nil {
		pr.Image = s.Active.Image
	}
	if s.Previous != nil {
		pr.Previous = s.Previous.Image
	}
	r.p.Progress(pr)
}

// Request is one promote: the app's spec and the image to put live.
type Request struct {
	Spec     *AppSpec
	Image    string
	Revision string
	// Strategy overrides the spec's strategy when set.
	Strategy string
	// RecordedSecret, when set (RollbackTo), is the env Secret a recorded
	// release ran with: the version runs with it again, and the spec's
	// fromEnv variables are not read from the environment.
	RecordedSecret string
}

// Result is what a promote did, for -o json and the Jenkins step.
type Result struct {
	App      string        `json:"app"`
	Strategy string        `json:"strategy"`
	Image    string        `json:"image"`
	Result   string        `json:"result"`
	Reason   string        `json:"reason,omitempty"`
	Resumed  bool          `json:"resumed,omitempty"`
	Address  *Allocation   `json:"address,omitempty"`
	Steps    []CanaryStep  `json:"canarySteps,omitempty"`
	Probes   []ProbeResult `json:"probes,omitempty"`
	Duration time.Duration `json:"duration"`
	// Secret names the release's Secret of the fromEnv values, if any.
	Secret string `json:"secret,omitempty"`
}

// run is one promote, rollback or abort under the app's lease.
type run struct {
	p      *Promoter
	spec   *AppSpec
	store  *StateStore
	state  *State
	result *Result
	// edge is the pool's edge settings, read once (edgeRead).
	edge     *EdgeConfig
	edgeRead bool
	// hadEnvSecrets: the state named an env Secret when it was loaded.
	hadEnvSecrets bool
}

func (p *Promoter) defaults() {
	if p.Clock == nil {
		p.Clock = RealClock{}
	}
	if p.Out == nil {
		p.Out = io.Discard
	}
	if p.LeaseDuration == 0 {
		p.LeaseDuration = DefaultLeaseDuration
	}
	if p.PollInterval == 0 {
		p.PollInterval = DefaultPollInterval
	}
	if p.ReadyTimeout == 0 {
		p.ReadyTimeout = DefaultReadyTimeout
	}
	if p.SampleInterval == 0 {
		p.SampleInterval = DefaultSampleInterval
	}
	if p.EdgeConfirmTimeout == 0 {
		p.EdgeConfirmTimeout = DefaultEdgeConfirmTimeout
	}
}

// releaseTimeout bounds the release of an app's lease after a promote.
const releaseTimeout = 10 * time.Second

// locked takes the app's lease, loads its state and calls fn; the lease is
// renewed while fn runs and released after. If renewal fails fn's context
// is cancelled: another process may own the app now.
func (p *Promoter) locked(ctx context.Context, spec *AppSpec, fn func(ctx context.Context, r *run) error) error {
	p.defaults()
	lock, err := AcquireLockUnlessGone(ctx, p.Client, p.Clock, spec.Namespace, spec.Name, p.Holder, p.LeaseDuration, p.HolderGone,
		func(format string, args ...any) { p.logf(spec.Name, format, args...) })
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		lock.KeepAlive(ctx, func(err error) { cancel(err) })
	}()
	defer func() {
		// Stop renewing before releasing, so the two never race.
		cancel(nil)
		<-kept
		// Released even when ctx was cancelled (Ctrl-C), but not waited
		// on for ever: an API server that does not answer would hang the
		// exit, and the lease expires on its own anyway.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer rcancel()
		if err := lock.Release(rctx); err != nil {
			p.logf(spec.Name, "warning: %v (the lease expires on its own in %s)", err, p.LeaseDuration)
		}
	}()
	store := &StateStore{Client: p.Client, Namespace: spec.Namespace, App: spec.Name, Clock: p.Clock}
	state, err := store.Load(ctx)
	if err != nil {
		return err
	}
	r := &run{p: p, spec: spec, store: store, state: state, hadEnvSecrets: len(state.referencedSecrets()) > 0}
	err = fn(ctx, r)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, ErrHandedOver) {
		return fmt.Errorf("%w (lost the lease: %v)", err, cause)
	}
	return err
}

func (p *Promoter) logf(app, format string, args ...any) {
	fmt.Fprintf(p.Out, "[%s] %s: %s\n", p.Clock.Now().UTC().Format("15:04:05"), app, fmt.Sprintf(format, args...))
}

func (r *run) logf(format string, args ...any) { r.p.logf(r.spec.Name, format, args...) }

// save writes the state; a failure here stops the promote, since a re-run
// must find the truth in the cluster. While the lease is held the only
// other writer is 'tsys-ci abort' asking to stop: on a conflict the state
// is read again, the request kept, and the write repeated.
//
// Once a stable state is written, the env Secrets no release in it names
// any more are deleted (pruneEnvSecrets).
func (r *run) save(ctx context.Context, phase Phase, msg string) error {
	r.state.Phase, r.state.Message = phase, msg
	err := r.store.Save(ctx, r.state)
	if apierrors.IsConflict(err) {
		var fresh *State
		if fresh, err = r.store.Load(ctx); err != nil {
			return err
		}
		if fresh.AbortRequested && phase != PhaseStable && phase != PhaseRollingBack {
			r.state.AbortRequested = true
		}
		err = r.store.Save(ctx, r.state)
	}
	if err == nil && phase == PhaseStable {
		r.pruneEnvSecrets(ctx)
	}
	return err
}

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
	// Read before anything is asked of the cluster: a missing variable
	// leaves everything as it was.
	var envData map[string][]byte
	want := Release{Image: req.Image, Revision: req.Revision}
	if req.RecordedSecret != "" && HasFromEnv(spec) {
		want.Secret = req.RecordedSecret // exists: RollbackTo checked it
	} else {
		var err error
		if envData, err = EnvSecretData(spec, p.LookupEnv); err != nil {
			return nil, err
		}
		if envData != nil {
			want.Secret = EnvSecretName(spec.Name, envData)
		}
	}
	if err := p.checkSource(ctx, spec, req.Image); err != nil {
		return nil, fmt.Errorf("refusing to promote %s: %w", req.Image, err)
	}
	if err := p.checkGateway(ctx, spec); err != nil {
		return nil, fmt.Errorf("refusing to promote %s: %w", req.Image, err)
	}
	res := &Result{App: spec.Name, Strategy: strategy, Image: req.Image, Secret: want.Secret}
	p.defaults()
	start := p.Clock.Now()
	err := p.locked(ctx, spec, func(ctx context.Context, r *run) error {
		r.result = res
		return r.promote(ctx, want, envData)
	})
	res.Duration = p.Clock.Now().Sub(start)
	return res, err
}

// sameRelease reports whether a recorded release is the one asked for: the
// same image with the same fromEnv values (the same Secret).
func sameRelease(rec *Release, want Release) bool {
	return rec != nil && rec.Image == want.Image && rec.Secret == want.Secret
}

// promote puts want live; envData, when the spec has fromEnv variables, is
// the content of want.Secret, created before the state names it.
func (r *run) promote(ctx context.Context, want Release, envData map[string][]byte) error {
	s := r.state
	if s.Phase == PhaseSwitched && s.Candidate != nil && !sameRelease(s.Candidate, want) {
		// Traffic was already all on that version and its probes passed:
		// complete it rather than undo it.
		r.logf("the promote of %s had switched all traffic before it stopped; completing it first", s.Candidate.Image)
		if err := r.finish(ctx, false); err != nil {
			return fmt.Errorf("completing the interrupted promote: %w", err)
		}
	}
	if s.InProgress() {
		if sameRelease(s.Candidate, want) && s.Strategy == r.spec.Strategy.Type && s.Phase != PhaseRollingBack {
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
	if sameRelease(s.Active, want) {
		// The version runs already; the spec's Service side (ports, hosts
		// for the edge) and budget may still have changed, so apply them.
		if err := r.switchTo(ctx, s.Active.Color); err != nil {
			return err
		}
		if err := r.syncColorServices(ctx); err != nil {
			return err
		}
		if pdb := RenderPDB(r.spec, r.store.Owner()); pdb != nil {
			if err := Apply(ctx, r.p.Client, pdb); err != nil {
				return err
			}
		}
		if err := r.syncGateway(ctx); err != nil {
			return err
		}
		r.logf("%s already serves %s; Service and budget applied, pods unchanged (a change to the pods needs a new image or new fromEnv values)", s.Active.Color, want.Image)
		r.result.Result = "unchanged"
		return nil
	}
	// The Secret first: a caller that may not create it (no rights on
	// Secrets) stops before an address is allocated or the state moves.
	if envData != nil {
		if err := r.ensureEnvSecret(ctx, envData); err != nil {
			return err
		}
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
	edge, err := r.edgeConfig(ctx)
	if err != nil {
		return err
	}
	s.Candidate, s.Strategy, s.Step, s.AbortRequested, s.EdgeTraffic = &want, r.spec.Strategy.Type, 0, false, nil
	s.EdgeCanary = s.Strategy == StrategyCanary && edge != nil && len(HostedPorts(r.spec)) > 0
	s.StartedAt = r.p.Clock.Now().UTC()
	if err := r.save(ctx, PhaseDeploying, "deploying "+want.Image+" on "+want.Color); err != nil {
		return err
	}
	return r.drive(ctx)
}
