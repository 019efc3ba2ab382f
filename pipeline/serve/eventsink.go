package serve

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/tsys-group/tsys-ci/internal/contract"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// EventComponent is the source of the Events serve writes.
const EventComponent = "tsys-ci-serve"

// KubeEventSink records each finished deploy as a Kubernetes Event on the
// app's Service (the object named after the app in its namespace), so
// `kubectl describe service APP` and `kubectl get events` show who
// deployed what and how it ended.
type KubeEventSink struct {
	Client kubernetes.Interface
	// Instance is this replica (the pod name).
	Instance string
}

// DeployFinished creates the Event.
func (k *KubeEventSink) DeployFinished(ctx context.Context, rec DeployRecord) error {
	reason, typ := "DeploySucceeded", corev1.EventTypeNormal
	switch rec.Result {
	case ResultRolledBack:
		reason, typ = "DeployRolledBack", corev1.EventTypeWarning
	case ResultFailed:
		reason, typ = "DeployFailed", corev1.EventTypeWarning
	case ResultCanceled:
		reason, typ = "DeployCanceled", corev1.EventTypeWarning
	case ResultAborted:
		reason, typ = "DeployAborted", corev1.EventTypeWarning
	}
	msg := eventMessage(rec)
	now := metav1.NewTime(rec.Finished)
	if rec.Finished.IsZero() {
		now = metav1.NewTime(time.Now())
	}
	action := "Promote"
	switch rec.Kind {
	case DeployRollback:
		action = "Rollback"
	case DeployAbort:
		action = "Abort"
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: rec.App + ".tsys-ci-",
			Namespace:    rec.Namespace,
			Labels:       map[string]string{contract.LabelManagedBy: contract.ManagedBy, contract.LabelAppName: rec.App},
			Annotations:  map[string]string{"tsys-ci.io/deploy-id": rec.ID},
		},
		InvolvedObject:      corev1.ObjectReference{APIVersion: "v1", Kind: "Service", Namespace: rec.Namespace, Name: rec.App},
		Reason:              reason,
		Message:             msg,
		Type:                typ,
		Source:              corev1.EventSource{Component: EventComponent, Host: k.Instance},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		Action:              action,
		ReportingController: "tsys-ci.io/serve",
		ReportingInstance:   k.Instance,
	}
	if _, err := k.Client.CoreV1().Events(rec.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the deploy event for %s/%s: %w", rec.Namespace, rec.App, err)
	}
	return nil
}

// StageEvent writes an Event about a staged pipeline (a gate waiting or
// passed, an approval, a refusal) on the app's Service in the stage's
// namespace, as DeployFinished does for deploys.
func (k *KubeEventSink) StageEvent(ctx context.Context, namespace, app, eventType, reason, message string) error {
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: app + ".tsys-ci-",
			Namespace:    namespace,
			Labels:       map[string]string{contract.LabelManagedBy: contract.ManagedBy, contract.LabelAppName: app},
		},
		InvolvedObject:      corev1.ObjectReference{APIVersion: "v1", Kind: "Service", Namespace: namespace, Name: app},
		Reason:              reason,
		Message:             cutMessage(message),
		Type:                eventType,
		Source:              corev1.EventSource{Component: EventComponent, Host: k.Instance},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		Action:              "Stage",
		ReportingController: "tsys-ci.io/serve",
		ReportingInstance:   k.Instance,
	}
	if _, err := k.Client.CoreV1().Events(namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the stage event %s for %s/%s: %w", reason, namespace, app, err)
	}
	return nil
}

func metaFor(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}

// maxEventMessage is the longest Event message serve writes, in bytes
// (the limit events.k8s.io puts on a note).
const maxEventMessage = 1024

// eventMessage says what was deployed, by whom, why and how it ended, cut
// to maxEventMessage bytes at a rune boundary: a cut inside a UTF-8
// sequence (an error quoting a non-ASCII name) leaves invalid UTF-8, which
// the JSON encoding sends as U+FFFD, garbled and longer than the limit.
func eventMessage(rec DeployRecord) string {
	what := rec.Kind
	if rec.Image != "" {
		what += " " + rec.Image
	}
	msg := fmt.Sprintf("%s by %s (%s", what, rec.By, rec.Trigger)
	if rec.Policy != "" {
		msg += ", policy " + rec.Policy
	}
	if rec.Stage != "" {
		msg += ", stage " + rec.Stage
	}
	if rec.Tag != "" {
		msg += ", tag " + rec.Tag
	}
	msg += fmt.Sprintf("): %s after %.0fs", rec.Result, rec.Seconds)
	if rec.Error != "" {
		msg += ": " + rec.Error
	}
	return cutMessage(msg)
}

// cutMessage cuts msg to maxEventMessage bytes (see eventMessage).
func cutMessage(msg string) string {
	if len(msg) <= maxEventMessage {
		return msg
	}
	cut := maxEventMessage - len("...")
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "..."
}
