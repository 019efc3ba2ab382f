package rollout

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tsys-group/tsys-ci/internal/contract"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func (r *run) allocate(ctx context.Context) (*Allocation, error) {
	ports := ExposedPorts(r.spec)
	if len(ports) == 0 {
		return nil, nil
	}
	if r.p.Allocator == nil {
		return nil, fmt.Errorf("app %s exposes ports %v but no load-balancer pool is configured", r.spec.Name, ports)
	}
	alloc, err := r.p.Allocator.Allocate(ctx, AppKey(r.spec.Namespace, r.spec.Name), ports)
	if err != nil {
		return nil, err
	}
	return alloc, nil
}

// deployCandidate is the Deploying phase of blue/green and canary: the new
// version with n pods, ready, then the phase moves to Probing (saved, so a
// resumed promote does not deploy again).
func (r *run) deployCandidate(ctx context.Context, n int32) error {
	if err := r.applyCandidate(ctx, n); err != nil {
		return err
	}
	if err := r.waitReady(ctx, *r.state.Candidate, n); err != nil {
		return err
	}
	if s := r.state; s.Active != nil && s.Active.Color != s.Candidate.Color && len(HostedPorts(r.spec)) > 0 {
		// Testers first: the edge sends requests with the canary header
		// to the new version from now on, before any weight (route
		// writes the candidate; the Service and weights stay as they are).
		w := s.EdgeWeights
		if w == nil {
			w = r.allOn(s.Active.Color)
		}
		if err := r.route(ctx, s.Active.Color, w); err != nil {
			return err
		}
		r.logf("testers reach %s through the edge with the header %s: %s", s.Candidate.Color, contract.CanaryHeader, contract.CanaryAlways)
	}
	return r.save(ctx, PhaseProbing, "probing "+r.state.Candidate.Image)
}

// applyCandidate applies what the new version needs: volumes, the PDB,
// the preview Service on its color and its Deployment with n pods.
func (r *run) applyCandidate(ctx context.Context, n int32) error {
	owner := r.store.Owner()
	for _, pvc := range RenderClaims(r.spec) {
		if err := Apply(ctx, r.p.Client, pvc); err != nil {
			return err
		}
	}
	if pdb := RenderPDB(r.spec, owner); pdb != nil {
		if err := Apply(ctx, r.p.Client, pdb); err != nil {
			return err
		}
	}
	// The api: section's routes reach the app's Service, whichever
	// version it serves; applied (or removed) with the new version's spec.
	if err := r.syncGateway(ctx); err != nil {
		return err
	}
	c := r.state.Candidate
	if err := Apply(ctx, r.p.Client, RenderPreviewService(r.spec, c.Color, owner)); err != nil {
		return err
	}
	if err := r.syncColorServices(ctx); err != nil {
		return err
	}
	r.logf("deploying %s on %s: %d pod(s)", c.Image, c.Color, n)
	return r.applyDeployment(ctx, *c, n)
}

func (r *run) applyDeployment(ctx context.Context, rel Release, n int32) error {
	d := RenderDeployment(r.spec, Version{Color: rel.Color, Image: rel.Image, Revision: rel.Revision, Replicas: n, Secret: rel.Secret}, r.store.Owner())
	return Apply(ctx, r.p.Client, d)
}

// scale sets the pod count of one color without touching its template, so
// a previous version comes back exactly as it ran.
func (r *run) scale(ctx context.Context, color string, n int32) error {
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"replicas": n}})
	name := DeploymentName(r.spec.Name, color)
	_, err := r.p.Client.AppsV1().Deployments(r.spec.Namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: contract.FieldManager})
	if err != nil {
		return fmt.Errorf("scaling %s/%s to %d: %w", r.spec.Namespace, name, n, err)
	}
	return nil
}

