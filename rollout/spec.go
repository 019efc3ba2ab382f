// Package rollout puts a version of an app on the cluster and moves traffic
// to it: the app spec (tsys-ci.yaml), the Kubernetes objects rendered from
// it, canary weights the replica counts can really give, probes, and the
// promote state machine whose state lives in the cluster so any process can
// resume or roll back a promote another one started.
package rollout

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// AppSpec is the content of an app's tsys-ci.yaml. Zero values mean "use the
// default"; Load fills the defaults in and validates the result.
type AppSpec struct {
	Name      string      `json:"name"`
	Namespace string      `json:"namespace,omitempty"`
	Replicas  *int32      `json:"replicas,omitempty"`
	Ports     []Port      `json:"ports,omitempty"`
	Env       []EnvVar    `json:"env,omitempty"`
	Volumes   []Volume    `json:"volumes,omitempty"`
	Health    Health      `json:"health,omitempty"`
	Resources Resources   `json:"resources,omitempty"`
	Shutdown  Shutdown    `json:"shutdown,omitempty"`
	Strategy  Strategy    `json:"strategy,omitempty"`
	Probes    []HTTPProbe `json:"probes,omitempty"`
	Analysis  Analysis    `json:"analysis,omitempty"`
	Source    Source      `json:"source,omitempty"`
	// API puts the app's HTTP API behind the platform's gateway (api.go).
	API *API `json:"api,omitempty"`
}

// Source is where the app's images must be built from. With Repository
// set, promote (CLI and serve) refuses an image whose signed SLSA
// provenance (attached by 'tsys-ci push --sign') names another source
// repository, or that has none: the company's key signs every app's
// images, so the signature alone does not say which app an image is.
type Source struct {
	// Repository is the app's git repository URL (https://host/team/app,
	// git@host:team/app.git, ...), compared by host and path.
	Repository string `json:"repository,omitempty"`
}

// Analysis says when the edge's counters of the new version's real
// requests fail it: judged every second over the last Window, during each
// canary step's pause and the watch after the switch, once the window
// holds at least MinRequests requests. Errors are 5xx answers and requests
// the version did not answer (connection and response errors).
type Analysis struct {
	MaxErrorRate    *Percent `json:"maxErrorRate,omitempty"`
	MaxResponseTime Duration `json:"maxResponseTime,omitempty"`
	MinRequests     int      `json:"minRequests,omitempty"`
	Window          Duration `json:"window,omitempty"`
	// Prometheus, when set, judges the version by a PromQL query too:
	// the source for apps with no host at the edge (TCP ports, or
	// clients inside the cluster only), whose requests HAProxy never sees.
	Prometheus *PrometheusAnalysis `json:"prometheus,omitempty"`
}

// PrometheusAnalysis is a PromQL instant query asked during every canary
// step's pause and the watch after the switch, as often as the edge is
// sampled. A value above Threshold (any series of a vector) fails the
// version; no data yet (an empty vector) is not judged, as a window with
// too few requests is not. In Query, {{ color }}, {{ app }} and
// {{ namespace }} stand for the version judged (its pods carry the color
// label tsys-ci.io/color, which a scrape config keeps as a label), and
// {{ window }} for analysis.window, or the time the version has been
// judged when shorter, as a PromQL duration ("30s"): in a range it keeps
// out the samples of the color's earlier pods.
type PrometheusAnalysis struct {
	// Address is Prometheus' base URL, e.g.
	// http://prometheus.monitoring:9090.
	Address   string   `json:"address"`
	Query     string   `json:"query"`
	Threshold *float64 `json:"threshold"`
}

// Percent is a share written "1%", "0.5%" or as a plain number of percent.
type Percent struct{ Value float64 }

// UnmarshalJSON reads "1%", "0.5 %" or 1.
func (p *Percent) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s[1:len(s)-1]), "%"))
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("invalid percentage %s: write it like \"1%%\" or \"0.5%%\"", b)
	}
	p.Value = v
	return nil
}

// MarshalJSON writes the share as "1%".
func (p Percent) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatFloat(p.Value, 'f', -1, 64) + `%"`), nil
}

// String reads "1%".
func (p Percent) String() string { return strconv.FormatFloat(p.Value, 'f', -1, 64) + "%" }

// Port protocols. HTTP ports are routed by host name at the edge; TCP ports
// are passed through it on a frontend port of their own.
const (
	ProtocolHTTP = "http"
	ProtocolTCP  = "tcp"
)

// Port is one container port. Expose puts it on the app's load-balancer
// address (a MetalLB address and a port from the pool); Hosts and
// TCPFrontendPort tell the edge how to reach it by name.
type Port struct {
	Name            string   `json:"name"`
	ContainerPort   int32    `json:"containerPort"`
	Protocol        string   `json:"protocol,omitempty"`
	Expose          bool     `json:"expose,omitempty"`
	Hosts           []string `json:"hosts,omitempty"`
	TCPFrontendPort int32    `json:"tcpFrontendPort,omitempty"`
	// ResendAfter (a duration such as "2s"), on an http port with hosts,
	// has the edge send a GET, HEAD, OPTIONS, PUT, DELETE or TRACE that
	// got no answer in that time again to another node of the same
	// version, up to 3 times: a node that froze mid-request costs the
	// user that wait, not an error. It is then also the longest such a
	// request may take: set it above the app's slowest idempotent answer.
	// It needs the edge by version (edge sync --by-version; docs/edge.md).
	ResendAfter string `json:"resendAfter,omitempty"`
	// Sticky, on an http port with hosts, keeps each browser on the
	// version that first answered it (a cookie set by the edge) while that
	// version has weight: one user sees one version for a whole canary.
	// It needs the edge by version.
	Sticky bool `json:"sticky,omitempty"`
}

