package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tsys-group/tsys-ci/internal/contract"
)

// DeleteOptions says what Delete removes beyond what promote made to run
// the app.
type DeleteOptions struct {
	// Volumes deletes the app's PersistentVolumeClaims too (its data,
	// unless the storage class retains the volumes); by default they stay,
	// so a later promote of the app finds its data again.
	Volumes bool
}

// DeleteResult is what Delete did, for -o json.
type DeleteResult struct {
	Namespace string `json:"namespace"`
	App       string `json:"app"`
	// Deleted are the objects removed, as Kind/name.
	Deleted []string `json:"deleted"`
	// KeptVolumes are the PersistentVolumeClaims left in place.
	KeptVolumes []string `json:"keptVolumes,omitempty"`
	// Freed is the address and ports given back to the pool (nil when the
	// app had none).
	Freed *Allocation `json:"freed,omitempty"`
}

// Delete removes what promote made for an app: its Deployments, Services
// (the edge drops its hosts with them), PodDisruptionBudget, the gateway's
// IngressRoute and Middlewares (with p.Dynamic), the
// releases' env Secrets, rollout state and Lease (not reported: Delete
// holds it), and gives its address and ports back to the pool.
// PersistentVolumeClaims stay unless opts.Volumes. It holds the app's
// Lease while it works, so it never races a promote; a promote under way
// is a *HeldError (abort it first). Objects are found by tsys-ci's labels
// (managed-by tsys-ci, name APP), so nothing else in the namespace is
// touched. Run again after a failure, it finishes the work.
func (p *Promoter) Delete(ctx context.Context, namespace, app string, opts DeleteOptions) (*DeleteResult, error) {
	p.defaults()
	lock, err := AcquireLockUnlessGone(ctx, p.Client, p.Clock, namespace, app, p.Holder+"/delete", p.LeaseDuration, p.HolderGone, nil)
	if err != nil {
		return nil, err
	}
	res := &DeleteResult{Namespace: namespace, App: app, Deleted: []string{}}
	sel := metav1.ListOptions{LabelSelector: labels.SelectorFromSet(AppLabels(app)).String()}
	del := func(kind, name string, err error) error {
		switch {
		case err == nil:
			res.Deleted = append(res.Deleted, kind+"/"+name)
		case apierrors.IsNotFound(err):
		default:
			return fmt.Errorf("deleting %s %s/%s: %w", kind, namespace, name, err)
		}
		return nil
	}
	steps := []func() error{
		func() error {
			l, err := p.Client.AppsV1().Deployments(namespace).List(ctx, sel)
			if err != nil {
				return fmt.Errorf("listing %s's Deployments: %w", app, err)
			}
			for _, o := range l.Items {
				if err := del("Deployment", o.Name, p.Client.AppsV1().Deployments(namespace).Delete(ctx, o.Name, metav1.DeleteOptions{})); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			l, err := p.Client.CoreV1().Services(namespace).List(ctx, sel)
			if err != nil {
				return fmt.Errorf("listing %s's Services: %w", app, err)
			}
			for _, o := range l.Items {
				if err := del("Service", o.Name, p.Client.CoreV1().Services(namespace).Delete(ctx, o.Name, metav1.DeleteOptions{})); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			l, err := p.Client.PolicyV1().PodDisruptionBudgets(namespace).List(ctx, sel)
			if err != nil {
				return fmt.Errorf("listing %s's PodDisruptionBudgets: %w", app, err)
			}
			for _, o := range l.Items {
				if err := del("PodDisruptionBudget", o.Name, p.Client.PolicyV1().PodDisruptionBudgets(namespace).Delete(ctx, o.Name, metav1.DeleteOptions{})); err != nil {
					return err
				}
			}
			return nil
		},
		// The releases' env Secrets (their owner, the state, goes last;
		// deleted here so nothing waits for the garbage collector).
		func() error {
			l, err := p.Client.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.LabelSelector + "," + LabelEnvSecret + "=true"})
			if err != nil {
				return fmt.Errorf("listing %s's env Secrets: %w", app, err)
			}
			for _, o := range l.Items {
				if err := del("Secret", o.Name, p.Client.CoreV1().Secrets(namespace).Delete(ctx, o.Name, metav1.DeleteOptions{})); err != nil {
					return err
				}
			}
			return nil
		},
		// The gateway's objects of the api: section (none on a cluster
		// without Traefik's CRDs).
		func() error {
			return deleteGatewayObjects(ctx, p.Dynamic, namespace, app, del)
		},
		func() error {
			l, err := p.Client.CoreV1().PersistentVolumeClaims(namespace).List(ctx, sel)
			if err != nil {
				return fmt.Errorf("listing %s's PersistentVolumeClaims: %w", app, err)
			}
			for _, o := range l.Items {
				if o.DeletionTimestamp != nil {
					continue // deleted before, waiting for its pods to go (pvc-protection)
				}
				if !opts.Volumes {
					res.KeptVolumes = append(res.KeptVolumes, o.Name)
					continue
				}
				if err := del("PersistentVolumeClaim", o.Name, p.Client.CoreV1().PersistentVolumeClaims(namespace).Delete(ctx, o.Name, metav1.DeleteOptions{})); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			freed, err := p.Allocator.Release(ctx, AppKey(namespace, app))
			res.Freed = freed
			return err
		},
		// The state last: a delete stopped before it can be run again and
		// still knows the app.
		func() error {
			return del("ConfigMap", StateName(app), p.Client.CoreV1().ConfigMaps(namespace).Delete(ctx, StateName(app), metav1.DeleteOptions{}))
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			_ = lock.Release(context.WithoutCancel(ctx)) // the error below is what counts
			return res, err
		}
	}
	// The Lease itself, held until now: the next promote of the app
	// starts from nothing. Not reported: this delete took it.
	if err := p.Client.CoordinationV1().Leases(namespace).Delete(ctx, LeaseName(app), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return res, fmt.Errorf("deleting Lease %s/%s: %w", namespace, LeaseName(app), err)
	}
	sort.Strings(res.Deleted)
	return res, nil
}

// Release gives an app's address and ports back to the pool and returns
// them (nil when the app had none, or when there is no pool).
func (a *Allocator) Release(ctx context.Context, key string) (*Allocation, error) {
	if a == nil {
		return nil, nil
	}
	for attempt := 0; attempt < maxAllocAttempts; attempt++ {
		cm, err := a.Client.CoreV1().ConfigMaps(a.Namespace).Get(ctx, a.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading load-balancer allocations %s/%s: %w", a.Namespace, a.Name, err)
		}
		allocs := map[string]Allocation{}
		if raw := cm.Data[AllocationsKey]; raw != "" {
			if err := json.Unmarshal([]byte(raw), &allocs); err != nil {
				return nil, fmt.Errorf("ConfigMap %s/%s key %s is not valid: %w", a.Namespace, a.Name, AllocationsKey, err)
			}
		}
		got, ok := allocs[key]
		if !ok {
			return nil, nil
		}
		delete(allocs, key)
		data, err := json.MarshalIndent(allocs, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encoding allocations: %w", err)
		}
		next := cm.DeepCopy()
		next.Data[AllocationsKey] = string(data)
		_, err = a.Client.CoreV1().ConfigMaps(a.Namespace).Update(ctx, next, metav1.UpdateOptions{FieldManager: contract.FieldManager})
		if apierrors.IsConflict(err) {
			continue // a promote allocated meanwhile; read again
		}
		if err != nil {
			return nil, fmt.Errorf("giving %s's address back in %s/%s: %w", key, a.Namespace, a.Name, err)
		}
		return &got, nil
	}
	return nil, errors.New("giving the address back: lost the race to other promotes too often; run the command again")
}
