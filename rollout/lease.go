package rollout

import (
	"context"
	"fmt"
	"time"

	"github.com/tsys-group/tsys-ci/internal/contract"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// DefaultLeaseDuration is how long a promote's lock outlives the last
// renewal: a process that dies frees the app after this long.
const DefaultLeaseDuration = 30 * time.Second

// LeaseName is the coordination.k8s.io Lease that makes promotes of one
// app take turns.
func LeaseName(app string) string { return "tsys-ci-promote-" + app }

// HeldError says who holds an app's lock and until when.
type HeldError struct {
	App, Holder string
	Renewed     time.Time
	Expires     time.Time
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("another promote of %s is running (%s, last renewed %s, expires %s); wait for it to finish, or run 'tsys-ci abort %s' to roll it back",
		e.App, e.Holder, e.Renewed.UTC().Format(time.RFC3339), e.Expires.UTC().Format(time.RFC3339), e.App)
}

// Lock is a held Lease. Renew it more often than its duration; Release it
// when done so the next promote need not wait for it to expire.
type Lock struct {
	cs       kubernetes.Interface
	clock    Clock
	app      string
	holder   string
	duration time.Duration
	lease    *coordinationv1.Lease
}

// AcquireLock takes the app's Lease for holder, or returns a *HeldError when
// another holder's lease has not expired. Two callers racing for a free or
// expired lease cannot both win: creation and update are conditional on the
// object's absence or resourceVersion.
//
// A lease another holder let expire is taken over only after watching it
// stay unchanged for one lease duration: its renew time was written by
// another machine's clock, and a clock running ahead here must not let two
// promotes interleave. logf (may be nil) is told about that wait.
func AcquireLock(ctx context.Context, cs kubernetes.Interface, clock Clock, namespace, app, holder string, duration time.Duration, logf func(string, ...any)) (*Lock, error) {
	return AcquireLockUnlessGone(ctx, cs, clock, namespace, app, holder, duration, nil, logf)
}

// HolderGone says whether the process named holder, which took a lease at
// acquired, has certainly ended, and why (for the log). It must answer
// false when unsure: a process that only went quiet (its node cut off)
// may still be changing the app. An error is logged and counts as false.
type HolderGone func(ctx context.Context, holder string, acquired time.Time) (bool, string, error)

// AcquireLockUnlessGone is AcquireLock that also takes another holder's
// lease at once, expired or not, when gone (may be nil) proves that
// holder's process ended: a serve replica knows its fellow replica's
// container from the kubelet's report of it.
func AcquireLockUnlessGone(ctx context.Context, cs kubernetes.Interface, clock Clock, namespace, app, holder string, duration time.Duration, gone HolderGone, logf func(string, ...any)) (*Lock, error) {
	l := &Lock{cs: cs, clock: clock, app: app, holder: holder, duration: duration}
	leases := cs.CoordinationV1().Leases(namespace)
	now := metav1.NewMicroTime(clock.Now())
	secs := int32(duration.Seconds())
	cur, err := leases.Get(ctx, LeaseName(app), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		fresh := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: LeaseName(app), Namespace: namespace, Labels: AppLabels(app)},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
		}
		created, err := leases.Create(ctx, fresh, metav1.CreateOptions{FieldManager: contract.FieldManager})
		if apierrors.IsAlreadyExists(err) {
			return nil, l.heldNow(ctx, namespace)
		}
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("namespace %s does not exist: create it ('kubectl create namespace %s'), or set namespace: in tsys-ci.yaml", namespace, namespace)
		}
		if err != nil {
			return nil, fmt.Errorf("creating lease %s/%s: %w", namespace, LeaseName(app), err)
		}
		l.lease = created
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading lease %s/%s: %w", namespace, LeaseName(app), err)
	}
	other := cur.Spec.HolderIdentity
	byOther := other != nil && *other != "" && *other != holder
	switch held := l.heldBy(cur); {
	case byOther && holderGone(ctx, gone, cur, logf):
		// Taken over below, conditional on the lease being unchanged.
	case held != nil:
		return nil, held
	case byOther:
		if cur, err = l.confirmExpired(ctx, namespace, cur, logf); err != nil {
			return nil, err
		}
	}
	next := cur.DeepCopy()
	next.Spec.HolderIdentity, next.Spec.LeaseDurationSeconds = &holder, &secs
	next.Spec.AcquireTime, next.Spec.RenewTime = &now, &now
	if next.Spec.LeaseTransitions == nil {
		next.Spec.LeaseTransitions = ptr(int32(0))
	}
	*next.Spec.LeaseTransitions++
	updated, err := leases.Update(ctx, next, metav1.UpdateOptions{FieldManager: contract.FieldManager})
	if apierrors.IsConflict(err) {
		return nil, l.heldNow(ctx, namespace)
	}
	if err != nil {
		return nil, fmt.Errorf("taking lease %s/%s: %w", namespace, LeaseName(app), err)
	}
	l.lease = updated
	return l, nil
}

