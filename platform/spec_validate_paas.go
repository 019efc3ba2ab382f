package platform

import (
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/tsys-group/tsys-ci/rollout"
)

var (
	// registryHost is a registry host as image references and Harbor's
	// webhooks write it: lower-case name or address, optional port.
	registryHost = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$`)
	imageDigest  = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	imageTag     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	imageRepo    = regexp.MustCompile(`^[a-z0-9]([a-z0-9._:-]*[a-z0-9])?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*$`)
	// secretName is a Kubernetes object name (DNS subdomain).
	secretName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
)

func (v *validator) paas(s *Spec) {
	if p := s.PaaS.Promote; p != nil {
		v.promote(p, s)
	}
	if sv := s.PaaS.Serve; sv != nil {
		if s.PaaS.Promote == nil {
			v.add("paas.promote", "missing; serve's deploys allocate their load-balancer addresses from the promote pool (add paas.promote)")
		}
		v.serve(sv, s)
	}
}

// promote checks the promote pool against MetalLB's: inside the named pool,
// and that pool hands out its addresses to no Service that does not ask for
// them by address.
func (v *validator) promote(p *PromotePool, s *Spec) {
	const path = "paas.promote"
	if !s.Enabled("metallb") {
		v.add(path, "needs MetalLB, which announces its addresses; components.metallb is disabled")
	}
	var pool *Pool
	var names []string
	for i := range s.MetalLB.Pools {
		names = append(names, s.MetalLB.Pools[i].Name)
		if s.MetalLB.Pools[i].Name == p.MetalLBPool {
			pool = &s.MetalLB.Pools[i]
		}
	}
	switch {
	case p.MetalLBPool == "":
		v.add(path+".metallbPool", "missing; name the metallb.pools entry (autoAssign: false) promote's addresses come from")
	case pool == nil:
		v.add(path+".metallbPool", "%q is not one of metallb.pools[].name (%s)", p.MetalLBPool, strings.Join(names, ", "))
	case pool.AutoAssign == nil || *pool.AutoAssign:
		v.add(path+".metallbPool", "MetalLB pool %q gives its addresses to any LoadBalancer Service (autoAssign is not false), so another Service could take an address promote hands out; give promote a MetalLB pool of its own with autoAssign: false (split the address range: one auto-assigning pool for other Services, one for promote)", p.MetalLBPool)
	}
	var poolRanges []addrRange
	if pool != nil {
		for _, a := range pool.Addresses {
			if r, err := parseRange(a); err == nil {
				poolRanges = append(poolRanges, r)
			}
		}
	}
	if len(p.Addresses) == 0 {
		v.add(path+".addresses", "empty; give the addresses promote hands out (inside MetalLB pool %q)", p.MetalLBPool)
	}
	var seen []addrRange
	for i, a := range p.Addresses {
		ap := fmt.Sprintf("%s.addresses[%d]", path, i)
		r, err := parsePromoteRange(a)
		if err != nil {
			v.add(ap, "%v", err)
			continue
		}
		for _, o := range seen {
			if r.overlaps(o) {
				v.add(ap, "%s overlaps %s", a, o.text)
			}
		}
		seen = append(seen, r)
		if pool == nil {
			continue
		}
		inside := slices.ContainsFunc(poolRanges, func(pr addrRange) bool { return pr.contains(r.first) && pr.contains(r.last) })
		if !inside {
			v.add(ap, "%s is not inside one address entry of MetalLB pool %q (%s); MetalLB announces only its pools' addresses", a, p.MetalLBPool, strings.Join(pool.Addresses, ", "))
		}
	}
	if p.Ports.Min < 1 || p.Ports.Max > 65535 || p.Ports.Min > p.Ports.Max {
		v.add(path+".ports", "%d-%d is not a port range within 1-65535 (min <= max); e.g. {min: 30000, max: 30999}", p.Ports.Min, p.Ports.Max)
	}
	if len(seen) == len(p.Addresses) && len(seen) > 0 {
		// The allocator's own check (it refuses more than 4096 addresses).
		if err := (rollout.Pool{Addresses: p.Addresses, Ports: rollout.PortRange{Min: 1, Max: 1}}).Validate(); err != nil {
			v.add(path+".addresses", "promote would refuse this pool: %v", err)
		}
	}
}

// parsePromoteRange reads an address entry as promote's allocator does: an
// address, a CIDR or first-last.
func parsePromoteRange(s string) (addrRange, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return addrRange{a, a, s}, nil
	}
	r, err := parseRange(s)
	if err != nil {
		return r, fmt.Errorf("%q is not an address, a CIDR or a first-last range", s)
	}
	return r, nil
}

func (v *validator) serve(sv *Serve, s *Spec) {
	const path = "paas.serve"
	if !chartVersion.MatchString(sv.Version) {
		v.add(path+".version", "%q is not a pinned chart version such as 0.1.0 (the version in templates/serve/Chart.yaml of this tsys-ci)", sv.Version)
	}
	if local, ok := strings.CutPrefix(sv.Repo, "file://"); ok {
		if strings.TrimSpace(local) == "" {
			v.add(path+".repo", "file:// names no path; give the chart's folder or .tgz, or leave repo out for the chart inside tsys-ci")
		}
	} else if sv.Repo != "" {
		if u, err := url.Parse(sv.Repo); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "oci") {
			v.add(path+".repo", "%q is not an https://, oci:// or file:// chart repository (leave it out for the chart inside tsys-ci)", sv.Repo)
		}
	}
	if sv.Namespace != "" && !dnsLabel.MatchString(sv.Namespace) {
		v.add(path+".namespace", "%q is not a namespace name", sv.Namespace)
	}
	if sv.Replicas < 0 || sv.Replicas == 1 {
		v.add(path+".replicas", "%d: serve needs at least 2 replicas (one leads, the other takes over when its node goes); one is a single point of failure", sv.Replicas)
	}
	switch {
	case !imageRepo.MatchString(sv.Image.Repository):
		v.add(path+".image.repository", "%q is not an image repository such as harbor.tsys.example/tsys/tsys-ci", sv.Image.Repository)
	case sv.Image.Digest == "" && sv.Image.Tag == "":
		v.add(path+".image", "give digest (sha256:..., production) or tag")
	case sv.Image.Digest != "" && sv.Image.Tag != "":
		v.add(path+".image", "both digest and tag are set; keep one (the digest in production)")
	case sv.Image.Digest != "" && !imageDigest.MatchString(sv.Image.Digest):
		v.add(path+".image.digest", "%q is not sha256:<64 hex digits>", sv.Image.Digest)
	case sv.Image.Tag != "" && !imageTag.MatchString(sv.Image.Tag):
		v.add(path+".image.tag", "%q is not an image tag", sv.Image.Tag)
	}
	switch {
	case sv.Registry != "" && !registryHost.MatchString(sv.Registry):
		v.add(path+".registry", "%q is not a registry host such as harbor.tsys.example (lower case, optional :port, no scheme or path)", sv.Registry)
	case sv.Registry == "" && !s.Enabled("harbor"):
		v.add(path+".registry", "missing, and components.harbor is disabled; give the host of the Harbor serve deploys from")
	}
	for i, ns := range sv.AppNamespaces {
		if !dnsLabel.MatchString(ns) {
			v.add(fmt.Sprintf("%s.appNamespaces[%d]", path, i), "%q is not a namespace name", ns)
		}
	}
	if sv.Bind != nil {
		v.account(path+".bind", sv.Bind)
	}
	for _, ns := range slices.Sorted(maps.Keys(sv.Access)) {
		f := path + ".access." + ns
		if !slices.Contains(sv.AppNamespaces, ns) {
			v.add(f, "serve has no rights in namespace %s; add it to %s.appNamespaces", ns, path)
		}
		if g := sv.Access[ns]; g == "" || strings.ContainsAny(g, "=,()*\\") {
			v.add(f, "%q: give the cn of a group under ldap.groupBase (not a DN or filter)", g)
		}
	}
	switch {
	case sv.TLS.SecretName != "" && sv.TLS.InsecurePlainHTTP:
		v.add(path+".tls", "both secretName and insecurePlainHTTP are set; keep one")
	case sv.TLS.SecretName == "" && !sv.TLS.InsecurePlainHTTP:
		v.add(path+".tls", "missing; name serve's kubernetes.io/tls Secret (secretName: tsys-ci-serve-tls): Harbor's webhook secrets and directory passwords cross the network to serve; insecurePlainHTTP: true sends them in clear (a lab only)")
	case sv.TLS.SecretName != "" && !secretName.MatchString(sv.TLS.SecretName):
		v.add(path+".tls.secretName", "%q is not a Secret name", sv.TLS.SecretName)
	}
	switch {
	case sv.VerifyKey.Secret != "" && sv.VerifyKey.AllowUnsigned:
		v.add(path+".verifyKey", "both secret and allowUnsigned are set; keep one")
	case sv.VerifyKey.Secret == "" && !sv.VerifyKey.AllowUnsigned:
		v.add(path+".verifyKey", "missing; name the Secret holding the cosign public key (secret: tsys-ci-serve-verify-key, key cosign.pub), or allowUnsigned: true to deploy unsigned images knowingly")
	case sv.VerifyKey.Secret != "" && !secretName.MatchString(sv.VerifyKey.Secret):
		v.add(path+".verifyKey.secret", "%q is not a Secret name", sv.VerifyKey.Secret)
	}
	if sv.WebhookURL != "" {
		if u, err := url.Parse(sv.WebhookURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			v.add(path+".webhookURL", "%q is not an http:// or https:// URL such as https://tsys-ci.tsys.example%s (leave it out for serve's Service inside the cluster)", sv.WebhookURL, ServeWebhookPath)
		} else if u.Scheme == "http" && sv.TLS.SecretName != "" {
			v.add(path+".webhookURL", "%q is http://, but serve listens with TLS (tls.secretName): give its https:// address", sv.WebhookURL)
		}
	}
	for _, f := range [][2]string{{path + ".webhookSecret", sv.WebhookSecret}, {path + ".readTokenSecret", sv.ReadTokenSecret}} {
		if f[1] != "" && !secretName.MatchString(f[1]) {
			v.add(f[0], "%q is not a Secret name", f[1])
		}
	}
}
