package doctor

import (
	"fmt"
	"time"

	"github.com/tsys-group/tsys-ci/platform"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// Snapshot is what doctor reads from a cluster: plain objects, so Analyze
// is a pure function tested with objects shaped like a real cluster.
type Snapshot struct {
	Nodes          []corev1.Node
	Pods           []corev1.Pod
	Services       []corev1.Service
	Deployments    []appsv1.Deployment
	StatefulSets   []appsv1.StatefulSet
	DaemonSets     []appsv1.DaemonSet
	PDBs           []policyv1.PodDisruptionBudget
	StorageClasses []storagev1.StorageClass
	PVCs           []corev1.PersistentVolumeClaim
	// Longhorn is nil when Longhorn's CRDs are absent.
	Longhorn *LonghornState
	// Releases are the Helm releases (newest revision of each), read from
	// Helm's Secrets; ReleasesRead says whether they were read at all (a
	// snapshot without them cannot say what is installed), and
	// ReleasesUnreadable why not, when the account may not read Secrets.
	Releases           []Release
	ReleasesRead       bool
	ReleasesUnreadable string
}

// LonghornState is the part of Longhorn's custom resources doctor reads.
type LonghornState struct {
	// Settings by name (e.g. node-down-pod-deletion-policy); a setting
	// never changed may be absent and then has Longhorn's default.
	Settings map[string]string
	Volumes  []LonghornVolume
}

// LonghornVolume is one volumes.longhorn.io object.
type LonghornVolume struct {
	Name             string
	NumberOfReplicas int
	// Robustness is healthy, degraded, faulted or unknown.
	Robustness string
}

// Severity orders findings: a critical finding is a single point of
// failure that takes a service down when one machine fails.
type Severity int

// Severities, most severe last so they compare naturally.
const (
	SeverityInfo Severity = iota
	SeverityWarning
	SeverityCritical
)

func (s Severity) String() string {
	return [...]string{"info", "warning", "critical"}[s]
}

// MarshalText writes the severity's name in JSON.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity's name, so doctor's JSON report reads back
// into a Report (a pipeline step or test gating on it).
func (s *Severity) UnmarshalText(b []byte) error {
	v, ok := ParseSeverity(string(b))
	if !ok {
		return fmt.Errorf("severity %q: want info, warning or critical", b)
	}
	*s = v
	return nil
}

// ParseSeverity reads info, warning or critical.
func ParseSeverity(s string) (Severity, bool) {
	for _, v := range []Severity{SeverityInfo, SeverityWarning, SeverityCritical} {
		if v.String() == s {
			return v, true
		}
	}
	return 0, false
}

// Finding is one single point of failure (or risk) with why it matters and
// how to fix it.
type Finding struct {
	Severity Severity `json:"severity"`
	// Check is a stable identifier of the rule (see the Check* constants).
	Check   string `json:"check"`
	Object  string `json:"object"`
	Problem string `json:"problem"`
	Why     string `json:"why"`
	Fix     string `json:"fix"`
}

// Checks doctor runs.
const (
	CheckServers        = "servers"
	CheckNodeReady      = "node-ready"
	CheckClusterService = "cluster-service"
	CheckSpeakers       = "lb-speakers"
	CheckServiceLB      = "k3s-servicelb"
	CheckStorageClass   = "storage-class"
	CheckVolumeClass    = "volume-class"
	CheckLonghorn       = "longhorn"
	CheckWorkload       = "workload"
	CheckServe          = "tsys-ci-serve"
	// CheckNodeConcentration: one node carries several single points of failure.
	CheckNodeConcentration = "node-concentration"
	// CheckVersions: kubelet versions out of upstream support, or different.
	CheckVersions = "kubernetes-version"
	// CheckExpected: the cluster differs from platform.yaml (-f).
	CheckExpected = "platform-spec"
)

// Options tune Analyze.
type Options struct {
	// ReplicatedClasses are storage classes known to replicate although
	// their provisioner does not say so (the lab's "replicated" class is
	// local-path over GlusterFS). A class annotated
	// tsys-ci.io/replicated=true counts too.
	ReplicatedClasses []string
	// Now is the day versions are judged against (their end of upstream
	// support); zero means the current time. Tests set it.
	Now time.Time
	// Expected is platform.yaml, when given (-f): the cluster is then also
	// compared with what it should be (hosts, roles, labels, taints,
	// components and their pinned versions).
	Expected *platform.Spec
}

func (o Options) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}