// EnvVar is a plain value, a reference to one key of a Secret someone
// made, or the name of a variable of promote's own environment (FromEnv),
// so secrets never sit in the app's repository. FromEnv values are read by
// promote (from envwarden, Jenkins' credentials binding or serve's
// configured Secret) and written into the release's own Secret
// (RenderEnvSecret): each version runs with the values it was promoted
// with, and a rollback brings them back with its image.
type EnvVar struct {
	Name      string     `json:"name"`
	Value     string     `json:"value,omitempty"`
	SecretRef *SecretKey `json:"secretRef,omitempty"`
	FromEnv   string     `json:"fromEnv,omitempty"`
}

// SecretKey names one key of a Secret in the app's namespace.
type SecretKey struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// Access modes a volume may ask for. ReadWriteOnce and ReadWriteOncePod are
// single-writer: such an app cannot run two copies.
const (
	AccessReadWriteMany    = "ReadWriteMany"
	AccessReadWriteOnce    = "ReadWriteOnce"
	AccessReadWriteOncePod = "ReadWriteOncePod"
)

// DefaultVolumeClass is the replicated storage class (Longhorn in
// production, GlusterFS in the lab); volumes use it unless they opt out.
const DefaultVolumeClass = "replicated"

// Volume is a persistent volume claim mounted into every copy of the app.
type Volume struct {
	Name       string `json:"name"`
	Size       string `json:"size"`
	MountPath  string `json:"mountPath"`
	Class      string `json:"class,omitempty"`
	AccessMode string `json:"accessMode,omitempty"`
}

// SingleWriter reports whether only one pod may write the volume.
func (v Volume) SingleWriter() bool {
	return v.AccessMode == AccessReadWriteOnce || v.AccessMode == AccessReadWriteOncePod
}

// Health holds the pods' own checks, run by the kubelet.
type Health struct {
	Readiness *Check `json:"readiness,omitempty"`
	Liveness  *Check `json:"liveness,omitempty"`
}

// Check is an HTTP GET of Path on Port, or a TCP connect to Port when Path
// is empty and TCP is set. Port is a port name from the spec.
type Check struct {
	HTTP             string   `json:"http,omitempty"`
	TCP              bool     `json:"tcp,omitempty"`
	Port             string   `json:"port,omitempty"`
	Period           Duration `json:"period,omitempty"`
	FailureThreshold int32    `json:"failureThreshold,omitempty"`
}

// Resources are Kubernetes quantities ("100m", "128Mi").
type Resources struct {
	Requests ResourceList `json:"requests,omitempty"`
	Limits   ResourceList `json:"limits,omitempty"`
}

// ResourceList holds the CPU and memory quantities of requests or limits.
type ResourceList struct {
	CPU    string `json:"cpu,omitempty"`
	Memory string `json:"memory,omitempty"`
}

// Shutdown says how long a pod keeps serving after it is told to stop, so
// endpoints drain before the process exits: Drain is spent in preStop while
// kube-proxy and the load balancer take the pod out, then the process gets
// SIGTERM and has the rest of GracePeriod.
type Shutdown struct {
	Drain       Duration `json:"drain,omitempty"`
	GracePeriod Duration `json:"gracePeriod,omitempty"`
}

// Strategy types.
const (
	StrategyBlueGreen = "blueGreen"
	StrategyCanary    = "canary"
	StrategyRolling   = "rolling"
	StrategyRecreate  = "recreate"
)

// Strategy says how a new version replaces the running one.
type Strategy struct {
	Type      string        `json:"type,omitempty"`
	BlueGreen BlueGreenSpec `json:"blueGreen,omitempty"`
	Canary    CanarySpec    `json:"canary,omitempty"`
}

// BlueGreenSpec: the old version is kept for ScaleDownDelay after the
// switch, so a rollback is instant while it runs.
type BlueGreenSpec struct {
	ScaleDownDelay Duration `json:"scaleDownDelay,omitempty"`
}

// CanarySpec lists the requested weights in percent, ascending, ending at
// 100; probes run at each step for at least StepPause.
type CanarySpec struct {
	Steps     []int    `json:"steps,omitempty"`
	StepPause Duration `json:"stepPause,omitempty"`
}

// HTTPProbe is a check promote runs against the new version before and
// while it gets traffic. It passes after Successes consecutive good answers;
// it fails after FailureThreshold consecutive bad ones (a version whose
// health path is broken is rolled back in seconds, not after Timeout), or
// on the first bad one after Timeout.
type HTTPProbe struct {
	Name         string   `json:"name,omitempty"`
	Port         string   `json:"port"`
	Path         string   `json:"path,omitempty"`
	Host         string   `json:"host,omitempty"`
	ExpectStatus int      `json:"expectStatus,omitempty"`
	BodyMatch    string   `json:"bodyMatch,omitempty"`
	MaxLatency   Duration `json:"maxLatency,omitempty"`
	Successes    int      `json:"successes,omitempty"`
	// FailureThreshold is how many bad answers in a row fail the probe
	// at once.
	FailureThreshold int      `json:"failureThreshold,omitempty"`
	Interval         Duration `json:"interval,omitempty"`
	Timeout          Duration `json:"timeout,omitempty"`
}

// Duration is a time.Duration written as "30s" or "5m" in the spec.
type Duration struct{ time.Duration }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return errDuration(s)
	}
	v, err := time.ParseDuration(s[1 : len(s)-1])
	if err != nil {
		return errDuration(s)
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + d.Duration.String() + `"`), nil
}
