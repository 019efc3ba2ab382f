package rollout

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// pods returns the pods of one release: its color, running its image
// with its env Secret.
func (r *run) pods(ctx context.Context, rel Release) ([]corev1.Pod, error) {
	sel := labels.SelectorFromSet(colorLabels(r.spec.Name, rel.Color)).String()
	list, err := r.p.Client.CoreV1().Pods(r.spec.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing pods of %s %s: %w", r.spec.Name, rel.Color, err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.Annotations[AnnotationImage] == rel.Image && p.Annotations[AnnotationEnvSecret] == rel.Secret {
			out = append(out, p)
		}
	}
	return out, nil
}

// checkAbort reads the state again and reports ErrAborted when 'tsys-ci
// abort' asked this promote to stop.
func (r *run) checkAbort(ctx context.Context) error {
	fresh, err := r.store.Load(ctx)
	if err != nil {
		return err
	}
	if fresh.AbortRequested {
		return ErrAborted
	}
	return nil
}

// waitReady waits until n pods of rel are ready, failing the version on a
// crash loop, an image pull error or a restart, or after ReadyTimeout.
func (r *run) waitReady(ctx context.Context, rel Release, n int32) error {
	deadline := r.p.Clock.Now().Add(r.p.ReadyTimeout)
	last := ""
	for {
		if err := r.checkAbort(ctx); err != nil {
			return err
		}
		pods, err := r.pods(ctx, rel)
		if err != nil {
			return err
		}
		v := EvaluatePods(pods, n, 0)
		if len(v.Failed) > 0 {
			return &versionFailed{reason: fmt.Sprintf("%s %s: %s", rel.Color, rel.Image, v)}
		}
		if v.Done() {
			r.logf("%s: %s", rel.Color, v)
			return nil
		}
		if s := v.String(); s != last {
			r.logf("%s: %s", rel.Color, s)
			last = s
		}
		if !r.p.Clock.Now().Before(deadline) {
			return &versionFailed{reason: fmt.Sprintf("%s %s not ready within %s: %s", rel.Color, rel.Image, r.p.ReadyTimeout, v)}
		}
		if err := r.sleep(ctx, r.p.PollInterval); err != nil {
			return err
		}
	}
}

// watch keeps checking rel's pods for d and, with an edge to read, judges
// rel by its users' requests there every SampleInterval; any failure
// fails the version.
func (r *run) watch(ctx context.Context, rel Release, n int32, d time.Duration) error {
	j, err := r.newJudge(ctx, rel)
	if err != nil {
		return err
	}
	pj, err := r.newPromJudge(rel)
	if err != nil {
		return err
	}
	interval := r.p.PollInterval
	if j != nil {
		interval = min(interval, r.p.SampleInterval)
		r.logf("judging %s by its requests at the edge for %s (window %s, max error rate %s, max response time %s, min %d requests)",
			rel.Color, d, r.spec.Analysis.Window.Duration, r.spec.Analysis.MaxErrorRate, r.spec.Analysis.MaxResponseTime.Duration, r.spec.Analysis.MinRequests)
	}
	if pj != nil {
		interval = min(interval, r.p.SampleInterval)
		r.logf("judging %s by Prometheus query '%s' for %s (fails above %s)", rel.Color, pj.tmpl, d, formatValue(pj.limit))
	}
	end := r.p.Clock.Now().Add(d)
	nextPods := r.p.Clock.Now()
	for r.p.Clock.Now().Before(end) {
		if j != nil {
			if err := j.sample(ctx); err != nil {
				return err
			}
		}
		if pj != nil {
			if err := pj.sample(ctx); err != nil {
				return err
			}
		}
		if !r.p.Clock.Now().Before(nextPods) {
			if err := r.checkAbort(ctx); err != nil {
				return err
			}
			pods, err := r.pods(ctx, rel)
			if err != nil {
				return err
			}
			if v := EvaluatePods(pods, n, 0); len(v.Failed) > 0 || !v.Done() {
				return &versionFailed{reason: fmt.Sprintf("%s %s while serving: %s", rel.Color, rel.Image, v)}
			}
			nextPods = r.p.Clock.Now().Add(r.p.PollInterval)
		}
		if err := r.sleep(ctx, min(interval, end.Sub(r.p.Clock.Now()))); err != nil {
			return err
		}
	}
	if j != nil {
		if err := j.sample(ctx); err != nil {
			return err
		}
		if err := j.record(ctx); err != nil {
			return err
		}
		r.logf("%s", j.summary())
	}
	if pj != nil {
		if err := pj.sample(ctx); err != nil {
			return err
		}
		r.logf("%s", pj.summary())
	}
	return nil
}

func (r *run) sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-r.p.Clock.After(d):
		return nil
	}
}

// runProbes runs the spec's HTTP probes against the candidate through the
// preview Service, then checks its pods once more (a restart during the
// probes fails it too).
func (r *run) runProbes(ctx context.Context) error {
	c := *r.state.Candidate
	if len(r.spec.Probes) == 0 {
		r.logf("no probes in the spec: relying on the pods' readiness")
	}
	for _, p := range r.spec.Probes {
		if r.p.Probe == nil {
			return fmt.Errorf("no way to reach the preview Service for probes")
		}
		base, client := r.p.Probe(r.spec.Namespace, PreviewServiceName(r.spec.Name), p.Port)
		res := RunHTTPProbe(ctx, client, r.p.Clock, base, p)
		r.result.Probes = append(r.result.Probes, res)
		if !res.Passed {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return &versionFailed{reason: fmt.Sprintf("probe %s: %s", p.Name, res.Reason)}
		}
		r.logf("probe %s passed: %d good answers in a row (last in %s)", p.Name, res.Successes, res.Latency.Round(time.Millisecond))
	}
	pods, err := r.pods(ctx, c)
	if err != nil {
		return err
	}
	if v := EvaluatePods(pods, 1, 0); len(v.Failed) > 0 {
		return &versionFailed{reason: fmt.Sprintf("%s %s: %s", c.Color, c.Image, v)}
	}
	return nil
}
