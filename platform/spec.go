// Package platform bootstraps and checks the company's production platform:
// k3s on db1-3 and www1-3, MetalLB, Longhorn, Rancher, Harbor, Keycloak and
// Jenkins, all logging in against the company's UCS directory. Everything it
// does starts from one file, platform.yaml (Spec).
package platform

// APIVersion and Kind name the platform.yaml format, so a future change of
// shape can be told apart from a typo.
const (
	APIVersion = "tsys-ci.io/v1"
	Kind       = "Platform"
)

// Host roles. A server runs k3s with embedded etcd; an agent runs workloads.
const (
	RoleServer = "server"
	RoleAgent  = "agent"
)

// Spec is platform.yaml: the whole platform described in one file.
type Spec struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Name names the cluster (used in comments and labels only).
	Name       string               `json:"name"`
	Hosts      []Host               `json:"hosts"`
	K3s        K3s                  `json:"k3s"`
	MetalLB    MetalLB              `json:"metallb"`
	Storage    Storage              `json:"storage"`
	Domains    Domains              `json:"domains"`
	LDAP       LDAP                 `json:"ldap"`
	Components map[string]Component `json:"components,omitempty"`
	// DataServices are the company's PostgreSQL and Redis, for every
	// component that keeps state.
	DataServices DataServices `json:"dataServices,omitempty"`
	// PaaS is tsys-ci's own layer: the promote pool and tsys-ci serve.
	PaaS PaaS `json:"paas,omitempty"`
	// Gateway is the API gateway (k3s's Traefik), nil when platform.yaml
	// has none.
	Gateway *Gateway `json:"gateway,omitempty"`
}

// Host is one machine of the platform.
type Host struct {
	Name string `json:"name"`
	// Address is the node IP k3s must use (node-ip); pinning it avoids the
	// wrong-NIC failure that breaks MetalLB's memberlist.
	Address string `json:"address"`
	// Role is server or agent.
	Role string `json:"role"`
	// JoinLast marks a host that joins after every other (www1: today's
	// production server).
	JoinLast bool `json:"joinLast,omitempty"`
	// FlannelIface pins flannel to one interface on multi-NIC hosts.
	FlannelIface string `json:"flannelIface,omitempty"`
	// Labels are extra node labels.
	Labels map[string]string `json:"labels,omitempty"`
}

// K3s holds the k3s version and every setting that must be identical on
// all servers ("critical configuration values": a mismatch stops a server
// joining with "critical configuration value mismatch").
type K3s struct {
	Version string `json:"version"`
	// RegistrationAddress is the fixed address (VIP or DNS name) new nodes
	// register against; it goes into every server's tls-san.
	RegistrationAddress string `json:"registrationAddress"`
	// RegistrationPort defaults to 6443.
	RegistrationPort int `json:"registrationPort,omitempty"`
	// TokenFile is the path of the shared token on each host; the token
	// itself never appears in platform.yaml.
	TokenFile string   `json:"tokenFile"`
	TLSSANs   []string `json:"tlsSANs,omitempty"`

	ClusterCIDR            string   `json:"clusterCIDR"`
	ServiceCIDR            string   `json:"serviceCIDR"`
	ClusterDNS             string   `json:"clusterDNS"`
	ClusterDomain          string   `json:"clusterDomain"`
	Disable                []string `json:"disable"`
	FlannelBackend         string   `json:"flannelBackend,omitempty"`
	SecretsEncryption      bool     `json:"secretsEncryption,omitempty"`
	DisableNetworkPolicy   bool     `json:"disableNetworkPolicy,omitempty"`
	DisableHelmController  bool     `json:"disableHelmController,omitempty"`
	DisableCloudController bool     `json:"disableCloudController,omitempty"`
	DisableKubeProxy       bool     `json:"disableKubeProxy,omitempty"`
	EmbeddedRegistry       bool     `json:"embeddedRegistry,omitempty"`
	EgressSelectorMode     string   `json:"egressSelectorMode,omitempty"`
	ServerTaints           []string `json:"serverTaints,omitempty"`
	KubeAPIServerArgs      []string `json:"kubeAPIServerArgs,omitempty"`
	EtcdSnapshotCron       string   `json:"etcdSnapshotCron,omitempty"`
	EtcdSnapshotRetention  int      `json:"etcdSnapshotRetention,omitempty"`
	// NodeFailure is how fast a node that stopped answering is noticed
	// and its pods taken out of the Services' endpoints (defaults:
	// DefaultNodeFailure; reasons in docs/platform.md, "Node failure").
	NodeFailure NodeFailure `json:"nodeFailure"`
}

