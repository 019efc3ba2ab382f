package rollout

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Status reads an app's rollout state without changing anything (unlike
// StateStore.Load, which creates it); nil state (and no error) when the app
// was never promoted. 'tsys-ci status' shows it; 'tsys-ci serve' uses it to
// find promotes a stopped replica left under way.
func Status(ctx context.Context, cs kubernetes.Interface, namespace, app string) (*State, error) {
	cm, err := cs.CoreV1().ConfigMaps(namespace).Get(ctx, StateName(app), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading rollout state %s/%s: %w", namespace, StateName(app), err)
	}
	var s State
	if err := json.Unmarshal([]byte(cm.Data[stateKey]), &s); err != nil {
		return nil, fmt.Errorf("rollout state %s/%s key %s is not valid JSON (%v); fix or delete the key", namespace, StateName(app), stateKey, err)
	}
	return &s, nil
}
