package edge

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tsys-group/tsys-ci/internal/contract"
)

// Exposure is one entry of the tsys-ci.io/edge annotation: how one Service
// port is reached from outside. Exactly one of Hosts (HTTP routed by host
// name on the edge's HTTPS frontend) and TCPFrontendPort (TCP passed through
// on that port of the edge) is set.
type Exposure struct {
	Port            string   `json:"port"`
	Hosts           []string `json:"hosts,omitempty"`
	TCPFrontendPort int      `json:"tcpFrontendPort,omitempty"`
	// ResendAfterMs, on an HTTP port, is how long a version's section
	// waits for an answer before it sends an idempotent request again to
	// another node (rollout's Port.ResendAfter); 0 waits a minute.
	ResendAfterMs int `json:"resendAfterMs,omitempty"`
	// Sticky, on an HTTP port, keeps a browser on the version that first
	// answered it while that version has weight (a cookie; rollout's
	// Port.Sticky).
	Sticky bool `json:"sticky,omitempty"`
}

// ParseAnnotation parses and checks the value of the tsys-ci.io/edge
// annotation. It is strict (unknown fields are errors) so that a typo such as
// "host" for "hosts" is reported instead of silently exposing nothing.
func ParseAnnotation(value string) ([]Exposure, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(value)))
	dec.DisallowUnknownFields()
	var list []Exposure
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("annotation %s is not a JSON list of {\"port\":NAME,\"hosts\":[...]} or {\"port\":NAME,\"tcpFrontendPort\":N}: %v", contract.AnnotationEdge, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("annotation %s has data after its JSON list", contract.AnnotationEdge)
	}
	if list == nil {
		return nil, fmt.Errorf("annotation %s is null; use [] to expose nothing", contract.AnnotationEdge)
	}
	seen := map[string]bool{}
	for i, e := range list {
		if err := e.check(); err != nil {
			return nil, fmt.Errorf("annotation %s entry %d: %w", contract.AnnotationEdge, i, err)
		}
		if seen[e.Port] {
			return nil, fmt.Errorf("annotation %s names port %q twice; merge its entries", contract.AnnotationEdge, e.Port)
		}
		seen[e.Port] = true
	}
	return list, nil
}

func (e Exposure) check() error {
	if e.Port == "" {
		return fmt.Errorf(`"port" (the Service port name) is missing`)
	}
	if len(e.Hosts) > 0 && e.TCPFrontendPort != 0 {
		return fmt.Errorf("port %q has both \"hosts\" and \"tcpFrontendPort\"; an exposed port is either HTTP by host name or TCP pass-through", e.Port)
	}
	if len(e.Hosts) == 0 && e.TCPFrontendPort == 0 {
		return fmt.Errorf("port %q has neither \"hosts\" nor \"tcpFrontendPort\"", e.Port)
	}
	if e.TCPFrontendPort != 0 && (e.TCPFrontendPort < 1 || e.TCPFrontendPort > 65535) {
		return fmt.Errorf("port %q: tcpFrontendPort %d is not a TCP port (1-65535)", e.Port, e.TCPFrontendPort)
	}
	if e.Sticky && len(e.Hosts) == 0 {
		return fmt.Errorf("port %q: sticky is for HTTP ports with hosts; a TCP pass-through has no cookie", e.Port)
	}
	if e.ResendAfterMs != 0 {
		switch {
		case len(e.Hosts) == 0:
			return fmt.Errorf("port %q: resendAfterMs is for HTTP ports with hosts; a TCP pass-through is never resent", e.Port)
		case e.ResendAfterMs < contract.ResendAfterMinMs || e.ResendAfterMs > contract.ResendAfterMaxMs:
			return fmt.Errorf("port %q: resendAfterMs %d is out of range (%d-%d)", e.Port, e.ResendAfterMs, contract.ResendAfterMinMs, contract.ResendAfterMaxMs)
		}
	}
	hosts := map[string]bool{}
	for _, h := range e.Hosts {
		if err := ValidateHost(h); err != nil {
			return fmt.Errorf("port %q: %w", e.Port, err)
		}
		if hosts[h] {
			return fmt.Errorf("port %q lists host %q twice", e.Port, h)
		}
		hosts[h] = true
	}
	return nil
}
