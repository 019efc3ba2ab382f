package edge

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tsys-group/tsys-ci/internal/contract"
	corev1 "k8s.io/api/core/v1"
)

// edgeView is what the edge reads from a Service; changes to anything else
// (status conditions, resync updates) do not cause a sync. A color
// Service's view has its color; an app Service's has its annotations.
type edgeView struct {
	app, kind, annotation string
	color                 string // a color Service's color
	weights, selected     string // an app Service's weights annotation and selected color
	candidate             string // an app Service's tsys-ci.io/edge-candidate
	hasWeights            bool
	ports                 []string
	addrs                 []string
}

// colorOf names the color of a color Service (labelled as one, without
// the edge annotation), or "".
func colorOf(s *corev1.Service) string {
	c := s.Labels[contract.LabelColor]
	if Managed(s) || s.Labels[contract.LabelManagedBy] != contract.ManagedBy || s.Labels[contract.LabelAppName] == "" || !slices.Contains(Colors, c) {
		return ""
	}
	return c
}

func viewOf(s *corev1.Service) *edgeView {
	if s == nil {
		return nil
	}
	if c := colorOf(s); c != "" {
		v := &edgeView{app: AppOf(s), kind: string(s.Spec.Type), color: c}
		for _, p := range s.Spec.Ports {
			v.ports = append(v.ports, fmt.Sprintf("%s=%d/%s", p.Name, p.NodePort, p.Protocol))
		}
		slices.Sort(v.ports)
		return v
	}
	if !Managed(s) {
		return nil
	}
	v := &edgeView{app: AppOf(s), kind: string(s.Spec.Type), annotation: s.Annotations[contract.AnnotationEdge],
		selected: s.Spec.Selector[contract.LabelColor], candidate: s.Annotations[contract.AnnotationEdgeCandidate]}
	v.weights, v.hasWeights = s.Annotations[contract.AnnotationEdgeWeights]
	for _, p := range s.Spec.Ports {
		v.ports = append(v.ports, fmt.Sprintf("%s=%d/%s", p.Name, p.Port, p.Protocol))
	}
	for _, in := range s.Status.LoadBalancer.Ingress {
		v.addrs = append(v.addrs, in.IP+in.Hostname)
	}
	slices.Sort(v.ports)
	slices.Sort(v.addrs)
	return v
}

// Describe says in one line how a Service event changes the edge, or false
// when it does not (an unmanaged Service, a periodic resync, a change to a
// field the edge does not read).
func Describe(old, new *corev1.Service) (string, bool) {
	return describe(old, new, true)
}

