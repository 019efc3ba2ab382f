package rollout

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// SpecError lists every problem found in an app spec, each naming the field
// path (for example "ports[1].hosts[0]") so the fix is obvious.
type SpecError struct{ Problems []string }

// BadInput marks the spec as the user's to fix: the CLI exits 2 on it.
func (e *SpecError) BadInput() bool { return true }

func (e *SpecError) Error() string {
	return "app spec is not valid:\n  " + strings.Join(e.Problems, "\n  ")
}

type checker struct{ problems []string }

func (c *checker) add(field, format string, args ...any) {
	c.problems = append(c.problems, field+": "+fmt.Sprintf(format, args...))
}

// edgePorts are the edge's own HTTP and HTTPS frontends; a TCP pass-through
// port cannot take them.
var edgePorts = map[int32]bool{80: true, 443: true}

// Validate checks a defaulted spec and returns a *SpecError naming every
// bad field, or nil.
func (s *AppSpec) Validate() error {
	c := &checker{}
	c.name("name", s.Name)
	if s.Namespace != "" {
		c.name("namespace", s.Namespace)
	}
	if s.Replicas != nil && *s.Replicas < 1 {
		c.add("replicas", "must be at least 1, got %d", *s.Replicas)
	}
	ports := c.ports(s.Ports)
	c.env(s.Env)
	c.volumes(s)
	c.check("health.readiness", s.Health.Readiness, ports)
	c.check("health.liveness", s.Health.Liveness, ports)
	c.resources("resources.requests", s.Resources.Requests)
	c.resources("resources.limits", s.Resources.Limits)
	if s.Shutdown.Drain.Duration < 0 || s.Shutdown.GracePeriod.Duration <= s.Shutdown.Drain.Duration {
		c.add("shutdown.gracePeriod", "must be longer than shutdown.drain (%s), got %s", s.Shutdown.Drain.Duration, s.Shutdown.GracePeriod.Duration)
	}
	c.strategy(s)
	c.probes(s.Probes, ports)
	c.analysis(s.Analysis)
	c.source(s.Source)
	c.api(s, ports)
	if len(c.problems) > 0 {
		return &SpecError{Problems: c.problems}
	}
	return nil
}

func (c *checker) name(field, v string) {
	if v == "" {
		c.add(field, "is required")
		return
	}
	// Deployment names get a color suffix ("-green"), so keep room for it.
	if len(v) > 50 {
		c.add(field, "%q is longer than 50 characters", v)
	}
	for _, msg := range validation.IsDNS1123Label(v) {
		c.add(field, "%q is not a valid name: %s", v, msg)
	}
}

// ports checks the port list and returns the set of port names.
func (c *checker) ports(ports []Port) map[string]Port {
	byName := map[string]Port{}
	numbers := map[int32]bool{}
	frontends := map[int32]string{}
	hosts := map[string]string{}
	if len(ports) == 0 {
		// Every strategy serves through the app's Service, and a Service
		// without ports is refused by the API server mid-promote.
		c.add("ports", "at least one port is required: the app's Service routes traffic to it (for example [{name: http, containerPort: 8080}])")
	}
	for i, p := range ports {
		f := fmt.Sprintf("ports[%d]", i)
		for _, msg := range validation.IsValidPortName(p.Name) {
			c.add(f+".name", "%q: %s", p.Name, msg)
		}
		if _, dup := byName[p.Name]; dup {
			c.add(f+".name", "%q is used by another port", p.Name)
		}
		byName[p.Name] = p
		if p.ContainerPort < 1 || p.ContainerPort > 65535 {
			c.add(f+".containerPort", "must be 1-65535, got %d", p.ContainerPort)
		} else if numbers[p.ContainerPort] {
			c.add(f+".containerPort", "%d is used by another port", p.ContainerPort)
		}
		numbers[p.ContainerPort] = true
		switch p.Protocol {
		case ProtocolHTTP, ProtocolTCP:
		default:
			c.add(f+".protocol", "must be %q or %q, got %q", ProtocolHTTP, ProtocolTCP, p.Protocol)
		}
		c.edge(f, p, frontends, hosts)
	}
	return byName
}

