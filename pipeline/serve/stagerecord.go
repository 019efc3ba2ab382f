package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tsys-group/tsys-ci/rollout"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// StageRecord is a staged app's pipeline as serve keeps it in the cluster:
// which stage runs which digest, what waits for which gate and why, the
// approvals, and a log of every deploy, gate result and approval. Serve's
// leader acts from it, so a new leader picks the pipeline up where the
// record says.
type StageRecord struct {
	Policy string        `json:"policy"`
	App    string        `json:"app"`
	Stages []StageStatus `json:"stages"`
	// Log is what happened, oldest first, the last maxStageLog entries.
	Log []StageLogEntry `json:"log,omitempty"`
}

// Stage states.
const (
	StageDeploying  = "deploying"
	StageSucceeded  = ResultSucceeded
	StageRolledBack = ResultRolledBack
	StageFailed     = ResultFailed
	StageCanceled   = ResultCanceled
	StageAborted    = ResultAborted
)

// StageStatus is one stage in the record.
type StageStatus struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Digest, Image and Tag are what the stage was last asked to run.
	Digest string `json:"digest,omitempty"`
	Image  string `json:"image,omitempty"`
	Tag    string `json:"tag,omitempty"`
	// PushedBy is the Harbor operator of the push that brought Digest (the
	// four-eyes gate refuses them as approver).
	PushedBy string `json:"pushedBy,omitempty"`
	// State is StageDeploying, or how the deploy of Digest ended.
	State    string    `json:"state,omitempty"`
	DeployID string    `json:"deployId,omitempty"`
	Queued   time.Time `json:"queued,omitzero"`
	// Finished is when the deploy ended; the next stage's soak counts
	// from it.
	Finished time.Time `json:"finished,omitzero"`
	Error    string    `json:"error,omitempty"`
	// Waiting is the digest waiting to enter this stage and the gate it
	// waits for; nil when nothing waits.
	Waiting   *StageWait `json:"waiting,omitempty"`
	Approvals []Approval `json:"approvals,omitempty"`
}

