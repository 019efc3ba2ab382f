package platform

import (
	"context"
	"fmt"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/releaseutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// NotReadyReasons says why the workloads (Deployments, StatefulSets,
// DaemonSets) of a release manifest are not ready: one line per pod that is
// not ready, with its containers' waiting or termination reasons and
// messages (ImagePullBackOff, CrashLoopBackOff, a failing readiness probe),
// or why it is not scheduled. Helm's own wait error only says its deadline
// passed; this is read before a rollback removes the evidence.
func NotReadyReasons(ctx context.Context, cs kubernetes.Interface, namespace, manifest string) ([]string, error) {
	var out []string
	for _, doc := range releaseutil.SplitManifests(manifest) {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			continue
		}
		ns := head.Metadata.Namespace
		if ns == "" {
			ns = namespace
		}
		var sel *metav1.LabelSelector
		var err error
		switch head.Kind {
		case "Deployment":
			d, e := cs.AppsV1().Deployments(ns).Get(ctx, head.Metadata.Name, metav1.GetOptions{})
			if e == nil {
				sel = d.Spec.Selector
			}
			err = e
		case "StatefulSet":
			s, e := cs.AppsV1().StatefulSets(ns).Get(ctx, head.Metadata.Name, metav1.GetOptions{})
			if e == nil {
				sel = s.Spec.Selector
			}
			err = e
		case "DaemonSet":
			d, e := cs.AppsV1().DaemonSets(ns).Get(ctx, head.Metadata.Name, metav1.GetOptions{})
			if e == nil {
				sel = d.Spec.Selector
			}
			err = e
		default:
			continue
		}
		what := head.Kind + " " + head.Metadata.Name
		if err != nil {
			return out, fmt.Errorf("reading %s in %s: %w", what, ns, err)
		}
		selector, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return out, fmt.Errorf("the selector of %s: %w", what, err)
		}
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
		if err != nil {
			return out, fmt.Errorf("listing the pods of %s in %s: %w", what, ns, err)
		}
		// Pods with the same trouble (every replica failing to pull one
		// image) share one line.
		var troubles []string
		byTrouble := map[string][]string{}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp != nil || podReady(p) {
				continue
			}
			trouble := podTrouble(p)
			if byTrouble[trouble] == nil {
				troubles = append(troubles, trouble)
			}
			byTrouble[trouble] = append(byTrouble[trouble], p.Name+" on "+nodeOrNone(p))
		}
		for _, trouble := range troubles {
			pods := byTrouble[trouble]
			noun := "pod"
			if len(pods) > 1 {
				noun = "pods"
			}
			out = append(out, fmt.Sprintf("%s: %s %s: %s", what, noun, strings.Join(pods, ", "), trouble))
		}
	}
	return out, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func nodeOrNone(p *corev1.Pod) string {
	if p.Spec.NodeName == "" {
		return "no node"
	}
	return p.Spec.NodeName
}

// podTrouble is the most telling reason a pod is not ready.
func podTrouble(p *corev1.Pod) string {
	var parts []string
	for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		switch {
		case s.State.Waiting != nil && s.State.Waiting.Reason != "":
			parts = append(parts, fmt.Sprintf("container %s %s: %s", s.Name, s.State.Waiting.Reason, cut(s.State.Waiting.Message, 240)))
		case s.State.Terminated != nil:
			parts = append(parts, fmt.Sprintf("container %s terminated (%s, exit %d): %s", s.Name, s.State.Terminated.Reason, s.State.Terminated.ExitCode, cut(s.State.Terminated.Message, 240)))
		case s.State.Running != nil && !s.Ready:
			parts = append(parts, fmt.Sprintf("container %s running but not ready (readiness probe failing; %d restarts)", s.Name, s.RestartCount))
		}
	}
	if len(parts) > 0 {
		return strings.Join(parts, "; ")
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue {
			return fmt.Sprintf("not scheduled (%s): %s", c.Reason, cut(c.Message, 240))
		}
	}
	return fmt.Sprintf("%s, not ready", p.Status.Phase)
}

func cut(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

// explainNotReady adds NotReadyReasons to a failed step's error, when Helm's
// configuration can reach a cluster (not in the in-memory tests).
func explainNotReady(cfg *action.Configuration, opts *HelmOptions, namespace, manifest string) []string {
	if cfg.RESTClientGetter == nil || manifest == "" {
		return nil
	}
	rc, err := cfg.RESTClientGetter.ToRESTConfig()
	if err != nil {
		return []string{"(could not read why: " + err.Error() + ")"}
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return []string{"(could not read why: " + err.Error() + ")"}
	}
	ctx, cancel := context.WithTimeout(opts.ctx(), 10*time.Second)
	defer cancel()
	reasons, err := NotReadyReasons(ctx, cs, namespace, manifest)
	if err != nil {
		reasons = append(reasons, "(could not read all of why: "+err.Error()+")")
	}
	return reasons
}
