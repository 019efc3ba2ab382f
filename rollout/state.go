package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tsys-group/tsys-ci/internal/contract"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Phase is where a promote stands. Every phase but PhaseStable means a
// promote is under way; a re-run resumes it (same image) or rolls it back.
type Phase string

// Phases of a promote, in the order they are passed through.
const (
	// PhaseStable: nothing in progress; Active serves all traffic.
	PhaseStable Phase = "Stable"
	// PhaseDeploying: the candidate's Deployment is applied; waiting for
	// its pods. No traffic goes to it yet.
	PhaseDeploying Phase = "Deploying"
	// PhaseProbing: the candidate's pods are ready; probes run against it
	// through the preview Service. No user traffic yet.
	PhaseProbing Phase = "Probing"
	// PhaseCanary: the Service selects both colors; Step says which
	// canary step's pod counts are in place.
	PhaseCanary Phase = "Canary"
	// PhaseSwitched: the Service selects the candidate only; the previous
	// version still runs until the scale-down delay passes.
	PhaseSwitched Phase = "Switched"
	// PhaseRollingBack: traffic is being returned to the previous version.
	PhaseRollingBack Phase = "RollingBack"
)

// Release is one version of the app on one color.
type Release struct {
	Color    string `json:"color"`
	Image    string `json:"image"`
	Revision string `json:"revision,omitempty"`
	// Secret names the release's Secret of the spec's fromEnv values
	// (EnvSecretName); never the values. A rollback to the release brings
	// its Secret back with its image.
	Secret string `json:"secret,omitempty"`
}

