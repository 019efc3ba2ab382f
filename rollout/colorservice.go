package rollout

import (
	"context"
	"fmt"

	"github.com/tsys-group/tsys-ci/internal/contract"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// syncColorServices applies the per-color Service of every color that has
// a Deployment in the state (active, previous kept at zero for a rollback,
// candidate), so the edge can reach each version on its own. An app without
// hosted ports has none: both are removed if an earlier spec had them.
func (r *run) syncColorServices(ctx context.Context) error {
	if len(HostedPorts(r.spec)) == 0 {
		for _, color := range []string{ColorBlue, ColorGreen} {
			if err := r.deleteColorService(ctx, color); err != nil {
				return err
			}
		}
		return nil
	}
	done := map[string]bool{}
	for _, rel := range []*Release{r.state.Active, r.state.Previous, r.state.Candidate} {
		if rel == nil || done[rel.Color] {
			continue
		}
		done[rel.Color] = true
		if err := Apply(ctx, r.p.Client, RenderColorService(r.spec, rel.Color, r.store.Owner())); err != nil {
			return err
		}
	}
	return nil
}

// deleteColorService removes one color's Service with its Deployment.
func (r *run) deleteColorService(ctx context.Context, color string) error {
	name := contract.ColorServiceName(r.spec.Name, color)
	err := r.p.Client.CoreV1().Services(r.spec.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing Service %s/%s: %w", r.spec.Namespace, name, err)
	}
	return nil
}