// StageWait is a digest held before a stage by a gate.
type StageWait struct {
	Digest string `json:"digest"`
	// Gate is "previous" (the stage before has not served it
	// successfully), "after" or "approval".
	Gate string `json:"gate"`
	// Reason says why, and what would satisfy the gate.
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// Approval lets a digest into a stage.
type Approval struct {
	Digest string    `json:"digest"`
	By     string    `json:"by"`
	Group  string    `json:"group"`
	At     time.Time `json:"at"`
}

// StageLogEntry is one deploy, gate result, approval or refusal.
type StageLogEntry struct {
	At     time.Time `json:"at"`
	Stage  string    `json:"stage"`
	Digest string    `json:"digest,omitempty"`
	// Kind is deploy, gate, approval or refused.
	Kind    string `json:"kind"`
	Result  string `json:"result"`
	By      string `json:"by,omitempty"`
	Message string `json:"message,omitempty"`
}

const maxStageLog = 100

// maxApprovals bounds the approvals kept per stage (old digests' drop).
const maxApprovals = 20

func (r *StageRecord) stage(name string) *StageStatus {
	for i := range r.Stages {
		if r.Stages[i].Name == name {
			return &r.Stages[i]
		}
	}
	return nil
}

func (r *StageRecord) log(e StageLogEntry) {
	r.Log = append(r.Log, e)
	if len(r.Log) > maxStageLog {
		r.Log = append([]StageLogEntry(nil), r.Log[len(r.Log)-maxStageLog:]...)
	}
}

// align makes the record's stages those of the policy, in its order,
// keeping what was recorded for stages still there.
func (r *StageRecord) align(p DeployPolicy) {
	r.Policy, r.App = p.Name, p.App
	out := make([]StageStatus, 0, len(p.Stages))
	for _, st := range p.Stages {
		s := StageStatus{Name: st.Name, Namespace: st.Namespace}
		if old := r.stage(st.Name); old != nil && old.Namespace == st.Namespace {
			s = *old
		}
		out = append(out, s)
	}
	r.Stages = out
}

// approved is the approval of digest for the stage, or nil.
func (s *StageStatus) approved(digest string) *Approval {
	for i := range s.Approvals {
		if s.Approvals[i].Digest == digest {
			return &s.Approvals[i]
		}
	}
	return nil
}

// digestOf is the sha256:... part of an image reference, "" without one.
func digestOf(image string) string {
	if _, d, ok := strings.Cut(image, "@"); ok {
		return d
	}
	return ""
}

// StageStore keeps the stage records and reads the stages' rollout state;
// KubeStageStore in the cluster.
type StageStore interface {
	// Load is the record of the policy's app (in its first stage's
	// namespace), nil when none was written yet.
	Load(ctx context.Context, namespace, app string) (*StageRecord, error)
	// Update changes the record with f (given an empty record when there
	// is none) and writes it conditionally, reading again on a conflict.
	Update(ctx context.Context, namespace, app string, f func(*StageRecord) error) (*StageRecord, error)
	// Rollout is the app's rollout state in a stage's namespace (nil when
	// never promoted there).
	Rollout(ctx context.Context, namespace, app string) (*rollout.State, error)
}

// StageRecordName is the ConfigMap an app's stage record is kept in, in
// its first stage's namespace beside the push order. The dot keeps it
// apart from promote's state (tsys-ci-<app>).
func StageRecordName(app string) string { return "tsys-ci-serve-stages." + app }

// StageRecordKey is the record's key in the ConfigMap.
const StageRecordKey = "record.json"

// KubeStageStore is the StageStore in the cluster.
type KubeStageStore struct {
	Client kubernetes.Interface
}

// Load implements StageStore.
func (k *KubeStageStore) Load(ctx context.Context, namespace, app string) (*StageRecord, error) {
	return LoadStageRecord(ctx, k.Client, namespace, app)
}

// LoadStageRecord reads an app's stage record (nil when there is none);
// `tsys-ci status` reads it too.
func LoadStageRecord(ctx context.Context, c kubernetes.Interface, namespace, app string) (*StageRecord, error) {
	cm, err := c.CoreV1().ConfigMaps(namespace).Get(ctx, StageRecordName(app), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the stage record of %s/%s (ConfigMap %s): %w", namespace, app, StageRecordName(app), err)
	}
	return decodeStageRecord(cm)
}

func decodeStageRecord(cm *corev1.ConfigMap) (*StageRecord, error) {
	data, ok := cm.Data[StageRecordKey]
	if !ok {
		return nil, nil
	}
	var r StageRecord
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s key %s is not a stage record (%v); fix or delete it (serve then starts the pipeline afresh at the next push)", cm.Namespace, cm.Name, StageRecordKey, err)
	}
	return &r, nil
}

// Update implements StageStore.
func (k *KubeStageStore) Update(ctx context.Context, namespace, app string, f func(*StageRecord) error) (*StageRecord, error) {
	cms := k.Client.CoreV1().ConfigMaps(namespace)
	for attempt := 0; ; attempt++ {
		cm, err := cms.Get(ctx, StageRecordName(app), metav1.GetOptions{})
		exists := err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading the stage record of %s/%s (ConfigMap %s): %w", namespace, app, StageRecordName(app), err)
		}
		rec := &StageRecord{}
		if exists {
			if r, derr := decodeStageRecord(cm); derr != nil {
				return nil, derr
			} else if r != nil {
				rec = r
			}
		}
		if err := f(rec); err != nil {
			return nil, err
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, fmt.Errorf("encoding the stage record of %s/%s: %w", namespace, app, err)
		}
		if exists && cm.Data[StageRecordKey] == string(b) {
			return rec, nil // nothing changed: no write every round
		}
		if exists {
			next := cm.DeepCopy()
			if next.Data == nil {
				next.Data = map[string]string{}
			}
			next.Data[StageRecordKey] = string(b)
			_, err = cms.Update(ctx, next, metav1.UpdateOptions{})
		} else {
			_, err = cms.Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: StageRecordName(app), Namespace: namespace,
					Labels: map[string]string{"app.kubernetes.io/managed-by": "tsys-ci-serve"}},
				Data: map[string]string{StageRecordKey: string(b)},
			}, metav1.CreateOptions{})
		}
		if err == nil {
			return rec, nil
		}
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 8 {
			continue
		}
		return nil, fmt.Errorf("writing the stage record of %s/%s (ConfigMap %s): %w", namespace, app, StageRecordName(app), err)
	}
}

// Rollout implements StageStore.
func (k *KubeStageStore) Rollout(ctx context.Context, namespace, app string) (*rollout.State, error) {
	return rollout.Status(ctx, k.Client, namespace, app)
}
