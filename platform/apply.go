package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// Step actions of a plan.
const (
	StepInstall   = "install"
	StepUpgrade   = "upgrade"
	StepUnchanged = "unchanged"
)

// Step is what apply does (or did) to one component's Helm release.
type Step struct {
	Component string `json:"component"`
	Release   string `json:"release"`
	Namespace string `json:"namespace"`
	Action    string `json:"action"`
	Chart     string `json:"chart"`
	// From is the deployed chart version and revision, if any.
	From string `json:"from,omitempty"`
	// Reason says why an upgrade is needed.
	Reason string `json:"reason,omitempty"`
	// Changes say exactly what an upgrade changes: one line per changed
	// value ("values lab.version: \"v1\" -> \"v2\"") and per added (+),
	// removed (-) or changed (~) object of the rendered manifests.
	Changes []string `json:"changes,omitempty"`
	// Revision is the release revision after apply.
	Revision int `json:"revision,omitempty"`

	chart    *chart.Chart
	values   map[string]any
	deployed int
}

// HelmOptions connect plan and apply to Helm and to the charts.
type HelmOptions struct {
	// Config returns Helm's action configuration for a namespace (the CLI
	// builds it from the kubeconfig; tests pass their own).
	Config func(namespace string) (*action.Configuration, error)
	// LoadChart returns the chart of a component; ChartsDir is the usual one.
	LoadChart func(component string, c Component) (*chart.Chart, error)
	// Templates is templates/platform (values templates).
	Templates fs.FS
	// Wait for each release's resources to be ready, up to Timeout.
	Wait    bool
	Timeout time.Duration
	// Progress receives one line per step as it starts and ends.
	Progress io.Writer
	Now      func() time.Time
	// ApplyObjects applies the plain objects around the charts (namespaces,
	// MetalLB's pool); nil leaves them to the operator.
	ApplyObjects ObjectApplier
	// Context bounds the plain-object calls (default: background).
	Context context.Context
}

func (o *HelmOptions) ctx() context.Context {
	if o.Context == nil {
		return context.Background()
	}
	return o.Context
}

func (o *HelmOptions) defaults() {
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// ChartsDir loads charts from a directory, DIR/<chart> or
// DIR/<chart>-<version>.tgz, unless the component names a file:// repo:
// then from that path only (a named path that is missing is an error, not a
// reason to look elsewhere). No chart is downloaded. The chart's name and
// version must be the ones platform.yaml gives.
func ChartsDir(dir string) func(string, Component) (*chart.Chart, error) {
	return func(component string, c Component) (*chart.Chart, error) {
		var candidates []string
		path, local := strings.CutPrefix(c.Repo, "file://")
		if local {
			if _, err := os.Stat(path); err != nil {
				return nil, fmt.Errorf("the %s chart: components.%s.repo is %s, but %w", component, component, c.Repo, err)
			}
			candidates = append(candidates, path)
		} else if dir != "" {
			candidates = append(candidates, filepath.Join(dir, c.Chart), filepath.Join(dir, c.Chart+"-"+c.Version+".tgz"))
		}
		for _, path := range candidates {
			if _, err := os.Stat(path); err != nil {
				continue
			}
			ch, err := loader.Load(path)
			if err != nil {
				return nil, fmt.Errorf("loading the %s chart from %s: %w", component, path, err)
			}
			if ch.Metadata.Name != c.Chart {
				return nil, fmt.Errorf("the %s chart at %s is named %s but platform.yaml says chart: %s", component, path, ch.Metadata.Name, c.Chart)
			}
			if ch.Metadata.Version != c.Version {
				return nil, fmt.Errorf("the %s chart at %s is version %s but platform.yaml pins %s", component, path, ch.Metadata.Version, c.Version)
			}
			return ch, nil
		}
		if len(candidates) == 0 {
			return nil, fmt.Errorf("no chart for %s: give --charts DIR holding %s/ or %s-%s.tgz (`helm pull %s/%s --version %s`), or a file:// repo in platform.yaml",
				component, c.Chart, c.Chart, c.Version, c.Repo, c.Chart, c.Version)
		}
		return nil, fmt.Errorf("no chart for %s: looked for %s (pull it with `helm pull %s/%s --version %s` into --charts)",
			component, strings.Join(candidates, ", "), c.Repo, c.Chart, c.Version)
	}
}

// Plan says, for every enabled component in install order, whether apply
// would install it, upgrade it (and why) or leave it unchanged. It changes
// nothing.
func Plan(spec *Spec, opts HelmOptions) ([]Step, error) {
	opts.defaults()
	var steps []Step
	for _, name := range spec.releases() {
		step, err := planOne(spec, name, &opts)
		if err != nil {
			return nil, err
		}
		steps = append(steps, step)
	}
	return steps, nil
}

func planOne(spec *Spec, name string, opts *HelmOptions) (Step, error) {
	c := spec.component(name)
	step := Step{Component: name, Release: releaseName(name), Namespace: c.Namespace, Chart: c.Chart + "-" + c.Version}
	ch, err := opts.LoadChart(name, c)
	if err != nil {
		return step, err
	}
	values, err := ComponentValues(spec, opts.Templates, name)
	if err != nil {
		return step, err
	}
	step.chart, step.values = ch, values
	cfg, err := opts.Config(c.Namespace)
	if err != nil {
		return step, fmt.Errorf("connecting Helm to namespace %s: %w", c.Namespace, err)
	}
	last, err := action.NewGet(cfg).Run(step.Release)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		step.Action = StepInstall
		return step, nil
	}
	if err != nil {
		return step, fmt.Errorf("reading release %s in %s: %w", name, c.Namespace, err)
	}
	step.From = fmt.Sprintf("%s-%s (revision %d, %s)", last.Chart.Metadata.Name, last.Chart.Metadata.Version, last.Version, last.Info.Status)
	deployed, err := lastDeployed(cfg, step.Release)
	if err != nil {
		return step, err
	}
	step.deployed = deployed
	if last.Info.Status != release.StatusDeployed {
		step.Action, step.Reason = StepUpgrade, fmt.Sprintf("the last revision is %s", last.Info.Status)
		return step, nil
	}
	up := action.NewUpgrade(cfg)
	up.Namespace = c.Namespace
	up.DryRun = true
	next, err := up.Run(step.Release, ch, values)
	if err != nil {
		return step, fmt.Errorf("rendering the upgrade of %s: %w", name, err)
	}
	var reasons []string
	if last.Chart.Metadata.Version != ch.Metadata.Version {
		reasons = append(reasons, fmt.Sprintf("chart %s -> %s", last.Chart.Metadata.Version, ch.Metadata.Version))
	}
	if !sameValues(last.Config, values) {
		reasons = append(reasons, "values changed")
		for _, c := range effectiveValueChanges(last.Chart, last.Config, ch, values) {
			step.Changes = append(step.Changes, "values "+c)
		}
	}
	if next.Manifest != last.Manifest {
		reasons = append(reasons, "manifests changed")
		step.Changes = append(step.Changes, manifestChanges(last.Manifest, next.Manifest)...)
	}
	if len(reasons) == 0 {
		step.Action, step.Revision = StepUnchanged, last.Version
		return step, nil
	}
	step.Action, step.Reason = StepUpgrade, strings.Join(reasons, ", ")
	return step, nil
}

