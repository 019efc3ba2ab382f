package platform

import (
	"net"
	"strconv"
)

// Component names, in the order they are installed: the load balancer and
// storage first, then the identity provider the others may use, then the
// services that log in against the directory.
var ComponentOrder = []string{"metallb", "longhorn", "keycloak", "rancher", "harbor", "jenkins"}

// componentDefaults are the chart, repository and namespace of each
// component when platform.yaml does not name them. Versions have no default:
// every chart is pinned in platform.yaml.
var componentDefaults = map[string]Component{
	"metallb":  {Chart: "metallb", Repo: "https://metallb.github.io/metallb", Namespace: "metallb-system"},
	"longhorn": {Chart: "longhorn", Repo: "https://charts.longhorn.io", Namespace: "longhorn-system"},
	"keycloak": {Chart: "keycloak", Repo: "oci://registry-1.docker.io/bitnamicharts", Namespace: "keycloak"},
	"rancher":  {Chart: "rancher", Repo: "https://releases.rancher.com/server-charts/stable", Namespace: "cattle-system"},
	"harbor":   {Chart: "harbor", Repo: "https://helm.goharbor.io", Namespace: "harbor"},
	"jenkins":  {Chart: "jenkins", Repo: "https://charts.jenkins.io", Namespace: "jenkins"},
}

// Defaults of the settings platform.yaml may leave out.
const (
	DefaultRegistrationPort          = 6443
	DefaultReplicaCount              = 3
	DefaultNodeDownPodDeletionPolicy = "delete-both-statefulset-and-deployment-pod"
	DefaultDataPath                  = "/var/lib/longhorn/"
	DefaultUserFilter                = "(univentionObjectType=users/user)"
	DefaultLoginAttribute            = "uid"
	DefaultGroupMembership           = "uniqueMember"
	DefaultFlannelBackend            = "vxlan"
)

// DefaultNodeFailure are the lab's node-failure timings (test/lab/config.go,
// measured in docs/lab.md): a frozen node's pods leave the endpoints about
// 16-18 s after it stopped, and a healthy node renews its lease six times
// within the grace period.
var DefaultNodeFailure = NodeFailure{
	NodeMonitorGracePeriod:    "16s",
	NodeMonitorPeriod:         "2s",
	NodeLeaseDurationSeconds:  10,
	NodeStatusUpdateFrequency: "4s",
	PodEvictionSeconds:        15,
}

func (s *Spec) applyDefaults() {
	k := &s.K3s
	if k.RegistrationPort == 0 {
		k.RegistrationPort = DefaultRegistrationPort
	}
	if k.FlannelBackend == "" {
		k.FlannelBackend = DefaultFlannelBackend
	}
	nf, def := &k.NodeFailure, DefaultNodeFailure
	if nf.NodeMonitorGracePeriod == "" {
		nf.NodeMonitorGracePeriod = def.NodeMonitorGracePeriod
	}
	if nf.NodeMonitorPeriod == "" {
		nf.NodeMonitorPeriod = def.NodeMonitorPeriod
	}
	if nf.NodeLeaseDurationSeconds == 0 {
		nf.NodeLeaseDurationSeconds = def.NodeLeaseDurationSeconds
	}
	if nf.NodeStatusUpdateFrequency == "" {
		nf.NodeStatusUpdateFrequency = def.NodeStatusUpdateFrequency
	}
	if nf.PodEvictionSeconds == 0 {
		nf.PodEvictionSeconds = def.PodEvictionSeconds
	}
	st := &s.Storage
	if st.ReplicaCount == 0 {
		st.ReplicaCount = DefaultReplicaCount
	}
	if st.NodeDownPodDeletionPolicy == "" {
		st.NodeDownPodDeletionPolicy = DefaultNodeDownPodDeletionPolicy
	}
	if st.DataPath == "" {
		st.DataPath = DefaultDataPath
	}
	d := &s.Domains
	for _, p := range []struct {
		field *string
		name  string
	}{{&d.Rancher, "rancher"}, {&d.Harbor, "harbor"}, {&d.Keycloak, "keycloak"}, {&d.Jenkins, "jenkins"}} {
		if *p.field == "" {
			*p.field = p.name + "." + d.Base
		}
	}
	l := &s.LDAP
	if l.UserFilter == "" {
		l.UserFilter = DefaultUserFilter
	}
	if l.LoginAttribute == "" {
		l.LoginAttribute = DefaultLoginAttribute
	}
	if l.GroupMembership == "" {
		l.GroupMembership = DefaultGroupMembership
	}
	if l.GroupObjectClass == "" {
		l.GroupObjectClass = map[string]string{"memberUid": "posixGroup", "member": "groupOfNames", "uniqueMember": "univentionGroup"}[l.GroupMembership]
	}
	s.PaaS.applyDefaults()
	s.Gateway.applyDefaults()
	s.DataServices.applyDefaults()
	for name, def := range componentDefaults {
		c := s.Components[name]
		if c.Chart == "" {
			c.Chart = def.Chart
		}
		if c.Repo == "" {
			c.Repo = def.Repo
		}
		if c.Namespace == "" {
			c.Namespace = def.Namespace
		}
		s.Components[name] = c
	}
}

// RegistrationURL is the URL joining servers and agents register against.
func (s *Spec) RegistrationURL() string {
	return "https://" + hostPort(s.K3s.RegistrationAddress, s.K3s.RegistrationPort)
}

func hostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// Servers returns the server hosts in file order; the first one initialises
// the cluster.
func (s *Spec) Servers() []Host { return s.hostsWithRole(RoleServer) }

// Agents returns the agent hosts in file order.
func (s *Spec) Agents() []Host { return s.hostsWithRole(RoleAgent) }

func (s *Spec) hostsWithRole(role string) []Host {
	var out []Host
	for _, h := range s.Hosts {
		if h.Role == role {
			out = append(out, h)
		}
	}
	return out
}

// JoinOrder returns every host in the order it joins the cluster: servers
// (the first initialises), then agents, then hosts marked joinLast.
func (s *Spec) JoinOrder() []Host {
	var first, last []Host
	for _, role := range []string{RoleServer, RoleAgent} {
		for _, h := range s.hostsWithRole(role) {
			if h.JoinLast {
				last = append(last, h)
			} else {
				first = append(first, h)
			}
		}
	}
	return append(first, last...)
}

// BindFor returns the bind account a component logs in to the directory with.
func (s *Spec) BindFor(component string) Account {
	if c := s.component(component); c.Bind != nil {
		return *c.Bind
	}
	return s.LDAP.Bind
}

// AdminGroupFor returns the cn of the group that administers a component.
func (s *Spec) AdminGroupFor(component string) string {
	if c, ok := s.Components[component]; ok && c.AdminGroup != "" {
		return c.AdminGroup
	}
	return s.LDAP.AdminGroup
}

// Enabled reports whether a component is rendered and installed.
func (s *Spec) Enabled(component string) bool {
	if component == ServeComponent {
		return s.PaaS.Serve != nil
	}
	c, ok := s.Components[component]
	return ok && !c.Disabled
}
