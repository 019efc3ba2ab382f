package platform

// gatewaySelector is the pod label Traefik's chart (k3s's packaged one
// too) gives its pods.
var gatewaySelector = map[string]string{"app.kubernetes.io/name": "traefik"}

// GatewayValues are the Traefik chart values of the gateway: Replicas
// pods, one per worker before any gets a second (tainted servers not
// counted, as promote spreads apps), a PodDisruptionBudget letting a drain
// take one at a time, and gateway.values merged over them.
func GatewayValues(spec *Spec) map[string]any {
	g := spec.Gateway
	values := map[string]any{
		"deployment":          obj{"replicas": g.Replicas},
		"podDisruptionBudget": obj{"enabled": true, "maxUnavailable": 1},
		"topologySpreadConstraints": []any{obj{
			"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
			"nodeTaintsPolicy": "Honor",
			"labelSelector":    obj{"matchLabels": gatewaySelector},
		}},
	}
	if len(g.TrustedProxies) > 0 {
		trusted := obj{"forwardedHeaders": obj{"trustedIPs": g.TrustedProxies}}
		values["ports"] = obj{"web": trusted, "websecure": trusted}
	}
	if len(g.Values) > 0 {
		values = mergeValues(values, g.Values)
	}
	return values
}

// gatewayObjects is manifests/gateway.yaml: Traefik's HelmChartConfig.
// k3s's helm controller upgrades its Traefik release whenever it changes.
func gatewayObjects(spec *Spec) []obj {
	if spec.Gateway == nil {
		return nil
	}
	return []obj{{
		"apiVersion": "helm.cattle.io/v1", "kind": "HelmChartConfig",
		"metadata": obj{"name": GatewayChartConfig, "namespace": GatewayNamespace},
		"spec":     obj{"valuesContent": mustYAML(GatewayValues(spec))},
	}}
}