// HistoryEntry records how a promote ended.
type HistoryEntry struct {
	Release
	Strategy string    `json:"strategy"`
	Result   string    `json:"result"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

// Results of a promote in the history.
const (
	ResultPromoted   = "promoted"
	ResultRolledBack = "rolled-back"
	ResultAborted    = "aborted"
	// ResultAbortRequested is an abort's result when another process
	// held the app's lease: it was asked to roll back (AbortRequested)
	// and does so at its next check.
	ResultAbortRequested = "abort-requested"
)

// maxHistory bounds the history kept in the state object.
const maxHistory = 20

// State is an app's rollout state as stored in the cluster.
type State struct {
	App      string   `json:"app"`
	Phase    Phase    `json:"phase"`
	Strategy string   `json:"strategy,omitempty"`
	Active   *Release `json:"active,omitempty"`
	// Previous is the version Active replaced, kept (scaled to zero) for
	// 'tsys-ci promote --rollback'.
	Previous *Release `json:"previous,omitempty"`
	// Candidate is the version being promoted (nil when stable).
	Candidate *Release `json:"candidate,omitempty"`
	// Step indexes the canary plan while Phase is PhaseCanary.
	Step int `json:"step,omitempty"`
	// EdgeCanary says this promote's canary steps are exact weights at
	// the edge (both versions at full replicas, the Service on the stable
	// one until 100 %), not pod ratios. Decided when the promote starts,
	// so a re-run resumes the same plan.
	EdgeCanary bool `json:"edgeCanary,omitempty"`
	// EdgeWeights is what promote last wrote in the app Service's
	// tsys-ci.io/edge-weights annotation (apps with hosts only).
	EdgeWeights EdgeWeights `json:"edgeWeights,omitempty"`
	// EdgeTraffic is what each version did at the edge in the analysis
	// window, as this promote last read it from the edge's stats (apps
	// with hosts and an edge stats URL only): written at most every
	// PollInterval while a watch judges, kept after the promote ends
	// until the next one starts. serve's dashboard shows it.
	EdgeTraffic *EdgeTraffic `json:"edgeTraffic,omitempty"`
	// AbortRequested is set by 'tsys-ci abort' for the promote holding
	// the lease: it rolls back at its next check.
	AbortRequested bool `json:"abortRequested,omitempty"`
	// ManualRollback says the candidate is the previous version being put
	// back by 'tsys-ci promote --rollback', not a new one: if its process
	// dies, a re-run of --rollback completes it, and anything else (a
	// promote, abort) undoes it; either way both versions' Deployments
	// are kept.
	ManualRollback bool           `json:"manualRollback,omitempty"`
	Message        string         `json:"message,omitempty"`
	StartedAt      time.Time      `json:"startedAt,omitzero"`
	UpdatedAt      time.Time      `json:"updatedAt,omitzero"`
	History        []HistoryEntry `json:"history,omitempty"`
}

// EdgeTraffic is one reading of the analysis window at the edge.
type EdgeTraffic struct {
	At time.Time `json:"at"`
	// WindowSeconds is the span the counts cover (up to the spec's
	// analysis.window).
	WindowSeconds float64          `json:"windowSeconds"`
	Versions      []VersionTraffic `json:"versions"`
}

// VersionTraffic is what one version (color) did at the edge in the
// window: requests, failed ones (5xx, connection and response errors)
// and HAProxy's average response time.
type VersionTraffic struct {
	Color          string  `json:"color"`
	Image          string  `json:"image,omitempty"`
	Requests       int64   `json:"requests"`
	Failed         int64   `json:"failed"`
	ErrorRate      float64 `json:"errorRate"` // percent of Requests
	ResponseTimeMs int64   `json:"responseTimeMs"`
	// WeightGiven is the weight HAProxy showed for the version when the
	// numbers were read: what users got, beside what promote asked
	// (State.EdgeWeights). Nil in states written before it was recorded.
	WeightGiven *int `json:"weightGiven,omitempty"`
}

// ErrorRateString is ErrorRate as the analysis messages write it.
func (v VersionTraffic) ErrorRateString() string { return percentOf(v.ErrorRate) }

// InProgress reports whether a promote was under way when the state was
// last written.
func (s *State) InProgress() bool { return s.Phase != "" && s.Phase != PhaseStable }

// Record appends a history entry, keeping the newest maxHistory.
func (s *State) Record(e HistoryEntry) {
	s.History = append(s.History, e)
	if len(s.History) > maxHistory {
		s.History = s.History[len(s.History)-maxHistory:]
	}
}

// StateName is the ConfigMap holding an app's rollout state. It also owns
// the app's Deployments, Services and PDB (not its volumes), so deleting it
// removes the app.
func StateName(app string) string { return "tsys-ci-" + app }

const stateKey = "state.json"

// StateStore reads and writes an app's state. Writes are conditional on the
// resourceVersion last read, so a process that lost its lease cannot
// overwrite what the new holder wrote.
type StateStore struct {
	Client    kubernetes.Interface
	Namespace string
	App       string
	Clock     Clock

	cm *corev1.ConfigMap
}

// Load reads the state, creating an empty one (PhaseStable, no active
// version) for an app promoted for the first time.
func (st *StateStore) Load(ctx context.Context) (*State, error) {
	cms := st.Client.CoreV1().ConfigMaps(st.Namespace)
	cm, err := cms.Get(ctx, StateName(st.App), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cm, err = cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: StateName(st.App), Namespace: st.Namespace, Labels: AppLabels(st.App)},
			Data:       map[string]string{stateKey: `{"app":"` + st.App + `","phase":"Stable"}`},
		}, metav1.CreateOptions{FieldManager: contract.FieldManager})
		if apierrors.IsAlreadyExists(err) {
			cm, err = cms.Get(ctx, StateName(st.App), metav1.GetOptions{})
		}
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("namespace %s does not exist: create it ('kubectl create namespace %s'), or set namespace: in tsys-ci.yaml", st.Namespace, st.Namespace)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading rollout state %s/%s: %w", st.Namespace, StateName(st.App), err)
	}
	var s State
	if err := json.Unmarshal([]byte(cm.Data[stateKey]), &s); err != nil {
		return nil, fmt.Errorf("rollout state %s/%s key %s is not valid JSON (%v); fix or delete the key", st.Namespace, StateName(st.App), stateKey, err)
	}
	st.cm = cm
	return &s, nil
}

// Save writes s if nobody wrote the state since it was loaded.
func (st *StateStore) Save(ctx context.Context, s *State) error {
	if st.cm == nil {
		return fmt.Errorf("saving rollout state of %s: load it first", st.App)
	}
	s.UpdatedAt = st.Clock.Now().UTC()
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encoding rollout state: %w", err)
	}
	next := st.cm.DeepCopy()
	if next.Data == nil {
		next.Data = map[string]string{}
	}
	next.Data[stateKey] = string(data)
	updated, err := st.Client.CoreV1().ConfigMaps(st.Namespace).Update(ctx, next, metav1.UpdateOptions{FieldManager: contract.FieldManager})
	if err != nil {
		return fmt.Errorf("saving rollout state %s/%s (phase %s): %w", st.Namespace, StateName(st.App), s.Phase, err)
	}
	st.cm = updated
	return nil
}

// Owner is the owner reference the app's objects carry: the state object.
func (st *StateStore) Owner() *metav1.OwnerReference {
	if st.cm == nil {
		return nil
	}
	return &metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: st.cm.Name, UID: st.cm.UID}
}