// edge checks the host names and pass-through ports the edge routes.
func (c *checker) edge(f string, p Port, frontends map[int32]string, hosts map[string]string) {
	if len(p.Hosts) > 0 && (!p.Expose || p.Protocol != ProtocolHTTP) {
		c.add(f+".hosts", "only an exposed http port can have host names (set expose: true and protocol: http)")
	}
	for j, h := range p.Hosts {
		hf := fmt.Sprintf("%s.hosts[%d]", f, j)
		if h != strings.ToLower(h) {
			c.add(hf, "%q must be lower case", h)
		}
		if msgs := validation.IsDNS1123Subdomain(h); len(msgs) > 0 || !strings.Contains(h, ".") {
			c.add(hf, "%q is not a fully qualified host name", h)
		}
		if other, dup := hosts[h]; dup {
			c.add(hf, "%q is already used by %s", h, other)
		}
		hosts[h] = hf
	}
	if p.ResendAfter != "" {
		rf := f + ".resendAfter"
		d, err := time.ParseDuration(p.ResendAfter)
		switch {
		case len(p.Hosts) == 0:
			c.add(rf, "only an http port with hosts is resent by the edge; remove it or add hosts")
		case err != nil:
			c.add(rf, "%q is not a duration such as 2s or 1500ms", p.ResendAfter)
		case d < contract.ResendAfterMinMs*time.Millisecond || d > contract.ResendAfterMaxMs*time.Millisecond:
			c.add(rf, "%s is out of range: give %dms to %ds", d, contract.ResendAfterMinMs, contract.ResendAfterMaxMs/1000)
		}
	}
	if p.Sticky && len(p.Hosts) == 0 {
		c.add(f+".sticky", "only an http port with hosts is kept on one version by the edge; remove it or add hosts")
	}
	if p.TCPFrontendPort == 0 {
		return
	}
	ff := f + ".tcpFrontendPort"
	switch {
	case !p.Expose || p.Protocol != ProtocolTCP:
		c.add(ff, "only an exposed tcp port is passed through the edge (set expose: true and protocol: tcp)")
	case p.TCPFrontendPort < 1 || p.TCPFrontendPort > 65535:
		c.add(ff, "must be 1-65535, got %d", p.TCPFrontendPort)
	case edgePorts[p.TCPFrontendPort]:
		c.add(ff, "%d is the edge's own HTTP/HTTPS port; pick another", p.TCPFrontendPort)
	case frontends[p.TCPFrontendPort] != "":
		c.add(ff, "%d is already used by %s", p.TCPFrontendPort, frontends[p.TCPFrontendPort])
	}
	frontends[p.TCPFrontendPort] = ff
}

func (c *checker) env(env []EnvVar) {
	seen := map[string]bool{}
	for i, e := range env {
		f := fmt.Sprintf("env[%d]", i)
		for _, msg := range validation.IsEnvVarName(e.Name) {
			c.add(f+".name", "%q: %s", e.Name, msg)
		}
		if seen[e.Name] {
			c.add(f+".name", "%q is set twice", e.Name)
		}
		seen[e.Name] = true
		sources := 0
		for _, set := range []bool{e.Value != "", e.SecretRef != nil, e.FromEnv != ""} {
			if set {
				sources++
			}
		}
		if sources > 1 {
			c.add(f, "set one of value, secretRef and fromEnv, not several")
		}
		if e.FromEnv != "" {
			for _, msg := range validation.IsEnvVarName(e.FromEnv) {
				c.add(f+".fromEnv", "%q: %s", e.FromEnv, msg)
			}
		}
		if e.SecretRef == nil {
			continue
		}
		for _, msg := range validation.IsDNS1123Subdomain(e.SecretRef.Name) {
			c.add(f+".secretRef.name", "%q: %s", e.SecretRef.Name, msg)
		}
		for _, msg := range validation.IsConfigMapKey(e.SecretRef.Key) {
			c.add(f+".secretRef.key", "%q: %s", e.SecretRef.Key, msg)
		}
	}
}