// lastDeployed is the newest deployed revision, 0 if none.
func lastDeployed(cfg *action.Configuration, name string) (int, error) {
	hist, err := action.NewHistory(cfg).Run(name)
	if err != nil {
		return 0, fmt.Errorf("reading the history of %s: %w", name, err)
	}
	best := 0
	for _, r := range hist {
		if (r.Info.Status == release.StatusDeployed || r.Info.Status == release.StatusSuperseded) && r.Version > best {
			best = r.Version
		}
	}
	return best, nil
}

// sameValues compares values as JSON would see them (Helm stores numbers
// as float64 after a round trip).
func sameValues(a, b map[string]any) bool {
	norm := func(m map[string]any) any {
		if len(m) == 0 {
			return nil
		}
		raw, _ := json.Marshal(m)
		var out any
		_ = json.Unmarshal(raw, &out)
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// ApplyError is the first step that failed; the steps before it are done,
// the ones after it were not started.
type ApplyError struct {
	Step        Step
	Err         error
	RolledBack  int // revision rolled back to, 0 if none
	RollbackErr error
	// NotReady says why the new pods were not ready (NotReadyReasons), read
	// before the rollback or removal.
	NotReady []string
	// RemoveErr is why a failed install could not be removed.
	RemoveErr error
}

func (e *ApplyError) Error() string {
	msg := fmt.Sprintf("%s of %s (%s) in %s failed: %v", e.Step.Action, e.Step.Component, e.Step.Chart, e.Step.Namespace, e.Err)
	if len(e.NotReady) > 0 {
		msg += "; " + strings.Join(e.NotReady, "; ")
	}
	switch {
	case e.RollbackErr != nil:
		msg += fmt.Sprintf("; rolling back to revision %d ALSO failed: %v (inspect with helm history %s -n %s)", e.RolledBack, e.RollbackErr, e.Step.Release, e.Step.Namespace)
	case e.RolledBack > 0:
		msg += fmt.Sprintf("; rolled back to revision %d", e.RolledBack)
	case e.Step.Action == StepInstall && e.RemoveErr != nil:
		msg += fmt.Sprintf("; removing the failed release ALSO failed: %v (remove it with helm uninstall %s -n %s)", e.RemoveErr, e.Step.Release, e.Step.Namespace)
	case e.Step.Action == StepInstall:
		msg += "; the failed release was removed"
	}
	return msg + ". Components later in the order were not touched; fix the cause and run apply again."
}

func (e *ApplyError) Unwrap() error { return e.Err }

// Apply installs or upgrades every component in install order, waiting for
// each to be healthy before the next. It stops at the first failure (a
// failed install is removed, a failed upgrade rolled back) and returns an
// *ApplyError. Components the plan finds unchanged are not touched, so a
// second apply changes nothing.
func Apply(spec *Spec, opts HelmOptions) ([]Step, error) {
	opts.defaults()
	steps, err := Plan(spec, opts)
	if err != nil {
		return nil, err
	}
	if err := opts.applyObjects("namespaces", namespaces(spec)); err != nil {
		return nil, err
	}
	if !spec.Enabled("metallb") {
		// Without MetalLB the gateway's place is first (applyAfter).
		if err := opts.applyGateway(spec); err != nil {
			return nil, err
		}
	}
	for i := range steps {
		s := &steps[i]
		prefix := fmt.Sprintf("[%d/%d] %s", i+1, len(steps), s.Component)
		if s.Action == StepUnchanged {
			fmt.Fprintf(opts.Progress, "%s: unchanged (%s)\n", prefix, s.From)
			if err := opts.applyAfter(spec, s.Component); err != nil {
				return steps[:i+1], err
			}
			continue
		}
		cfg, err := opts.Config(s.Namespace)
		if err != nil {
			return steps[:i], fmt.Errorf("connecting Helm to namespace %s: %w", s.Namespace, err)
		}
		start := opts.Now()
		fmt.Fprintf(opts.Progress, "%s: %s %s in %s%s\n", prefix, s.Action, s.Chart, s.Namespace, waitNote(&opts))
		rel, err := runStep(cfg, s, &opts)
		if err != nil {
			return steps[:i], err
		}
		s.Revision = rel.Version
		fmt.Fprintf(opts.Progress, "%s: %s, revision %d, in %s\n", prefix, rel.Info.Status, rel.Version, opts.Now().Sub(start).Round(time.Second))
		if err := opts.applyAfter(spec, s.Component); err != nil {
			return steps[:i+1], err
		}
	}
	return steps, nil
}

func waitNote(o *HelmOptions) string {
	if !o.Wait {
		return ""
	}
	return fmt.Sprintf(", waiting up to %s for it to be ready", o.Timeout)
}

func runStep(cfg *action.Configuration, s *Step, opts *HelmOptions) (*release.Release, error) {
	if s.Action == StepInstall {
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace, in.CreateNamespace = s.Release, s.Namespace, true
		in.Wait, in.Timeout = opts.Wait, opts.Timeout
		rel, err := in.Run(s.chart, s.values)
		if err == nil {
			return rel, nil
		}
		if opts.Wait && isWaitTimeout(err) {
			err = fmt.Errorf("not ready within %s: %w", opts.Timeout, err)
		}
		aerr := &ApplyError{Step: *s, Err: err}
		if rel != nil {
			aerr.NotReady = explainNotReady(cfg, opts, s.Namespace, rel.Manifest)
		}
		// Removed as Helm's atomic install would, but after reading why its
		// pods were not ready: the next apply starts clean.
		fmt.Fprintf(opts.Progress, "    %s: install failed (%v)\n", s.Component, err)
		for _, r := range aerr.NotReady {
			fmt.Fprintf(opts.Progress, "      not ready: %s\n", r)
		}
		un := action.NewUninstall(cfg)
		un.Timeout, un.IgnoreNotFound = opts.Timeout, true
		if _, uerr := un.Run(s.Release); uerr != nil {
			aerr.RemoveErr = uerr
		} else {
			fmt.Fprintf(opts.Progress, "    %s: the failed release was removed\n", s.Component)
		}
		return nil, aerr
	}
	up := action.NewUpgrade(cfg)
	up.Namespace, up.Wait, up.Timeout, up.MaxHistory = s.Namespace, opts.Wait, opts.Timeout, 10
	rel, err := up.Run(s.Release, s.chart, s.values)
	if err == nil {
		return rel, nil
	}
	if opts.Wait && isWaitTimeout(err) {
		err = fmt.Errorf("not ready within %s: %w", opts.Timeout, err)
	}
	aerr := &ApplyError{Step: *s, Err: err}
	if rel != nil {
		aerr.NotReady = explainNotReady(cfg, opts, s.Namespace, rel.Manifest)
	}
	if s.deployed == 0 {
		return nil, aerr
	}
	fmt.Fprintf(opts.Progress, "    %s: upgrade failed (%v)\n", s.Component, err)
	for _, r := range aerr.NotReady {
		fmt.Fprintf(opts.Progress, "      not ready: %s\n", r)
	}
	fmt.Fprintf(opts.Progress, "    %s: rolling back to revision %d\n", s.Component, s.deployed)
	rb := action.NewRollback(cfg)
	rb.Version, rb.Wait, rb.Timeout, rb.MaxHistory = s.deployed, opts.Wait, opts.Timeout, 10
	aerr.RolledBack = s.deployed
	start := opts.Now()
	aerr.RollbackErr = rb.Run(s.Release)
	if aerr.RollbackErr == nil {
		fmt.Fprintf(opts.Progress, "    %s: rolled back to revision %d in %s\n", s.Component, s.deployed, opts.Now().Sub(start).Round(100*time.Millisecond))
	}
	return nil, aerr
}

// isWaitTimeout reports whether Helm gave up waiting for readiness (its
// errors say only that a deadline passed).
func isWaitTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "context deadline exceeded") ||
		strings.Contains(err.Error(), "timed out waiting for the condition")
}
