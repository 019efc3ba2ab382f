package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// PushMark is a Harbor push serve accepted for an app: its place in
// Harbor's order (occur_at, then the tag) and what it was.
type PushMark struct {
	OccurAt int64  `json:"occurAt"`
	Tag     string `json:"tag"`
	Digest  string `json:"digest"`
	Policy  string `json:"policy"`
	// Key is the delivery's replay key (HarborEvent.ReplayKey).
	Key string `json:"key"`
}

// Before reports whether m was pushed before o: an earlier occur_at.
// Pushes in the same second cannot be ordered by Harbor's clock; they are
// not refused (the later delivery deploys last).
func (m PushMark) Before(o PushMark) bool { return m.OccurAt < o.OccurAt }

// PushOrder keeps, per app, the newest Harbor push serve accepted, where
// every replica and every later leader reads it: a delivery older than it
// (Harbor retries an older event after a newer one was taken) or the same
// delivery again (a new leader's replay cache is empty) is refused.
type PushOrder interface {
	// Newest is the newest push recorded for namespace/app, or nil.
	Newest(ctx context.Context, namespace, app string) (*PushMark, error)
	// Record keeps m as the newest push of namespace/app unless a newer
	// one is recorded.
	Record(ctx context.Context, namespace, app string, m PushMark) error
}

// MemoryPushOrder is a PushOrder in this process only (serve without a
// cluster, tests).
type MemoryPushOrder struct {
	mu     sync.Mutex
	newest map[string]PushMark
}

// Newest implements PushOrder.
func (o *MemoryPushOrder) Newest(_ context.Context, namespace, app string) (*PushMark, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if m, ok := o.newest[namespace+"/"+app]; ok {
		return &m, nil
	}
	return nil, nil
}

// Record implements PushOrder.
func (o *MemoryPushOrder) Record(_ context.Context, namespace, app string, m PushMark) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.newest == nil {
		o.newest = map[string]PushMark{}
	}
	if cur, ok := o.newest[namespace+"/"+app]; !ok || !m.Before(cur) {
		o.newest[namespace+"/"+app] = m
	}
	return nil
}

// KubePushOrder keeps the newest push of each app in a ConfigMap beside
// the app's rollout state, PushOrderName(app) in the app's namespace. Not
// in the rollout state ConfigMap itself: promote writes that one
// conditionally, and a webhook accepted while a promote runs would make its
// next write fail.
type KubePushOrder struct {
	Client kubernetes.Interface
}

// PushOrderName is the ConfigMap KubePushOrder keeps an app's newest push
// in. The dot keeps it apart from every rollout state name (tsys-ci-<app>,
// an app name being a DNS label).
func PushOrderName(app string) string { return "tsys-ci-serve-push." + app }

const pushOrderKey = "newest.json"

// Newest implements PushOrder.
func (o *KubePushOrder) Newest(ctx context.Context, namespace, app string) (*PushMark, error) {
	cm, err := o.Client.CoreV1().ConfigMaps(namespace).Get(ctx, PushOrderName(app), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the newest push of %s/%s (ConfigMap %s): %w", namespace, app, PushOrderName(app), err)
	}
	return decodePushMark(cm, namespace)
}

func decodePushMark(cm *corev1.ConfigMap, namespace string) (*PushMark, error) {
	data, ok := cm.Data[pushOrderKey]
	if !ok {
		return nil, nil
	}
	var m PushMark
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s key %s is not a push record (%v); delete the ConfigMap to start the order afresh", namespace, cm.Name, pushOrderKey, err)
	}
	return &m, nil
}

// Record implements PushOrder: a conditional update, read again and
// retried when another writer came first, never moving the order back.
func (o *KubePushOrder) Record(ctx context.Context, namespace, app string, m PushMark) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding the push record: %w", err)
	}
	cms := o.Client.CoreV1().ConfigMaps(namespace)
	for attempt := 0; ; attempt++ {
		cm, err := cms.Get(ctx, PushOrderName(app), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = cms.Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: PushOrderName(app), Namespace: namespace,
					Labels: map[string]string{"app.kubernetes.io/managed-by": "tsys-ci-serve"}},
				Data: map[string]string{pushOrderKey: string(b)},
			}, metav1.CreateOptions{})
		case err == nil:
			cur, derr := decodePushMark(cm, namespace)
			if derr == nil && cur != nil && m.Before(*cur) {
				return nil // a newer one is recorded already
			}
			next := cm.DeepCopy()
			if next.Data == nil {
				next.Data = map[string]string{}
			}
			next.Data[pushOrderKey] = string(b)
			_, err = cms.Update(ctx, next, metav1.UpdateOptions{})
		}
		if err == nil {
			return nil
		}
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 5 {
			continue
		}
		return fmt.Errorf("recording the newest push of %s/%s (ConfigMap %s): %w", namespace, app, PushOrderName(app), err)
	}
}