func (c *checker) volumes(s *AppSpec) {
	names := map[string]bool{}
	mounts := map[string]bool{}
	for i, v := range s.Volumes {
		f := fmt.Sprintf("volumes[%d]", i)
		for _, msg := range validation.IsDNS1123Label(v.Name) {
			c.add(f+".name", "%q: %s", v.Name, msg)
		}
		if names[v.Name] {
			c.add(f+".name", "%q is used by another volume", v.Name)
		}
		names[v.Name] = true
		if q, err := resource.ParseQuantity(v.Size); err != nil || q.Sign() <= 0 {
			c.add(f+".size", "%q is not a positive size such as \"1Gi\"", v.Size)
		}
		if !strings.HasPrefix(v.MountPath, "/") {
			c.add(f+".mountPath", "%q must be an absolute path", v.MountPath)
		} else if mounts[v.MountPath] {
			c.add(f+".mountPath", "%q is used by another volume", v.MountPath)
		}
		mounts[v.MountPath] = true
		for _, msg := range validation.IsDNS1123Subdomain(v.Class) {
			c.add(f+".class", "%q: %s", v.Class, msg)
		}
		switch v.AccessMode {
		case AccessReadWriteMany, AccessReadWriteOnce, AccessReadWriteOncePod:
		default:
			c.add(f+".accessMode", "must be %s, %s or %s, got %q", AccessReadWriteMany, AccessReadWriteOnce, AccessReadWriteOncePod, v.AccessMode)
			continue
		}
		if !v.SingleWriter() {
			continue
		}
		// A single-writer volume cannot be mounted by two pods on two
		// nodes: only one copy may run, and the old one must stop before
		// the new one starts.
		if s.Strategy.Type != StrategyRecreate {
			c.add(f+".accessMode", "%s is single-writer, so the app cannot run two copies and strategy %q cannot work; use strategy.type: %s (or accessMode: %s on the replicated class)", v.AccessMode, s.Strategy.Type, StrategyRecreate, AccessReadWriteMany)
		}
		if s.Replicas != nil && *s.Replicas > 1 {
			c.add(f+".accessMode", "%s is single-writer, so replicas must be 1 (got %d); with strategy.type: %s (or accessMode: %s) the app works", v.AccessMode, *s.Replicas, StrategyRecreate, AccessReadWriteMany)
		}
	}
}

func (c *checker) check(f string, ch *Check, ports map[string]Port) {
	if ch == nil {
		return
	}
	switch {
	case ch.HTTP != "" && ch.TCP:
		c.add(f, "set http (a path) or tcp: true, not both")
	case ch.HTTP == "" && !ch.TCP:
		c.add(f, "set http (a path such as /healthz) or tcp: true")
	case ch.HTTP != "" && !strings.HasPrefix(ch.HTTP, "/"):
		c.add(f+".http", "%q must be a path starting with /", ch.HTTP)
	}
	if _, ok := ports[ch.Port]; !ok {
		c.add(f+".port", "%q is not the name of a port in ports", ch.Port)
	}
	if ch.Period.Duration < 0 {
		c.add(f+".period", "must not be negative")
	}
	if ch.FailureThreshold < 0 {
		c.add(f+".failureThreshold", "must not be negative")
	}
}

func (c *checker) resources(f string, r ResourceList) {
	for name, v := range map[string]string{"cpu": r.CPU, "memory": r.Memory} {
		if v == "" {
			continue
		}
		if q, err := resource.ParseQuantity(v); err != nil || q.Sign() <= 0 {
			c.add(f+"."+name, "%q is not a positive quantity such as \"100m\" or \"128Mi\"", v)
		}
	}
}

func (c *checker) strategy(s *AppSpec) {
	st := s.Strategy
	switch st.Type {
	case StrategyBlueGreen, StrategyRolling, StrategyRecreate:
	case StrategyCanary:
		if s.Replicas != nil && *s.Replicas < 2 {
			c.add("strategy.type", "canary needs at least 2 replicas to give any weight below 100%%; got replicas: %d", *s.Replicas)
		}
	default:
		c.add("strategy.type", "must be %s, %s, %s or %s, got %q", StrategyBlueGreen, StrategyCanary, StrategyRolling, StrategyRecreate, st.Type)
	}
	if st.BlueGreen.ScaleDownDelay.Duration < 0 {
		c.add("strategy.blueGreen.scaleDownDelay", "must not be negative")
	}
	if st.Canary.StepPause.Duration < 0 {
		c.add("strategy.canary.stepPause", "must not be negative")
	}
	prev := 0
	for i, w := range st.Canary.Steps {
		f := fmt.Sprintf("strategy.canary.steps[%d]", i)
		if w < 1 || w > 100 {
			c.add(f, "must be a weight in percent, 1-100, got %d", w)
		} else if w <= prev {
			c.add(f, "%d must be larger than the step before it (%d)", w, prev)
		}
		prev = w
	}
	if n := len(st.Canary.Steps); n > 0 && st.Canary.Steps[n-1] != 100 {
		c.add(fmt.Sprintf("strategy.canary.steps[%d]", n-1), "the last step must be 100, got %d", st.Canary.Steps[n-1])
	}
}

