package serve

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/rollout"
)

// ReplicaHolderPrefix starts the promote-lease holder names of serve's
// replicas: "serve/<pod name>".
const ReplicaHolderPrefix = "serve/"

// ReplicaGone is the rollout.HolderGone of serve's replicas: a promote
// lease held by another replica ("serve/<pod>", its pod in namespace) is
// taken at once when the kubelet reports that the process which took it
// has ended: the pod's container is not running, or runs a process
// started after the lease was taken (a restart). Without it a replica
// killed mid-deploy (SIGKILL, an OOM kill, a crash) blocks the app until
// its lease expires and is watched for one more duration.
//
// A pod that is gone proves nothing: a force-deleted pod's process may
// still run on a node the API server cannot reach, so that case waits
// for the lease as before. Holders that are not serve replicas (a CLI
// promote) are never judged.
func ReplicaGone(cs kubernetes.Interface, namespace, container string) rollout.HolderGone {
	return func(ctx context.Context, holder string, acquired time.Time) (bool, string, error) {
		name, ok := strings.CutPrefix(holder, ReplicaHolderPrefix)
		name, _, _ = strings.Cut(name, "/") // "serve/<pod>/abort" is an abort's
		if !ok || name == "" {
			return false, "", nil
		}
		pod, err := cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, "", nil
		}
		if err != nil {
			return false, "", fmt.Errorf("reading pod %s/%s: %w", namespace, name, err)
		}
		gone, why := processEnded(pod, container, acquired)
		return gone, why, nil
	}
}

// processEnded judges from the kubelet's container status whether the
// process of container that took a lease at acquired has ended. The
// container's start time has whole seconds only, so a restart within the
// same second as the lease's taking is not told apart: that case says no.
func processEnded(pod *corev1.Pod, container string, acquired time.Time) (bool, string) {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != container {
			continue
		}
		switch {
		case cs.State.Running == nil:
			reason := "not started"
			if w := cs.State.Waiting; w != nil && w.Reason != "" {
				reason = w.Reason
			}
			if t := cs.State.Terminated; t != nil {
				reason = "terminated: " + t.Reason
			}
			return true, fmt.Sprintf("container %s of pod %s is not running (%s)", container, pod.Name, reason)
		case !acquired.IsZero() && cs.State.Running.StartedAt.After(acquired):
			return true, fmt.Sprintf("container %s of pod %s restarted at %s, after the lease was taken at %s",
				container, pod.Name, cs.State.Running.StartedAt.UTC().Format(time.RFC3339), acquired.UTC().Format(time.RFC3339Nano))
		}
		return false, ""
	}
	return false, ""
}
