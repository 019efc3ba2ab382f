package doctor

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/tsys-group/tsys-ci/platform"
)

// gatewayWhy is why a gateway must not be a single point of failure.
const gatewayWhy = "every API behind the gateway (apps' api: sections) and all HTTP traffic the edge sends to Traefik enter through it; "

// renderedGateway judges Traefik's HelmChartConfig among render's
// manifests (manifests/gateway.yaml, or cluster-services.yaml without a
// gateway): the values k3s's helm controller will install Traefik with.
// Traefik's chart runs one replica and no PodDisruptionBudget unless its
// values say otherwise.
func (a *analysis) renderedGateway(extra []byte) error {
	for i, doc := range splitYAML(extra) {
		var o struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Spec struct {
				ValuesContent string `json:"valuesContent"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(doc, &o); err != nil {
			return fmt.Errorf("render's manifests, document %d: %w", i+1, err)
		}
		if o.Kind != "HelmChartConfig" || o.Metadata.Name != platform.GatewayChartConfig || o.Metadata.Namespace != platform.GatewayNamespace {
			continue
		}
		var values struct {
			Deployment struct {
				Replicas *int `json:"replicas"`
			} `json:"deployment"`
			PodDisruptionBudget struct {
				Enabled bool `json:"enabled"`
			} `json:"podDisruptionBudget"`
			TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints"`
			Affinity                  *corev1.Affinity                  `json:"affinity"`
		}
		object := "helmchartconfig/" + o.Metadata.Namespace + "/" + o.Metadata.Name
		if err := yaml.Unmarshal([]byte(o.Spec.ValuesContent), &values); err != nil {
			return fmt.Errorf("%s: spec.valuesContent: %w", object, err)
		}
		replicas := 1 // Traefik's chart default
		if values.Deployment.Replicas != nil {
			replicas = *values.Deployment.Replicas
		}
		if replicas < 2 {
			a.add(SeverityCritical, CheckRendered, object, fmt.Sprintf("gateway (Traefik): %d replica", replicas),
				gatewayWhy+"with one replica its node is a single point of failure for all of them.",
				"Set gateway.replicas to 2 or more in platform.yaml (leave it out for 2) and render again.")
			continue
		}
		podSpec := &corev1.PodSpec{TopologySpreadConstraints: values.TopologySpreadConstraints, Affinity: values.Affinity}
		if !spreadsOverNodes(podSpec) {
			a.add(SeverityWarning, CheckRendered, object, fmt.Sprintf("gateway (Traefik): %d replicas with nothing keeping them on different nodes", replicas),
				gatewayWhy+"replicas on one node fail together.",
				"Keep render's topologySpreadConstraints (do not replace them in gateway.values), or give pod anti-affinity on kubernetes.io/hostname.")
		}
		if !values.PodDisruptionBudget.Enabled {
			a.add(SeverityWarning, CheckRendered, object, "gateway (Traefik): no PodDisruptionBudget",
				gatewayWhy+"a node drain (k3s upgrade, maintenance) may evict every replica at once.",
				"Keep render's podDisruptionBudget (enabled: true, maxUnavailable: 1); do not turn it off in gateway.values.")
		}
	}
	return nil
}
