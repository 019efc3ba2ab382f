package serve

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// handoverMargin is kept between the drain's end and the moment the
// kubelet kills the replica: canceling the running deploys and releasing
// their promote leases (one API write each) must fit in it.
const handoverMargin = 1500 * time.Millisecond

// podReadTimeout bounds the read of this replica's pod at shutdown; a
// force-deleted pod's container has 2 s in all.
const podReadTimeout = 700 * time.Millisecond

// stopBy says by when the kubelet will kill this replica, from its pod
// (LabelPod): the deletion deadline of a pod being deleted; now for a pod
// already gone, since a force-deleted pod's container gets SIGKILL 2 s
// after SIGTERM; ok false when the pod is not being deleted (a container
// restart, a signal from elsewhere), so ShutdownTimeout alone applies.
//
// Draining a deploy past that moment gains nothing: SIGKILL leaves its
// promote lease held, and the next leader must wait for it to expire and
// be confirmed expired (twice the lease duration) before resuming the
// deploy. Canceled in time, the deploy's lease is released and the next
// leader resumes it at once.
func (le *LeaderElection) stopBy(ctx context.Context) (time.Time, bool, error) {
	ns, name, ok := strings.Cut(le.LabelPod, "/")
	if !ok || ns == "" || name == "" {
		return time.Time{}, false, fmt.Errorf("leader pod %q is not NAMESPACE/NAME", le.LabelPod)
	}
	ctx, cancel := context.WithTimeout(ctx, podReadTimeout)
	defer cancel()
	pod, err := le.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return time.Now(), true, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("reading pod %s for its deletion deadline (serve's ServiceAccount needs get on pods in its namespace): %w", le.LabelPod, err)
	case pod.DeletionTimestamp != nil:
		return pod.DeletionTimestamp.Time, true, nil
	}
	return time.Time{}, false, nil
}

// drainDeadline is when shutdown stops waiting for deploys: after
// ShutdownTimeout, or handoverMargin before the kubelet's kill if that is
// sooner. why says which, for the log.
func drainDeadline(start time.Time, timeout time.Duration, killAt time.Time, known bool) (deadline time.Time, why string) {
	deadline, why = start.Add(timeout), "shutdown timeout"
	if known && killAt.Add(-handoverMargin).Before(deadline) {
		deadline, why = killAt.Add(-handoverMargin), "the pod's deletion deadline"
	}
	return deadline, why
}