func (c *checker) probes(probes []HTTPProbe, ports map[string]Port) {
	for i, p := range probes {
		f := fmt.Sprintf("probes[%d]", i)
		if _, ok := ports[p.Port]; !ok {
			c.add(f+".port", "%q is not the name of a port in ports", p.Port)
		}
		if !strings.HasPrefix(p.Path, "/") {
			c.add(f+".path", "%q must start with /", p.Path)
		}
		if p.ExpectStatus < 100 || p.ExpectStatus > 599 {
			c.add(f+".expectStatus", "must be an HTTP status 100-599, got %d", p.ExpectStatus)
		}
		if p.BodyMatch != "" {
			if _, err := regexp.Compile(p.BodyMatch); err != nil {
				c.add(f+".bodyMatch", "not a valid regular expression: %v", err)
			}
		}
		if p.Successes < 1 {
			c.add(f+".successes", "must be at least 1, got %d", p.Successes)
		}
		if p.FailureThreshold < 1 {
			c.add(f+".failureThreshold", "must be at least 1 (bad answers in a row that fail the probe at once), got %d", p.FailureThreshold)
		}
		for name, d := range map[string]Duration{"interval": p.Interval, "timeout": p.Timeout, "maxLatency": p.MaxLatency} {
			if d.Duration <= 0 {
				c.add(f+"."+name, "must be positive, got %s", d.Duration)
			}
		}
	}
}

func (c *checker) analysis(a Analysis) {
	if a.MaxErrorRate != nil && (a.MaxErrorRate.Value < 0 || a.MaxErrorRate.Value > 100) {
		c.add("analysis.maxErrorRate", "must be 0%%-100%%, got %s", a.MaxErrorRate)
	}
	if a.MaxResponseTime.Duration <= 0 {
		c.add("analysis.maxResponseTime", "must be positive, got %s", a.MaxResponseTime.Duration)
	}
	if a.MinRequests < 1 {
		c.add("analysis.minRequests", "must be at least 1, got %d", a.MinRequests)
	}
	if a.Window.Duration < 2*time.Second {
		c.add("analysis.window", "must be at least 2s (the edge is sampled every second), got %s", a.Window.Duration)
	}
	if p := a.Prometheus; p != nil {
		if u, err := url.Parse(p.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.add("analysis.prometheus.address", "%q is not an http(s) URL; write Prometheus' base URL, e.g. http://prometheus.monitoring:9090", p.Address)
		} else if u.User != nil {
			c.add("analysis.prometheus.address", "%q holds a login; the app spec is not a place for credentials", u.Redacted())
		}
		if strings.TrimSpace(p.Query) == "" {
			c.add("analysis.prometheus.query", "is empty; write a PromQL instant query whose value fails the version above the threshold")
		} else if bad := unknownPlaceholders(p.Query); len(bad) > 0 {
			c.add("analysis.prometheus.query", "unknown placeholder %s; known: {{ color }}, {{ app }}, {{ namespace }}, {{ window }}", strings.Join(bad, ", "))
		}
		if p.Threshold == nil {
			c.add("analysis.prometheus.threshold", "is missing: a value above it fails the version")
		}
	}
}

// scpLike is git's [user@]host:path form of a repository.
var scpLike = regexp.MustCompile(`^([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+:[^/].*$`)

func (c *checker) source(s Source) {
	r := s.Repository
	if r == "" {
		return
	}
	if u, err := url.Parse(r); err == nil && u.Scheme != "" && u.Host != "" {
		if _, hasPassword := u.User.Password(); hasPassword || (u.User != nil && u.Scheme != "ssh") {
			c.add("source.repository", "%q holds a login; write the URL without it (the provenance records it without one)", u.Redacted())
		}
		if strings.Trim(u.Path, "/") == "" {
			c.add("source.repository", "%q names no repository on %s; write the whole URL, like https://%s/team/app", r, u.Host, u.Host)
		}
		return
	}
	if !scpLike.MatchString(r) {
		c.add("source.repository", "%q is not a repository URL; write it as the clone URL, like https://git.example.com/team/app or git@git.example.com:team/app.git", r)
	}
}
