package platform

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// KubeletNodeFailureFile is where every host keeps the kubelet settings of
// k3s.nodeFailure (k3s passes it to the kubelet: kubelet-arg config=...;
// the kubelet has no flag for nodeLeaseDurationSeconds).
const KubeletNodeFailureFile = "/etc/rancher/k3s/kubelet-node-failure.yaml"

// StorageNodeLabel marks the nodes whose disks Longhorn uses when
// createDefaultDiskLabeledNodes is on.
const StorageNodeLabel = "node.longhorn.io/create-default-disk"

// k3sConfig is /etc/rancher/k3s/config.yaml; keys are k3s flag names.
type k3sConfig struct {
	ClusterInit           bool     `json:"cluster-init,omitempty"`
	Server                string   `json:"server,omitempty"`
	TokenFile             string   `json:"token-file"`
	NodeName              string   `json:"node-name"`
	NodeIP                string   `json:"node-ip"`
	FlannelIface          string   `json:"flannel-iface,omitempty"`
	NodeLabel             []string `json:"node-label,omitempty"`
	NodeTaint             []string `json:"node-taint,omitempty"`
	TLSSAN                []string `json:"tls-san,omitempty"`
	ClusterCIDR           string   `json:"cluster-cidr,omitempty"`
	ServiceCIDR           string   `json:"service-cidr,omitempty"`
	ClusterDNS            string   `json:"cluster-dns,omitempty"`
	ClusterDomain         string   `json:"cluster-domain,omitempty"`
	Disable               []string `json:"disable,omitempty"`
	FlannelBackend        string   `json:"flannel-backend,omitempty"`
	SecretsEncryption     bool     `json:"secrets-encryption,omitempty"`
	DisableNetworkPolicy  bool     `json:"disable-network-policy,omitempty"`
	DisableHelmController bool     `json:"disable-helm-controller,omitempty"`
	DisableCloudCtrl      bool     `json:"disable-cloud-controller,omitempty"`
	DisableKubeProxy      bool     `json:"disable-kube-proxy,omitempty"`
	EmbeddedRegistry      bool     `json:"embedded-registry,omitempty"`
	EgressSelectorMode    string   `json:"egress-selector-mode,omitempty"`
	KubeAPIServerArg      []string `json:"kube-apiserver-arg,omitempty"`
	KubeControllerMgrArg  []string `json:"kube-controller-manager-arg,omitempty"`
	KubeletArg            []string `json:"kubelet-arg,omitempty"`
	EtcdSnapshotCron      string   `json:"etcd-snapshot-schedule-cron,omitempty"`
	EtcdSnapshotRetention int      `json:"etcd-snapshot-retention,omitempty"`
}

func renderHosts(spec *Spec, out Rendered) error {
	order := spec.JoinOrder()
	servers := spec.Servers()
	storage := map[string]bool{}
	for _, n := range spec.Storage.Nodes {
		storage[n] = true
	}
	var orderText bytes.Buffer
	orderText.WriteString("# Join order: start k3s on each host in this order, waiting for each node to be Ready.\n")
	for i, h := range order {
		cfg := k3sConfig{
			TokenFile:    spec.K3s.TokenFile,
			NodeName:     h.Name,
			NodeIP:       h.Address,
			FlannelIface: h.FlannelIface,
			NodeLabel:    nodeLabels(h, storage[h.Name]),
			KubeletArg:   []string{"config=" + KubeletNodeFailureFile},
		}
		var note string
		if h.Role == RoleServer {
			serverSettings(spec, &cfg)
			if h.Name == servers[0].Name {
				cfg.ClusterInit = true
				note = "first server: initialises the cluster (embedded etcd)"
			} else {
				cfg.Server = spec.RegistrationURL()
				note = "server: joins through the registration address"
			}
		} else {
			cfg.Server = spec.RegistrationURL()
			note = "agent"
		}
		if h.JoinLast {
			note += "; JOINS LAST (joinLast: true): only after every other host is Ready"
		}
		body, err := yaml.Marshal(cfg)
		if err != nil {
			return fmt.Errorf("rendering k3s config of %s: %w", h.Name, err)
		}
		path := "hosts/" + h.Name + "/config.yaml"
		out[path] = append(header(
			fmt.Sprintf("Install as /etc/rancher/k3s/config.yaml on %s (%s), k3s %s.", h.Name, h.Address, spec.K3s.Version),
			fmt.Sprintf("Join order %d of %d: %s.", i+1, len(order), note),
		), body...)
		out["hosts/"+h.Name+"/kubelet-node-failure.yaml"] = append(header(
			fmt.Sprintf("Install as %s on %s (%s): config.yaml's kubelet-arg names it.", KubeletNodeFailureFile, h.Name, h.Address),
			"Node-failure timings (k3s.nodeFailure; reasons in docs/platform.md, \"Node failure\").",
		), kubeletNodeFailure(spec.K3s.NodeFailure)...)
		fmt.Fprintf(&orderText, "%d %s %s %s%s\n", i+1, h.Name, h.Role, h.Address, map[bool]string{true: " (join last)"}[h.JoinLast])
	}
	out["hosts/JOIN-ORDER.txt"] = orderText.Bytes()
	return nil
}

