package rollout

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// fatalWaiting are container waiting reasons that do not fix themselves:
// promote stops waiting and rolls back on them.
var fatalWaiting = map[string]string{
	"CrashLoopBackOff":           "is crash-looping",
	"ImagePullBackOff":           "cannot pull its image",
	"ErrImagePull":               "cannot pull its image",
	"InvalidImageName":           "has an invalid image name",
	"CreateContainerConfigError": "cannot be configured (a missing Secret or key?)",
	"CreateContainerError":       "cannot be created",
}

// PodVerdict sums up the pods of one version at one moment.
type PodVerdict struct {
	Want  int32
	Ready int32
	// Failed holds problems that will not go away by waiting; non-empty
	// means roll back.
	Failed []string
}

// Done reports whether enough pods are ready and none has failed.
func (v PodVerdict) Done() bool { return len(v.Failed) == 0 && v.Ready >= v.Want }

// String reads well in a Jenkins console.
func (v PodVerdict) String() string {
	s := fmt.Sprintf("%d/%d pods ready", v.Ready, v.Want)
	for _, f := range v.Failed {
		s += "; " + f
	}
	return s
}

// EvaluatePods judges a snapshot of a version's pods: how many are ready
// (and not being deleted), and which show a failure that waiting will not
// fix: crash loops, image pull errors, missing configuration, failed pods,
// or more container restarts than maxRestarts.
func EvaluatePods(pods []corev1.Pod, want int32, maxRestarts int32) PodVerdict {
	v := PodVerdict{Want: want}
	sorted := append([]corev1.Pod(nil), pods...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, pod := range sorted {
		if pod.DeletionTimestamp != nil {
			continue
		}
		if pod.Status.Phase == corev1.PodFailed {
			v.Failed = append(v.Failed, fmt.Sprintf("pod %s failed: %s %s", pod.Name, pod.Status.Reason, pod.Status.Message))
			continue
		}
		if podReady(pod) {
			v.Ready++
		}
		for _, cs := range pod.Status.ContainerStatuses {
			v.Failed = append(v.Failed, containerProblems(pod.Name, cs, maxRestarts)...)
		}
	}
	return v
}

func podReady(pod corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func containerProblems(pod string, cs corev1.ContainerStatus, maxRestarts int32) []string {
	var out []string
	if w := cs.State.Waiting; w != nil {
		if what, ok := fatalWaiting[w.Reason]; ok {
			out = append(out, fmt.Sprintf("pod %s container %s %s (%s: %s)", pod, cs.Name, what, w.Reason, w.Message))
		}
	}
	if cs.RestartCount > maxRestarts {
		msg := fmt.Sprintf("pod %s container %s restarted %d times", pod, cs.Name, cs.RestartCount)
		if t := cs.LastTerminationState.Terminated; t != nil {
			msg += fmt.Sprintf(" (last exit %d, %s)", t.ExitCode, t.Reason)
		}
		out = append(out, msg)
	}
	return out
}
