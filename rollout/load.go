package rollout

import (
	"fmt"
	"os"
	"time"

	"sigs.k8s.io/yaml"
)

// DefaultSpecFile is where promote looks for the app spec.
const DefaultSpecFile = "tsys-ci.yaml"

// Defaults a spec gets when it leaves a field out. Two replicas spread over
// nodes is what makes an app survive the loss of one.
const (
	DefaultReplicas       = 2
	DefaultStrategy       = StrategyBlueGreen
	DefaultScaleDownDelay = 2 * time.Minute
	DefaultStepPause      = 30 * time.Second
	DefaultDrain          = 10 * time.Second
	DefaultGracePeriod    = 40 * time.Second
	DefaultProbeSuccesses = 3
	// DefaultProbeFailureThreshold: three bad answers in a row (4 s at the
	// default interval) end the probe. The pods are ready before probes
	// start, so a sound version does not fail three times running; one
	// that does is rolled back instead of probed for its whole timeout.
	DefaultProbeFailureThreshold = 3
	DefaultProbeInterval         = 2 * time.Second
	DefaultProbeTimeout          = 2 * time.Minute
	DefaultProbeLatency          = 2 * time.Second
)

// Defaults of the analysis from the edge: a web app's version fails when
// more than 1 % of at least 20 requests in the last 30 s failed, or when
// its average response time passes 1 s.
const (
	DefaultMaxErrorRate    = 1.0
	DefaultMaxResponseTime = time.Second
	DefaultMinRequests     = 20
	DefaultAnalysisWindow  = 30 * time.Second
)

// DefaultCanarySteps are the weights used when a canary spec lists none.
var DefaultCanarySteps = []int{10, 50, 100}

// LoadSpec reads, defaults and validates the app spec at path.
func LoadSpec(path string) (*AppSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading app spec: %w", err)
	}
	spec, err := ParseSpec(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return spec, nil
}

// ParseSpec decodes an app spec strictly (unknown fields are errors, so a
// typo never silently becomes a default), fills in defaults and validates.
func ParseSpec(data []byte) (*AppSpec, error) {
	var spec AppSpec
	if err := yaml.UnmarshalStrict(data, &spec); err != nil {
		return nil, fmt.Errorf("decoding app spec: %w", err)
	}
	spec.ApplyDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return &spec, nil
}

func errDuration(s string) error {
	return fmt.Errorf("invalid duration %s: write it like \"30s\", \"5m\" or \"1h30m\"", s)
}

// ApplyDefaults fills in every field the spec left out.
func (s *AppSpec) ApplyDefaults() {
	if s.Namespace == "" {
		s.Namespace = s.Name
	}
	if s.Replicas == nil {
		r := int32(DefaultReplicas)
		s.Replicas = &r
	}
	for i := range s.Ports {
		if s.Ports[i].Protocol == "" {
			s.Ports[i].Protocol = ProtocolHTTP
		}
	}
	for i := range s.Volumes {
		v := &s.Volumes[i]
		if v.Class == "" {
			v.Class = DefaultVolumeClass
		}
		if v.AccessMode == "" {
			v.AccessMode = AccessReadWriteMany
		}
	}
	if s.Health.Readiness == nil && len(s.Ports) > 0 {
		s.Health.Readiness = &Check{TCP: true}
	}
	for _, c := range []*Check{s.Health.Readiness, s.Health.Liveness} {
		if c != nil && c.Port == "" && len(s.Ports) > 0 {
			c.Port = s.Ports[0].Name
		}
	}
	defaultDuration(&s.Shutdown.Drain, DefaultDrain)
	defaultDuration(&s.Shutdown.GracePeriod, DefaultGracePeriod)
	if s.Strategy.Type == "" {
		s.Strategy.Type = DefaultStrategy
	}
	defaultDuration(&s.Strategy.BlueGreen.ScaleDownDelay, DefaultScaleDownDelay)
	if len(s.Strategy.Canary.Steps) == 0 {
		s.Strategy.Canary.Steps = append([]int(nil), DefaultCanarySteps...)
	}
	defaultDuration(&s.Strategy.Canary.StepPause, DefaultStepPause)
	if s.Analysis.MaxErrorRate == nil {
		s.Analysis.MaxErrorRate = &Percent{Value: DefaultMaxErrorRate}
	}
	defaultDuration(&s.Analysis.MaxResponseTime, DefaultMaxResponseTime)
	if s.Analysis.MinRequests == 0 {
		s.Analysis.MinRequests = DefaultMinRequests
	}
	defaultDuration(&s.Analysis.Window, DefaultAnalysisWindow)
	for i := range s.Probes {
		p := &s.Probes[i]
		if p.Name == "" {
			p.Name = fmt.Sprintf("probe-%d", i+1)
		}
		if p.Path == "" {
			p.Path = "/"
		}
		if p.ExpectStatus == 0 {
			p.ExpectStatus = 200
		}
		if p.Successes == 0 {
			p.Successes = DefaultProbeSuccesses
		}
		if p.FailureThreshold == 0 {
			p.FailureThreshold = DefaultProbeFailureThreshold
		}
		defaultDuration(&p.Interval, DefaultProbeInterval)
		defaultDuration(&p.Timeout, DefaultProbeTimeout)
		defaultDuration(&p.MaxLatency, DefaultProbeLatency)
	}
}

func defaultDuration(d *Duration, v time.Duration) {
	if d.Duration == 0 {
		d.Duration = v
	}
}
