package serve

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestProcessEnded(t *testing.T) {
	acquired := time.Date(2026, 11, 25, 10, 0, 0, 500e6, time.UTC)
	running := func(started time.Time) corev1.ContainerState {
		return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}}
	}
	cases := []struct {
		name  string
		state corev1.ContainerState
		other bool // the status is another container's
		want  bool
		why   string
	}{
		{"crash back-off", corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}, false, true, "not running (CrashLoopBackOff)"},
		{"terminated", corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled"}}, false, true, "not running (terminated: OOMKilled)"},
		{"restarted after the lease", running(acquired.Add(3 * time.Second)), false, true, "restarted at 2026-11-25T10:00:03Z"},
		{"running since before the lease", running(acquired.Add(-time.Hour)), false, false, ""},
		// Start times have whole seconds: the same second is not after.
		{"restarted in the lease's second", running(acquired.Truncate(time.Second)), false, false, ""},
		{"no status of that container", corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}, true, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := "serve"
			if c.other {
				name = "sidecar"
			}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "serve-a"},
				Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: name, State: c.state}}}}
			got, why := processEnded(pod, "serve", acquired)
			if got != c.want || !strings.Contains(why, c.why) {
				t.Errorf("processEnded = %v %q, want %v %q", got, why, c.want, c.why)
			}
		})
	}
}
