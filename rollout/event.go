package rollout

import (
	"context"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons of the Events promote writes on the app's Service when it rolls
// a version back on its own.
const (
	// EventAnalysisFailed: the edge's counters of the version's real
	// requests breached the spec's analysis.
	EventAnalysisFailed = "AnalysisFailed"
	// EventVersionFailed: probes or pods failed the version.
	EventVersionFailed = "VersionFailed"
)

// maxEventMessage is the longest Event message written, in bytes (the
// limit events.k8s.io puts on a note).
const maxEventMessage = 1024

// warnEvent records why a version was rolled back as a Warning Event on
// the app's Service, so 'kubectl describe service APP' and 'kubectl get
// events' show it. A failure to write it is logged, not returned: the
// rollback it reports has happened.
func (r *run) warnEvent(ctx context.Context, reason, msg string) {
	for len(msg) > maxEventMessage {
		_, size := utf8.DecodeLastRuneInString(msg)
		msg = msg[:len(msg)-size]
	}
	now := metav1.NewTime(r.p.Clock.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: r.spec.Name + ".tsys-ci-",
			Namespace:    r.spec.Namespace,
			Labels:       AppLabels(r.spec.Name),
		},
		InvolvedObject:      corev1.ObjectReference{APIVersion: "v1", Kind: "Service", Namespace: r.spec.Namespace, Name: r.spec.Name},
		Reason:              reason,
		Message:             msg,
		Type:                corev1.EventTypeWarning,
		Source:              corev1.EventSource{Component: "tsys-ci-promote", Host: r.p.Holder},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		Action:              "Rollback",
		ReportingController: "tsys-ci.io/promote",
		ReportingInstance:   r.p.Holder,
	}
	if _, err := r.p.Client.CoreV1().Events(r.spec.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		r.logf("warning: recording the rollback as an Event on Service %s/%s: %v", r.spec.Namespace, r.spec.Name, err)
	}
}
