// Package podstandin plays the Deployment controller and the kubelet on a
// real API server that runs neither (test/apiserver), for promote's tests:
// rollout/clustertest and the CLI's in cmd/tsys-ci/clustertest.
package podstandin

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/rollout"
)

// standIn plays the Deployment controller and the kubelet for one
// namespace, just enough for promote: for every Deployment it keeps
// spec.replicas pods of its template (pods of another template, such as
// another image, are deleted) and marks them Running and Ready, or
// crash-looping when the image name contains "crash". It is a stand-in:
// it proves the promote state machine against a real API server, not that
// pods start.
type standIn struct {
	cs kubernetes.Interface
	ns string
}

// Start runs the stand-in for namespace ns until the test ends.
func Start(t testing.TB, cs kubernetes.Interface, ns string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	s := &standIn{cs: cs, ns: ns}
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := s.watch(ctx); err != nil && ctx.Err() == nil {
				t.Logf("stand-in: %v; watching again", err)
			}
		}
	}()
}

func (s *standIn) watch(ctx context.Context) error {
	list, err := s.cs.AppsV1().Deployments(s.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range list.Items {
		if err := s.reconcile(ctx, &list.Items[i]); err != nil {
			return err
		}
	}
	w, err := s.cs.AppsV1().Deployments(s.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		return err
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		d, ok := ev.Object.(*appsv1.Deployment)
		if !ok {
			return fmt.Errorf("watch event %s: %v", ev.Type, ev.Object)
		}
		if ev.Type == watch.Deleted {
			zero := int32(0)
			d.Spec.Replicas = &zero
		}
		if err := s.reconcile(ctx, d); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (s *standIn) reconcile(ctx context.Context, d *appsv1.Deployment) error {
	pods := s.cs.CoreV1().Pods(s.ns)
	sel := labels.SelectorFromSet(d.Spec.Selector.MatchLabels).String()
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return err
	}
	image := d.Spec.Template.Annotations[rollout.AnnotationImage]
	// Pods are replaced when the template changes, as the Deployment
	// controller's pod-template-hash does: a new image, or the same image
	// with another env Secret.
	tmpl, err := json.Marshal(d.Spec.Template)
	if err != nil {
		return fmt.Errorf("stand-in hashing the pod template of %s: %w", d.Name, err)
	}
	prefix := fmt.Sprintf("%s-%x-", d.Name, sha256.Sum256(tmpl))
	prefix = prefix[:len(d.Name)+11] + "-" // name-<10 hex of the template>-
	have := map[string]bool{}
	for _, p := range list.Items {
		keep := strings.HasPrefix(p.Name, prefix) && len(have) < int(*d.Spec.Replicas)
		if !keep {
			if err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			continue
		}
		have[p.Name] = true
	}
	for i := 0; len(have) < int(*d.Spec.Replicas); i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		if have[name] {
			continue
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: d.Spec.Template.Labels, Annotations: d.Spec.Template.Annotations},
			Spec:       d.Spec.Template.Spec,
		}
		created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			have[name] = true
			continue
		}
		if err != nil {
			return fmt.Errorf("stand-in creating pod %s: %w", name, err)
		}
		created.Status = podStatus(image)
		if _, err := pods.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("stand-in marking pod %s: %w", name, err)
		}
		have[name] = true
	}
	return nil
}

func podStatus(image string) corev1.PodStatus {
	now := metav1.Now()
	st := corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &now}
	cs := corev1.ContainerStatus{Name: "app", Image: image, ImageID: image}
	if strings.Contains(image, "crash") {
		cs.RestartCount = 3
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s restarting failed container"}
		cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}
		st.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: now}}
	} else {
		cs.Ready, cs.Started = true, ptrTo(true)
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: now}
		st.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
	}
	st.ContainerStatuses = []corev1.ContainerStatus{cs}
	return st
}

func ptrTo[T any](v T) *T { return &v }