// describe is Describe for an edge that serves by version or not: one that
// does not reads neither color Services nor the selected color nor the
// weights, so their changes are not its.
func describe(old, new *corev1.Service, byVersion bool) (string, bool) {
	a, b := viewOf(old), viewOf(new)
	if !byVersion {
		a, b = oneLevel(a), oneLevel(b)
	}
	switch {
	case a == nil && b == nil:
		return "", false
	case a == nil && b.color != "":
		return fmt.Sprintf("app %s: version %s reachable (Service %s/%s, %s, node ports [%s])", b.app, b.color, new.Namespace, new.Name, b.kind, strings.Join(b.ports, " ")), true
	case b == nil && a.color != "":
		return fmt.Sprintf("app %s: version %s no longer reachable (Service %s/%s gone or no longer labelled as a color Service)", a.app, a.color, old.Namespace, old.Name), true
	case a == nil:
		return fmt.Sprintf("app %s exposed (Service %s/%s, %s %s)", b.app, new.Namespace, new.Name, contract.AnnotationEdge, b.annotation), true
	case b == nil && new == nil:
		return fmt.Sprintf("app %s removed (Service %s/%s deleted)", a.app, old.Namespace, old.Name), true
	case b == nil:
		return fmt.Sprintf("app %s no longer exposed (Service %s/%s lost its label or %s annotation)", a.app, new.Namespace, new.Name, contract.AnnotationEdge), true
	}
	var what []string
	if a.app != b.app {
		what = append(what, fmt.Sprintf("app %s -> %s", a.app, b.app))
	}
	if a.color != b.color {
		what = append(what, fmt.Sprintf("color %q -> %q", a.color, b.color))
	}
	if a.kind != b.kind {
		what = append(what, fmt.Sprintf("type %s -> %s", a.kind, b.kind))
	}
	if a.annotation != b.annotation {
		what = append(what, fmt.Sprintf("%s %s -> %s", contract.AnnotationEdge, a.annotation, b.annotation))
	}
	if a.weights != b.weights || a.hasWeights != b.hasWeights {
		what = append(what, fmt.Sprintf("%s %s -> %s", contract.AnnotationEdgeWeights, orNone(a.weights, a.hasWeights), orNone(b.weights, b.hasWeights)))
	}
	if a.selected != b.selected {
		what = append(what, fmt.Sprintf("selected color %q -> %q", a.selected, b.selected))
	}
	if a.candidate != b.candidate {
		what = append(what, fmt.Sprintf("%s %q -> %q", contract.AnnotationEdgeCandidate, a.candidate, b.candidate))
	}
	if !slices.Equal(a.ports, b.ports) {
		what = append(what, fmt.Sprintf("ports [%s] -> [%s]", strings.Join(a.ports, " "), strings.Join(b.ports, " ")))
	}
	if !slices.Equal(a.addrs, b.addrs) {
		what = append(what, fmt.Sprintf("load-balancer address [%s] -> [%s]", strings.Join(a.addrs, " "), strings.Join(b.addrs, " ")))
	}
	if len(what) == 0 {
		return "", false
	}
	return fmt.Sprintf("app %s (Service %s/%s): %s", b.app, new.Namespace, new.Name, strings.Join(what, ", ")), true
}

// oneLevel is the part of a view an edge not serving by version reads: an
// app Service's annotation, ports and addresses; nothing of a color
// Service.
func oneLevel(v *edgeView) *edgeView {
	if v == nil || v.color != "" {
		return nil
	}
	c := *v
	c.weights, c.hasWeights, c.selected, c.candidate = "", false, "", ""
	return &c
}

func orNone(v string, ok bool) string {
	if !ok {
		return "(none)"
	}
	return v
}

// WeightsOnly reports whether the only change the edge sees in a Service
// event is the weights annotation: the sync it needs is a runtime weight
// change, which --watch applies at once instead of after the debounce
// (promote waits for it, and it cannot reload HAProxy).
func WeightsOnly(old, new *corev1.Service) bool {
	a, b := viewOf(old), viewOf(new)
	if a == nil || b == nil || a.color != "" || b.color != "" {
		return false
	}
	if a.weights == b.weights && a.hasWeights == b.hasWeights {
		return false
	}
	a2, b2 := *a, *b
	a2.weights, a2.hasWeights, b2.weights, b2.hasWeights = "", false, "", false
	return a2.app == b2.app && a2.kind == b2.kind && a2.annotation == b2.annotation && a2.selected == b2.selected && a2.candidate == b2.candidate &&
		slices.Equal(a2.ports, b2.ports) && slices.Equal(a2.addrs, b2.addrs)
}

// DescribeNode says in one line how a Node event changes the edge, or
// false when it does not: only whether a node gets servers (EdgeNodes)
// and its address matter, not its status, heartbeats or transient taints.
func DescribeNode(old, new *corev1.Node) (string, bool) {
	view := func(n *corev1.Node) string {
		if n == nil {
			return ""
		}
		e := EdgeNodes([]corev1.Node{*n})
		if len(e) == 0 {
			return ""
		}
		return e[0].Addr.String()
	}
	a, b := view(old), view(new)
	switch {
	case a == b:
		return "", false
	case a == "":
		return fmt.Sprintf("node %s gets servers at %s", new.Name, b), true
	case b == "" && new == nil:
		return fmt.Sprintf("node %s removed", old.Name), true
	case b == "":
		return fmt.Sprintf("node %s no longer gets servers (tainted NoSchedule/NoExecute, being deleted, or without an InternalIP)", new.Name), true
	}
	return fmt.Sprintf("node %s: address %s -> %s", new.Name, a, b), true
}
