package platform

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Problem is one thing wrong in platform.yaml, at a field path such as
// hosts[2].address.
type Problem struct {
	Path    string
	Message string
}

// ValidationError lists every problem found, so one run shows them all.
type ValidationError struct {
	Problems []Problem
}

// BadInput marks platform.yaml as the user's to fix: the CLI exits 2 on it.
func (e *ValidationError) BadInput() bool { return true }

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "platform file has %d problem(s):", len(e.Problems))
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s: %s", p.Path, p.Message)
	}
	return b.String()
}

type validator struct{ problems []Problem }

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

var (
	dnsLabel       = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	dnsName        = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	k3sVersion     = regexp.MustCompile(`^v1\.[0-9]+\.[0-9]+\+k3s[0-9]+$`)
	chartVersion   = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$`)
	taintFormat    = regexp.MustCompile(`^[A-Za-z0-9./-]+(=[A-Za-z0-9._-]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$`)
	envVarName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	k3sDisablables = []string{"coredns", "servicelb", "traefik", "local-storage", "metrics-server", "runtimes"}
)

// Validate checks the whole file and returns a *ValidationError naming
// every problem by field path, or nil.
func (s *Spec) Validate() error {
	v := &validator{}
	if s.APIVersion != APIVersion {
		v.add("apiVersion", "is %q, want %q", s.APIVersion, APIVersion)
	}
	if s.Kind != Kind {
		v.add("kind", "is %q, want %q", s.Kind, Kind)
	}
	hosts := v.hosts(s.Hosts)
	v.k3s(&s.K3s)
	v.metallb(&s.MetalLB, s.Hosts)
	v.storage(&s.Storage, hosts)
	v.domains(&s.Domains)
	v.ldap(&s.LDAP)
	v.components(s.Components)
	v.dataServices(s)
	v.paas(s)
	v.gateway(s)
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems}
}

// hosts validates the host list and returns the hosts by name.
func (v *validator) hosts(hosts []Host) map[string]Host {
	byName := map[string]Host{}
	addrs := map[string]string{}
	servers := 0
	if len(hosts) == 0 {
		v.add("hosts", "no hosts; list every machine with name, address and role")
	}
	for i, h := range hosts {
		p := fmt.Sprintf("hosts[%d]", i)
		if !dnsLabel.MatchString(h.Name) {
			v.add(p+".name", "%q is not a lowercase host name (letters, digits, '-')", h.Name)
		} else if _, dup := byName[h.Name]; dup {
			v.add(p+".name", "%q appears twice; k3s refuses two nodes with one name", h.Name)
		}
		byName[h.Name] = h
		if ip, err := netip.ParseAddr(h.Address); err != nil {
			v.add(p+".address", "%q is not an IP address", h.Address)
		} else if other, dup := addrs[ip.String()]; dup {
			v.add(p+".address", "%s is also the address of %s", h.Address, other)
		} else {
			addrs[ip.String()] = h.Name
		}
		switch h.Role {
		case RoleServer:
			if servers == 0 && h.JoinLast {
				v.add(p+".joinLast", "the first server initialises the cluster and cannot join last")
			}
			servers++
		case RoleAgent:
		default:
			v.add(p+".role", "is %q, want %q or %q", h.Role, RoleServer, RoleAgent)
		}
		for k := range h.Labels {
			if k == "" || strings.ContainsAny(k, " =,") {
				v.add(fmt.Sprintf("%s.labels[%q]", p, k), "is not a valid label key")
			}
		}
	}
	if len(hosts) > 0 && servers == 0 {
		v.add("hosts", "no host has role server; the first server initialises the cluster")
	} else if servers%2 == 0 && servers > 0 {
		v.add("hosts", "%d servers: embedded etcd needs an odd number (3 tolerates losing one)", servers)
	}
	return byName
}

func (v *validator) k3s(k *K3s) {
	if !k3sVersion.MatchString(k.Version) {
		v.add("k3s.version", "%q is not a k3s release such as v1.33.13+k3s2; pin one inside Rancher's support range", k.Version)
	}
	if k.RegistrationAddress == "" {
		v.add("k3s.registrationAddress", "missing; set the fixed address (VIP or DNS name) nodes register against")
	} else if _, err := netip.ParseAddr(k.RegistrationAddress); err != nil && !dnsName.MatchString(k.RegistrationAddress) {
		v.add("k3s.registrationAddress", "%q is neither an IP address nor a DNS name (no scheme or port here)", k.RegistrationAddress)
	}
	if k.RegistrationPort < 0 || k.RegistrationPort > 65535 {
		v.add("k3s.registrationPort", "%d is not a TCP port", k.RegistrationPort)
	}
	if !filepath.IsAbs(k.TokenFile) {
		v.add("k3s.tokenFile", "%q is not an absolute path; the token lives in a file on each host, never in platform.yaml", k.TokenFile)
	}
	for i, san := range k.TLSSANs {
		if _, err := netip.ParseAddr(san); err != nil && !dnsName.MatchString(san) {
			v.add(fmt.Sprintf("k3s.tlsSANs[%d]", i), "%q is neither an IP address nor a DNS name", san)
		}
	}
	cluster := v.prefix("k3s.clusterCIDR", k.ClusterCIDR)
	service := v.prefix("k3s.serviceCIDR", k.ServiceCIDR)
	if cluster.IsValid() && service.IsValid() && cluster.Overlaps(service) {
		v.add("k3s.serviceCIDR", "%s overlaps clusterCIDR %s", service, cluster)
	}
	if dns, err := netip.ParseAddr(k.ClusterDNS); err != nil {
		v.add("k3s.clusterDNS", "%q is not an IP address", k.ClusterDNS)
	} else if service.IsValid() && !service.Contains(dns) {
		v.add("k3s.clusterDNS", "%s is outside serviceCIDR %s", dns, service)
	}
	if !dnsName.MatchString(k.ClusterDomain) {
		v.add("k3s.clusterDomain", "%q is not a DNS name (k3s default: cluster.local)", k.ClusterDomain)
	}
	hasServiceLB := false
	for i, d := range k.Disable {
		if !slices.Contains(k3sDisablables, d) {
			v.add(fmt.Sprintf("k3s.disable[%d]", i), "%q is not a k3s component; known: %s", d, strings.Join(k3sDisablables, ", "))
		}
		hasServiceLB = hasServiceLB || d == "servicelb"
	}
	if !hasServiceLB {
		v.add("k3s.disable", "must contain servicelb: k3s's own load balancer fights MetalLB over every Service's address")
	}
	if k.FlannelBackend != "" && !slices.Contains([]string{"vxlan", "host-gw", "wireguard-native", "none"}, k.FlannelBackend) {
		v.add("k3s.flannelBackend", "%q is not vxlan, host-gw, wireguard-native or none", k.FlannelBackend)
	}
	if k.EgressSelectorMode != "" && !slices.Contains([]string{"agent", "cluster", "pod", "disabled"}, k.EgressSelectorMode) {
		v.add("k3s.egressSelectorMode", "%q is not agent, cluster, pod or disabled", k.EgressSelectorMode)
	}
	for i, t := range k.ServerTaints {
		if !taintFormat.MatchString(t) {
			v.add(fmt.Sprintf("k3s.serverTaints[%d]", i), "%q is not key[=value]:NoSchedule|PreferNoSchedule|NoExecute", t)
		} else if strings.HasSuffix(t, ":NoExecute") {
			v.add(fmt.Sprintf("k3s.serverTaints[%d]", i), "%q evicts Longhorn's CSI plugin and MetalLB's speakers from the servers; use NoSchedule", t)
		}
	}
	for i, a := range k.KubeAPIServerArgs {
		if strings.HasPrefix(a, "-") || !strings.Contains(a, "=") {
			v.add(fmt.Sprintf("k3s.kubeAPIServerArgs[%d]", i), "%q: write name=value without leading dashes", a)
		}
	}
	v.nodeFailure(k.NodeFailure, k.KubeAPIServerArgs)
	if k.EtcdSnapshotCron != "" && len(strings.Fields(k.EtcdSnapshotCron)) != 5 {
		v.add("k3s.etcdSnapshotCron", "%q is not a five-field cron expression", k.EtcdSnapshotCron)
	}
	if k.EtcdSnapshotRetention < 0 {
		v.add("k3s.etcdSnapshotRetention", "%d is negative", k.EtcdSnapshotRetention)
	}
}

// nodeFailure checks k3s.nodeFailure as it will be once defaulted: each
// value well-formed, and a grace period that a healthy node's lease
// renewals and heartbeats fit into several times over.
func (v *validator) nodeFailure(nf NodeFailure, apiServerArgs []string) {
	const path = "k3s.nodeFailure"
	def := DefaultNodeFailure
	dur := func(field, s, fallback string) time.Duration {
		if s == "" {
			s = fallback
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			v.add(path+"."+field, "%q is not a positive duration such as %q", s, fallback)
			return 0
		}
		return d
	}
	grace := dur("nodeMonitorGracePeriod", nf.NodeMonitorGracePeriod, def.NodeMonitorGracePeriod)
	period := dur("nodeMonitorPeriod", nf.NodeMonitorPeriod, def.NodeMonitorPeriod)
	status := dur("nodeStatusUpdateFrequency", nf.NodeStatusUpdateFrequency, def.NodeStatusUpdateFrequency)
	lease := nf.NodeLeaseDurationSeconds
	if lease < 0 {
		v.add(path+".nodeLeaseDurationSeconds", "%d is negative (leave it out for %d)", lease, def.NodeLeaseDurationSeconds)
	}
	if lease <= 0 {
		lease = def.NodeLeaseDurationSeconds
	}
	if nf.PodEvictionSeconds < 0 {
		v.add(path+".podEvictionSeconds", "%d is negative (leave it out for %d)", nf.PodEvictionSeconds, def.PodEvictionSeconds)
	}
	leaseDur := time.Duration(lease) * time.Second
	if grace > 0 && grace < leaseDur {
		v.add(path+".nodeMonitorGracePeriod", "%s is shorter than the node lease (%s, renewed every quarter of it): fewer than four renewals fit in it and one slow renewal marks a healthy node not ready", grace, leaseDur)
	}
	if grace > 0 && period > 0 && 2*period > grace {
		v.add(path+".nodeMonitorPeriod", "%s: the leases must be checked at least twice within nodeMonitorGracePeriod (%s)", period, grace)
	}
	if grace > 0 && status > 0 && 2*status > grace {
		v.add(path+".nodeStatusUpdateFrequency", "%s: a kubelet must be able to try at least twice within nodeMonitorGracePeriod (%s)", status, grace)
	}
	for i, a := range apiServerArgs {
		name, _, _ := strings.Cut(a, "=")
		if name == "default-not-ready-toleration-seconds" || name == "default-unreachable-toleration-seconds" {
			v.add(fmt.Sprintf("k3s.kubeAPIServerArgs[%d]", i), "%q: set k3s.nodeFailure.podEvictionSeconds instead (render writes both flags from it)", a)
		}
	}
}

func (v *validator) prefix(path, s string) netip.Prefix {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		v.add(path, "%q is not a CIDR such as 10.42.0.0/16", s)
		return netip.Prefix{}
	}
	if p.Masked() != p {
		v.add(path, "%s has host bits set; did you mean %s?", s, p.Masked())
	}
	return p.Masked()
}

func (v *validator) metallb(m *MetalLB, hosts []Host) {
	if len(m.Pools) == 0 {
		v.add("metallb.pools", "no address pool; MetalLB hands out no address without one")
	}
	names := map[string]bool{}
	var ranges []addrRange
	for i, pool := range m.Pools {
		p := fmt.Sprintf("metallb.pools[%d]", i)
		if !dnsLabel.MatchString(pool.Name) {
			v.add(p+".name", "%q is not a lowercase name", pool.Name)
		} else if names[pool.Name] {
			v.add(p+".name", "%q appears twice", pool.Name)
		}
		names[pool.Name] = true
		if len(pool.Addresses) == 0 {
			v.add(p+".addresses", "empty; give CIDRs or first-last ranges outside DHCP")
		}
		for j, a := range pool.Addresses {
			ap := fmt.Sprintf("%s.addresses[%d]", p, j)
			r, err := parseRange(a)
			if err != nil {
				v.add(ap, "%v", err)
				continue
			}
			for _, other := range ranges {
				if r.overlaps(other) {
					v.add(ap, "%s overlaps %s", a, other.text)
				}
			}
			for _, h := range hosts {
				if ip, err := netip.ParseAddr(h.Address); err == nil && r.contains(ip) {
					v.add(ap, "%s contains %s, the address of host %s", a, h.Address, h.Name)
				}
			}
			ranges = append(ranges, r)
		}
		for j, iface := range pool.Interfaces {
			if iface == "" || strings.ContainsAny(iface, " /") {
				v.add(fmt.Sprintf("%s.interfaces[%d]", p, j), "%q is not an interface name", iface)
			}
		}
	}
}

type addrRange struct {
	first, last netip.Addr
	text        string
}

func (r addrRange) contains(ip netip.Addr) bool {
	return r.first.Compare(ip) <= 0 && ip.Compare(r.last) <= 0
}

func (r addrRange) overlaps(o addrRange) bool {
	return r.first.Is4() == o.first.Is4() && r.first.Compare(o.last) <= 0 && o.first.Compare(r.last) <= 0
}

// parseRange reads a MetalLB address entry: a CIDR or "first-last".
func parseRange(s string) (addrRange, error) {
	if first, last, ok := strings.Cut(s, "-"); ok {
		a, errA := netip.ParseAddr(strings.TrimSpace(first))
		b, errB := netip.ParseAddr(strings.TrimSpace(last))
		if errA != nil || errB != nil {
			return addrRange{}, fmt.Errorf("%q is not a range of two IP addresses such as 10.0.0.10-10.0.0.20", s)
		}
		if a.Is4() != b.Is4() || b.Less(a) {
			return addrRange{}, fmt.Errorf("%q: the last address is before the first or of another family", s)
		}
		return addrRange{a, b, s}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return addrRange{}, fmt.Errorf("%q is neither a CIDR nor a first-last range", s)
	}
	p = p.Masked()
	first := p.Addr()
	bits := first.BitLen() - p.Bits()
	last := first.AsSlice()
	for i := len(last) - 1; i >= 0 && bits > 0; i-- {
		n := min(bits, 8)
		last[i] |= byte(1<<n - 1)
		bits -= n
	}
	l, _ := netip.AddrFromSlice(last)
	return addrRange{first, l, s}, nil
}

func (v *validator) storage(st *Storage, hosts map[string]Host) {
	if len(st.Nodes) == 0 {
		v.add("storage.nodes", "no storage nodes; list the hosts whose disks hold Longhorn replicas (db1-3)")
	}
	seen := map[string]bool{}
	for i, n := range st.Nodes {
		if _, ok := hosts[n]; !ok {
			v.add(fmt.Sprintf("storage.nodes[%d]", i), "%q is not one of hosts[].name", n)
		}
		if seen[n] {
			v.add(fmt.Sprintf("storage.nodes[%d]", i), "%q appears twice", n)
		}
		seen[n] = true
	}
	replicas := st.ReplicaCount
	if replicas == 0 {
		replicas = DefaultReplicaCount
	}
	if replicas < 1 || replicas > 20 {
		v.add("storage.replicaCount", "%d is outside Longhorn's 1-20", st.ReplicaCount)
	} else if len(st.Nodes) > 0 && replicas > len(seen) {
		v.add("storage.replicaCount", "%d replicas need %d storage nodes (one replica per node), have %d", replicas, replicas, len(seen))
	}
	policies := []string{"do-nothing", "delete-statefulset-pod", "delete-deployment-pod", "delete-both-statefulset-and-deployment-pod"}
	if st.NodeDownPodDeletionPolicy != "" && !slices.Contains(policies, st.NodeDownPodDeletionPolicy) {
		v.add("storage.nodeDownPodDeletionPolicy", "%q is not one of %s", st.NodeDownPodDeletionPolicy, strings.Join(policies, ", "))
	}
	if st.DataPath != "" && !filepath.IsAbs(st.DataPath) {
		v.add("storage.dataPath", "%q is not an absolute path", st.DataPath)
	}
}

func (v *validator) domains(d *Domains) {
	if !dnsName.MatchString(d.Base) || !strings.Contains(d.Base, ".") {
		v.add("domains.base", "%q is not a DNS domain such as tsys.example", d.Base)
	}
	for _, f := range [][2]string{{"domains.rancher", d.Rancher}, {"domains.harbor", d.Harbor}, {"domains.keycloak", d.Keycloak}, {"domains.jenkins", d.Jenkins}} {
		if f[1] != "" && !dnsName.MatchString(f[1]) {
			v.add(f[0], "%q is not a DNS name", f[1])
		}
	}
}

func (v *validator) ldap(l *LDAP) {
	u, err := url.Parse(l.URL)
	switch {
	case l.URL == "":
		v.add("ldap.url", "missing; the directory's ldap:// or ldaps:// URL (UCS OpenLDAP: 7389/7636 when Samba AD holds 389/636)")
	case err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" || (u.Path != "" && u.Path != "/"):
		v.add("ldap.url", "%q is not ldap://host[:port] or ldaps://host[:port]", l.URL)
	case u.Scheme == "ldaps" && l.StartTLS:
		v.add("ldap.startTLS", "StartTLS is for ldap:// URLs; ldaps:// is TLS already")
	case u.Port() != "":
		if _, err := net.LookupPort("tcp", u.Port()); err != nil {
			v.add("ldap.url", "port %q is not a TCP port", u.Port())
		}
	}
	if err == nil && u.Scheme == "ldap" && !l.StartTLS && !l.InsecurePlaintext {
		v.add("ldap.startTLS", "%s without StartTLS sends the bind password and every login's password in clear; set startTLS: true, use ldaps://, or set insecurePlaintext: true (a lab only)", l.URL)
	}
	if l.CAFile != "" && !filepath.IsAbs(l.CAFile) {
		v.add("ldap.caFile", "%q is not an absolute path", l.CAFile)
	}
	base := v.dn("ldap.baseDN", l.BaseDN)
	v.account("ldap.bind", &l.Bind)
	for _, f := range [][2]string{{"ldap.userBase", l.UserBase}, {"ldap.groupBase", l.GroupBase}} {
		if d := v.dn(f[0], f[1]); d != nil && base != nil && !base.AncestorOfFold(d) && !base.EqualFold(d) {
			v.add(f[0], "%q is not under baseDN %q", f[1], l.BaseDN)
		}
	}
	if l.UserFilter != "" {
		if _, err := ldap.CompileFilter(l.UserFilter); err != nil {
			v.add("ldap.userFilter", "%q is not an LDAP filter: %v", l.UserFilter, err)
		}
	}
	if l.LoginAttribute != "" && !ldapAttr.MatchString(l.LoginAttribute) {
		v.add("ldap.loginAttribute", "%q is not an attribute name", l.LoginAttribute)
	}
	if l.GroupObjectClass != "" && !ldapAttr.MatchString(l.GroupObjectClass) {
		v.add("ldap.groupObjectClass", "%q is not an object class name", l.GroupObjectClass)
	}
	if l.GroupMembership != "" && !slices.Contains(groupMemberships, l.GroupMembership) {
		v.add("ldap.groupMembership", "%q is not one of %s", l.GroupMembership, strings.Join(groupMemberships, ", "))
	}
	if l.AdminGroup == "" || strings.ContainsAny(l.AdminGroup, "=,()*\\") {
		v.add("ldap.adminGroup", "%q: give the cn of the admin group (not a DN or filter)", l.AdminGroup)
	}
	if strings.ContainsAny(l.TestUser, "=,()*\\") {
		v.add("ldap.testUser", "%q: give a login name, not a DN or filter", l.TestUser)
	}
}

var (
	ldapAttr         = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)
	groupMemberships = []string{"memberUid", "member", "uniqueMember"}
)

func (v *validator) dn(path, s string) *ldap.DN {
	if s == "" {
		v.add(path, "missing")
		return nil
	}
	d, err := ldap.ParseDN(s)
	if err != nil || len(d.RDNs) == 0 {
		v.add(path, "%q is not a DN such as dc=tsys,dc=lan", s)
		return nil
	}
	return d
}

func (v *validator) account(path string, a *Account) {
	v.dn(path+".dn", a.DN)
	switch {
	case a.PasswordEnv == "" && a.PasswordFile == "":
		v.add(path, "no password source; set passwordEnv (an environment variable) or passwordFile")
	case a.PasswordEnv != "" && a.PasswordFile != "":
		v.add(path, "both passwordEnv and passwordFile are set; keep one")
	case a.PasswordEnv != "" && !envVarName.MatchString(a.PasswordEnv):
		v.add(path+".passwordEnv", "%q is not an environment variable name", a.PasswordEnv)
	case a.PasswordFile != "" && !filepath.IsAbs(a.PasswordFile):
		v.add(path+".passwordFile", "%q is not an absolute path", a.PasswordFile)
	}
}

func (v *validator) components(cs map[string]Component) {
	for _, name := range slices.Sorted(maps.Keys(cs)) {
		if _, ok := componentDefaults[name]; !ok {
			v.add("components."+name, "unknown component; known: %s", strings.Join(ComponentOrder, ", "))
		}
	}
	for _, name := range ComponentOrder {
		p := "components." + name
		c, ok := cs[name]
		if !ok {
			v.add(p, "missing; pin its chart version (or set disabled: true)")
			continue
		}
		if c.Disabled {
			continue
		}
		if !chartVersion.MatchString(c.Version) {
			v.add(p+".version", "%q is not a pinned chart version such as 1.2.3", c.Version)
		}
		if c.Namespace != "" && !dnsLabel.MatchString(c.Namespace) {
			v.add(p+".namespace", "%q is not a namespace name", c.Namespace)
		}
		if local, ok := strings.CutPrefix(c.Repo, "file://"); ok {
			if strings.TrimSpace(local) == "" {
				v.add(p+".repo", "file:// names no path; give the chart's folder or .tgz, e.g. file://charts/%s (relative to platform.yaml)", name)
			}
		} else if c.Repo != "" {
			if u, err := url.Parse(c.Repo); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "oci") {
				v.add(p+".repo", "%q is not an https://, oci:// or file:// chart repository", c.Repo)
			}
		}
		if c.Bind != nil {
			v.account(p+".bind", c.Bind)
		}
		if strings.ContainsAny(c.AdminGroup, "=,()*\\") {
			v.add(p+".adminGroup", "%q: give a group cn", c.AdminGroup)
		}
	}
}