// deleteDeployment removes one color's Deployment and the Service the
// edge reached it through.
func (r *run) deleteDeployment(ctx context.Context, color string) error {
	name := DeploymentName(r.spec.Name, color)
	err := r.p.Client.AppsV1().Deployments(r.spec.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing %s/%s: %w", r.spec.Namespace, name, err)
	}
	return r.deleteColorService(ctx, color)
}

// switchTo points the app's Service at one color and, for an app with
// hosts, gives that color all the edge's requests in the same write.
func (r *run) switchTo(ctx context.Context, color string) error {
	return r.route(ctx, color, r.allOn(color))
}

// route writes the app's Service: its selector on one color ("" for
// both) and, for an app with hosts, w in its edge-weights annotation, in
// one write, so in-cluster clients and the edge move together. The weights
// go into the state (saved by the caller's next save).
func (r *run) route(ctx context.Context, selected string, w EdgeWeights) error {
	alloc, err := r.allocate(ctx)
	if err != nil {
		return err
	}
	svc, err := RenderService(r.spec, alloc, selected, r.store.Owner())
	if err != nil {
		return err
	}
	hosted := len(HostedPorts(r.spec)) > 0
	if hosted {
		if err := w.Validate(); err != nil {
			return fmt.Errorf("app %s: %w", r.spec.Name, err)
		}
		if svc.Annotations == nil {
			svc.Annotations = map[string]string{}
		}
		svc.Annotations[contract.AnnotationEdgeWeights] = w.String()
		if c := r.state.Candidate; c != nil && c.Color != selected && r.testersWelcome() {
			svc.Annotations[contract.AnnotationEdgeCandidate] = c.Color
		}
	}
	if err := Apply(ctx, r.p.Client, svc); err != nil {
		return err
	}
	if hosted {
		r.state.EdgeWeights = w
	} else {
		r.state.EdgeWeights = nil
	}
	return nil
}

// testersWelcome says whether the candidate may get the testers'
// requests: while it is deployed, probed or in its canary steps, not
// while it is being rolled back or aborted, nor when it is the previous
// version put back by hand.
func (r *run) testersWelcome() bool {
	s := r.state
	switch s.Phase {
	case PhaseDeploying, PhaseProbing, PhaseCanary:
		return !s.AbortRequested && !s.ManualRollback
	}
	return false
}

// readyNow reports whether rel has n ready pods and no failed one, from
// one look at its pods (no waiting).
func (r *run) readyNow(ctx context.Context, rel Release, n int32) bool {
	pods, err := r.pods(ctx, rel)
	return err == nil && EvaluatePods(pods, n, 0).Done()
}

// finish ends a switched promote: after the scale-down delay (watching the
// new version's pods; a failure there still rolls back) the previous
// version is scaled to zero and kept for 'promote --rollback'.
func (r *run) finish(ctx context.Context, wait bool) error {
	s := r.state
	if wait && s.Previous != nil && s.Previous.Color != s.Active.Color {
		delay := r.spec.Strategy.BlueGreen.ScaleDownDelay.Duration
		r.logf("keeping %s (%s) for %s for an instant rollback", s.Previous.Color, s.Previous.Image, delay)
		if err := r.watch(ctx, *s.Active, *r.spec.Replicas, delay); err != nil {
			return err
		}
	}
	if s.Previous != nil && s.Previous.Color != s.Active.Color {
		if err := r.scale(ctx, s.Previous.Color, 0); err != nil {
			return err
		}
		r.logf("scaled %s (%s) to 0", s.Previous.Color, s.Previous.Image)
	}
	s.Record(HistoryEntry{Release: *s.Active, Strategy: s.Strategy, Result: ResultPromoted, At: r.p.Clock.Now().UTC()})
	s.Candidate, s.Step = nil, 0
	if err := r.save(ctx, PhaseStable, "promoted "+s.Active.Image); err != nil {
		return err
	}
	r.logf("done: %s serves %s", s.Active.Color, s.Active.Image)
	return nil
}