// holderGone asks gone (nil: no) about lease's holder and logs the answer.
func holderGone(ctx context.Context, gone HolderGone, lease *coordinationv1.Lease, logf func(string, ...any)) bool {
	if gone == nil {
		return false
	}
	var acquired time.Time
	if lease.Spec.AcquireTime != nil {
		acquired = lease.Spec.AcquireTime.Time
	}
	ok, why, err := gone(ctx, *lease.Spec.HolderIdentity, acquired)
	if logf != nil {
		switch {
		case err != nil:
			logf("could not tell whether %s, holder of lease %s/%s, has ended (%v); waiting for the lease instead", *lease.Spec.HolderIdentity, lease.Namespace, lease.Name, err)
		case ok:
			logf("%s, holder of lease %s/%s, has ended (%s); taking the lease over now", *lease.Spec.HolderIdentity, lease.Namespace, lease.Name, why)
		}
	}
	return err == nil && ok
}

// heldBy returns a *HeldError if lease is held by someone else and not expired.
func (l *Lock) heldBy(lease *coordinationv1.Lease) *HeldError {
	s := lease.Spec
	if s.HolderIdentity == nil || *s.HolderIdentity == "" || *s.HolderIdentity == l.holder || s.RenewTime == nil {
		return nil
	}
	dur := l.duration
	if s.LeaseDurationSeconds != nil {
		dur = time.Duration(*s.LeaseDurationSeconds) * time.Second
	}
	expires := s.RenewTime.Add(dur)
	if !l.clock.Now().Before(expires) {
		return nil
	}
	return &HeldError{App: l.app, Holder: *s.HolderIdentity, Renewed: s.RenewTime.Time, Expires: expires}
}

// confirmExpired waits one lease duration and succeeds only if nobody
// renewed the lease meanwhile.
func (l *Lock) confirmExpired(ctx context.Context, namespace string, cur *coordinationv1.Lease, logf func(string, ...any)) (*coordinationv1.Lease, error) {
	if logf != nil {
		logf("lease %s/%s of %s looks expired; watching it for %s before taking it over", namespace, cur.Name, *cur.Spec.HolderIdentity, l.duration)
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.clock.After(l.duration):
	}
	again, err := l.cs.CoordinationV1().Leases(namespace).Get(ctx, cur.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading lease %s/%s again: %w", namespace, cur.Name, err)
	}
	if again.ResourceVersion == cur.ResourceVersion {
		return again, nil
	}
	if h := again.Spec.HolderIdentity; h != nil && *h != "" && *h != l.holder && again.Spec.RenewTime != nil {
		return nil, &HeldError{App: l.app, Holder: *h, Renewed: again.Spec.RenewTime.Time, Expires: again.Spec.RenewTime.Add(l.duration)}
	}
	return again, nil
}

// heldNow explains a lost race: somebody else wrote the lease first.
func (l *Lock) heldNow(ctx context.Context, namespace string) error {
	cur, err := l.cs.CoordinationV1().Leases(namespace).Get(ctx, LeaseName(l.app), metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("lease %s/%s was taken by another promote at the same moment; reading it: %w", namespace, LeaseName(l.app), err)
	}
	if held := l.heldBy(cur); held != nil {
		return held
	}
	return fmt.Errorf("lease %s/%s changed while taking it; run the command again", namespace, LeaseName(l.app))
}

// Holder is this lock's identity.
func (l *Lock) Holder() string { return l.holder }

// Renew extends the lock. An error means the lock may be lost: stop
// changing the app.
func (l *Lock) Renew(ctx context.Context) error {
	next := l.lease.DeepCopy()
	now := metav1.NewMicroTime(l.clock.Now())
	next.Spec.RenewTime = &now
	updated, err := l.cs.CoordinationV1().Leases(next.Namespace).Update(ctx, next, metav1.UpdateOptions{FieldManager: contract.FieldManager})
	if err != nil {
		return fmt.Errorf("renewing lease %s/%s: %w (another promote may have taken over; stopping)", next.Namespace, next.Name, err)
	}
	l.lease = updated
	return nil
}

// Release frees the lock at once. Releasing a lock someone else has taken
// since is an error and changes nothing.
func (l *Lock) Release(ctx context.Context) error {
	next := l.lease.DeepCopy()
	next.Spec.HolderIdentity = nil
	_, err := l.cs.CoordinationV1().Leases(next.Namespace).Update(ctx, next, metav1.UpdateOptions{FieldManager: contract.FieldManager})
	if err != nil {
		return fmt.Errorf("releasing lease %s/%s: %w", next.Namespace, next.Name, err)
	}
	return nil
}

// KeepAlive renews the lock every third of its duration until ctx ends.
// If a renewal fails it calls lost once and stops; the caller cancels its
// work then, since another process may now own the app.
func (l *Lock) KeepAlive(ctx context.Context, lost func(error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.clock.After(l.duration / 3):
		}
		if err := l.Renew(ctx); err != nil {
			if ctx.Err() == nil {
				lost(err)
			}
			return
		}
	}
}