func nodeLabels(h Host, storage bool) []string {
	var labels []string
	for _, k := range slices.Sorted(maps.Keys(h.Labels)) {
		labels = append(labels, k+"="+h.Labels[k])
	}
	if storage {
		labels = append(labels, StorageNodeLabel+"=true")
	}
	return labels
}

// serverSettings copies the values that must be identical on every server.
func serverSettings(spec *Spec, cfg *k3sConfig) {
	k := spec.K3s
	cfg.TLSSAN = append([]string{k.RegistrationAddress}, k.TLSSANs...)
	cfg.ClusterCIDR, cfg.ServiceCIDR = k.ClusterCIDR, k.ServiceCIDR
	cfg.ClusterDNS, cfg.ClusterDomain = k.ClusterDNS, k.ClusterDomain
	cfg.Disable = append([]string(nil), k.Disable...)
	cfg.FlannelBackend = k.FlannelBackend
	cfg.SecretsEncryption = k.SecretsEncryption
	cfg.DisableNetworkPolicy = k.DisableNetworkPolicy
	cfg.DisableHelmController = k.DisableHelmController
	cfg.DisableCloudCtrl = k.DisableCloudController
	cfg.DisableKubeProxy = k.DisableKubeProxy
	cfg.EmbeddedRegistry = k.EmbeddedRegistry
	cfg.EgressSelectorMode = k.EgressSelectorMode
	cfg.NodeTaint = append([]string(nil), k.ServerTaints...)
	nf := k.NodeFailure
	cfg.KubeAPIServerArg = append(append([]string(nil), k.KubeAPIServerArgs...),
		fmt.Sprintf("default-not-ready-toleration-seconds=%d", nf.PodEvictionSeconds),
		fmt.Sprintf("default-unreachable-toleration-seconds=%d", nf.PodEvictionSeconds))
	cfg.KubeControllerMgrArg = []string{
		"node-monitor-grace-period=" + nf.NodeMonitorGracePeriod,
		"node-monitor-period=" + nf.NodeMonitorPeriod,
	}
	cfg.EtcdSnapshotCron = k.EtcdSnapshotCron
	cfg.EtcdSnapshotRetention = k.EtcdSnapshotRetention
}

// kubeletNodeFailure is the KubeletConfiguration holding the kubelet's part
// of the node-failure timings; the kubelet merges it with k3s's defaults.
func kubeletNodeFailure(nf NodeFailure) []byte {
	return fmt.Appendf(nil, `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
nodeLeaseDurationSeconds: %d
nodeStatusUpdateFrequency: %s
`, nf.NodeLeaseDurationSeconds, nf.NodeStatusUpdateFrequency)
}

// taintParts splits key[=value]:Effect.
func taintParts(t string) (key, value, effect string) {
	kv, effect, _ := strings.Cut(t, ":")
	key, value, _ = strings.Cut(kv, "=")
	return key, value, effect
}