// NodeFailure holds the timings of a node's death, as Kubernetes flags and
// kubelet settings. A node whose lease is older than NodeMonitorGracePeriod
// is marked not ready, and its pods leave every Service's endpoints; its
// pods are evicted PodEvictionSeconds later.
type NodeFailure struct {
	// NodeMonitorGracePeriod: kube-controller-manager
	// --node-monitor-grace-period (Kubernetes default 50s).
	NodeMonitorGracePeriod string `json:"nodeMonitorGracePeriod,omitempty"`
	// NodeMonitorPeriod: kube-controller-manager --node-monitor-period,
	// how often the leases are checked (default 5s).
	NodeMonitorPeriod string `json:"nodeMonitorPeriod,omitempty"`
	// NodeLeaseDurationSeconds: the kubelet's nodeLeaseDurationSeconds;
	// the lease is renewed every quarter of it (default 40).
	NodeLeaseDurationSeconds int `json:"nodeLeaseDurationSeconds,omitempty"`
	// NodeStatusUpdateFrequency: the kubelet's nodeStatusUpdateFrequency,
	// also its heartbeat requests' timeout (default 10s).
	NodeStatusUpdateFrequency string `json:"nodeStatusUpdateFrequency,omitempty"`
	// PodEvictionSeconds: kube-apiserver
	// --default-not-ready-toleration-seconds and
	// --default-unreachable-toleration-seconds (default 300).
	PodEvictionSeconds int `json:"podEvictionSeconds,omitempty"`
}

// MetalLB describes the L2 address pools.
type MetalLB struct {
	Pools []Pool `json:"pools"`
}

// Pool is one MetalLB IPAddressPool, announced in L2 mode.
type Pool struct {
	Name string `json:"name"`
	// Addresses are CIDRs or "first-last" ranges.
	Addresses  []string `json:"addresses"`
	AutoAssign *bool    `json:"autoAssign,omitempty"`
	// Interfaces limits the L2 announcements to these NICs.
	Interfaces []string `json:"interfaces,omitempty"`
}

// Storage describes Longhorn.
type Storage struct {
	// Nodes are the hosts whose disks hold replicas (labeled
	// node.longhorn.io/create-default-disk=true).
	Nodes []string `json:"nodes"`
	// ReplicaCount defaults to 3.
	ReplicaCount int `json:"replicaCount,omitempty"`
	// NodeDownPodDeletionPolicy defaults to
	// delete-both-statefulset-and-deployment-pod (Longhorn's own default,
	// do-nothing, leaves RWO pods stuck when a node dies).
	NodeDownPodDeletionPolicy string `json:"nodeDownPodDeletionPolicy,omitempty"`
	// DataPath defaults to /var/lib/longhorn/.
	DataPath string `json:"dataPath,omitempty"`
}

// Domains are the public host names (served through the HAProxy edge).
type Domains struct {
	Base     string `json:"base"`
	Rancher  string `json:"rancher,omitempty"`
	Harbor   string `json:"harbor,omitempty"`
	Keycloak string `json:"keycloak,omitempty"`
	Jenkins  string `json:"jenkins,omitempty"`
}

// LDAP is the company's directory (UCS) as every component sees it.
type LDAP struct {
	// URL is ldap://, ldaps:// (UCS OpenLDAP: 7389/7636 when Samba AD holds 389/636).
	URL      string `json:"url"`
	StartTLS bool   `json:"startTLS,omitempty"`
	// InsecurePlaintext accepts ldap:// without StartTLS, where bind
	// passwords cross the network in clear: a lab only. Without it such a
	// URL is refused (issue 17, finding 5), as serve.yaml refuses it.
	InsecurePlaintext bool `json:"insecurePlaintext,omitempty"`
	// CAFile verifies the directory's certificate.
	CAFile    string  `json:"caFile,omitempty"`
	BaseDN    string  `json:"baseDN"`
	Bind      Account `json:"bind"`
	UserBase  string  `json:"userBase"`
	GroupBase string  `json:"groupBase"`
	// UserFilter defaults to (univentionObjectType=users/user).
	UserFilter string `json:"userFilter,omitempty"`
	// LoginAttribute defaults to uid.
	LoginAttribute string `json:"loginAttribute,omitempty"`
	// GroupMembership is memberUid (posixGroup) or member / uniqueMember
	// (DN-valued); defaults to uniqueMember, which UCS groups carry.
	GroupMembership string `json:"groupMembership,omitempty"`
	// GroupObjectClass defaults by GroupMembership: posixGroup (memberUid),
	// groupOfNames (member), univentionGroup (uniqueMember, UCS).
	GroupObjectClass string `json:"groupObjectClass,omitempty"`
	// AdminGroup is the cn of the group whose members administer every component.
	AdminGroup string `json:"adminGroup"`
	// TestUser is a login name `platform ldap` looks up and checks in AdminGroup.
	TestUser string `json:"testUser,omitempty"`
}

// Account is an LDAP bind account. The password comes from an environment
// variable or a file, never from platform.yaml itself.
type Account struct {
	DN           string `json:"dn"`
	PasswordEnv  string `json:"passwordEnv,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
}

// Component is one Helm release of the platform.
type Component struct {
	Chart     string `json:"chart,omitempty"`
	Repo      string `json:"repo,omitempty"`
	Version   string `json:"version,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// Disabled leaves the component out of render and apply.
	Disabled bool `json:"disabled,omitempty"`
	// Bind overrides the LDAP bind account for this component.
	Bind *Account `json:"bind,omitempty"`
	// AdminGroup overrides LDAP.AdminGroup for this component.
	AdminGroup string `json:"adminGroup,omitempty"`
	// Values are merged over the rendered values (maps merge, everything
	// else replaces).
	Values map[string]any `json:"values,omitempty"`
}
