package rollout

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func pod(name string, ready bool, mod func(*corev1.Pod)) corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.PodStatus{
			Phase:             corev1.PodRunning,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: status}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: ready}},
		},
	}
	if mod != nil {
		mod(&p)
	}
	return p
}

func waiting(reason string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses[0].State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: "details"}
	}
}

func TestEvaluatePods(t *testing.T) {
	now := metav1.Now()
	cases := []struct {
		name   string
		pods   []corev1.Pod
		ready  int32
		done   bool
		failed []string
	}{
		{"all ready", []corev1.Pod{pod("a", true, nil), pod("b", true, nil)}, 2, true, nil},
		{"one starting", []corev1.Pod{pod("a", true, nil), pod("b", false, waiting("ContainerCreating"))}, 1, false, nil},
		{"terminating pod not counted", []corev1.Pod{pod("a", true, nil), pod("b", true, func(p *corev1.Pod) { p.DeletionTimestamp = &now })}, 1, false, nil},
		{"crash loop", []corev1.Pod{pod("a", true, nil), pod("b", false, func(p *corev1.Pod) {
			waiting("CrashLoopBackOff")(p)
			p.Status.ContainerStatuses[0].RestartCount = 4
			p.Status.ContainerStatuses[0].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}
		})}, 1, false, []string{"pod b container app is crash-looping", "pod b container app restarted 4 times (last exit 137, OOMKilled)"}},
		{"image pull", []corev1.Pod{pod("a", false, waiting("ImagePullBackOff"))}, 0, false, []string{"pod a container app cannot pull its image"}},
		{"missing secret", []corev1.Pod{pod("a", false, waiting("CreateContainerConfigError"))}, 0, false, []string{"a missing Secret or key?"}},
		{"restart while ready", []corev1.Pod{pod("a", true, func(p *corev1.Pod) { p.Status.ContainerStatuses[0].RestartCount = 1 }), pod("b", true, nil)}, 2, false, []string{"pod a container app restarted 1 times"}},
		{"failed pod", []corev1.Pod{pod("a", false, func(p *corev1.Pod) { p.Status.Phase, p.Status.Reason = corev1.PodFailed, "Evicted" })}, 0, false, []string{"pod a failed: Evicted"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := EvaluatePods(c.pods, 2, 0)
			if v.Ready != c.ready || v.Done() != c.done || len(v.Failed) != len(c.failed) {
				t.Fatalf("got %s (done %v), want %d ready, done %v, %d failures", v, v.Done(), c.ready, c.done, len(c.failed))
			}
			for i, f := range c.failed {
				if !strings.Contains(v.Failed[i], f) {
					t.Errorf("failure %d %q does not say %q", i, v.Failed[i], f)
				}
			}
		})
	}
}
