package platform

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

type obj = map[string]any

func renderManifests(spec *Spec, out Rendered) error {
	files := []struct {
		path  string
		about string
		docs  func(*Spec) []obj
	}{
		{"manifests/namespaces.yaml", "Namespaces; MetalLB's speakers need the privileged Pod Security level.", namespaces},
		{"manifests/metallb-pools.yaml", "MetalLB address pools and their L2 advertisement (without one nothing is announced). Apply after the MetalLB chart.", metallbPools},
		{"manifests/cluster-services.yaml", "Disruption budgets for the services k3s ships with one replica, and Traefik's replicas; scale with the patches in cluster-services/.", clusterServicePDBs},
	}
	if len(allComponentPDBs(spec)) > 0 {
		files = append(files, struct {
			path  string
			about string
			docs  func(*Spec) []obj
		}{"manifests/component-pdbs.yaml", "Disruption budgets for the components' replicated workloads whose charts make none (maxUnavailable: 1, selecting the labels each chart gives its pods). platform apply applies each right after its component's chart.", allComponentPDBs})
	}
	if spec.Enabled("rancher") {
		files = append(files, struct {
			path  string
			about string
			docs  func(*Spec) []obj
		}{"manifests/rancher-openldap-authconfig.yaml", "Rancher's OpenLDAP login against UCS. Apply after Rancher is up; the bind password goes into Secret cattle-global-data/openldapconfig-serviceaccountpassword (see SECRETS.txt).", rancherAuthConfig})
	}
	if spec.Gateway != nil {
		files = append(files, struct {
			path  string
			about string
			docs  func(*Spec) []obj
		}{"manifests/gateway.yaml", "The API gateway (platform.yaml gateway): k3s's Traefik, configured through its HelmChartConfig; k3s's helm controller upgrades Traefik when it changes. platform apply applies it after MetalLB's pools.", gatewayObjects})
	}
	if spec.PaaS.Promote != nil {
		files = append(files, struct {
			path  string
			about string
			docs  func(*Spec) []obj
		}{"manifests/promote-pool.yaml", "promote's load-balancer pool (paas.promote): addresses out of MetalLB pool " + spec.PaaS.Promote.MetalLBPool + ". Apply after MetalLB's pools; applying it again keeps the allocations promote recorded (key allocations.json).", promotePoolObjects})
	}
	for _, f := range files {
		body, err := multiDoc(f.docs(spec))
		if err != nil {
			return fmt.Errorf("rendering %s: %w", f.path, err)
		}
		out[f.path] = append(header(f.about), body...)
	}
	for _, p := range clusterServicePatches(spec) {
		body, err := yaml.Marshal(p.patch)
		if err != nil {
			return fmt.Errorf("rendering the patch of %s: %w", p.name, err)
		}
		out["cluster-services/"+p.name+".patch.yaml"] = append(header(
			"Apply with: kubectl -n kube-system patch deployment "+p.name+" --patch-file "+p.name+".patch.yaml",
			"k3s ships "+p.name+" with one replica; "+p.why,
		), body...)
	}
	return nil
}

func multiDoc(docs []obj) ([]byte, error) {
	var b bytes.Buffer
	for i, d := range docs {
		if i > 0 {
			b.WriteString("---\n")
		}
		body, err := yaml.Marshal(d)
		if err != nil {
			return nil, err
		}
		b.Write(body)
	}
	return b.Bytes(), nil
}

func namespaces(spec *Spec) []obj {
	var docs []obj
	seen := map[string]bool{}
	for _, name := range ComponentOrder {
		if !spec.Enabled(name) || seen[spec.Components[name].Namespace] {
			continue
		}
		seen[spec.Components[name].Namespace] = true
		ns := obj{"apiVersion": "v1", "kind": "Namespace", "metadata": obj{"name": spec.Components[name].Namespace}}
		if name == "metallb" || name == "longhorn" {
			ns["metadata"].(obj)["labels"] = obj{
				"pod-security.kubernetes.io/enforce": "privileged",
				"pod-security.kubernetes.io/audit":   "privileged",
				"pod-security.kubernetes.io/warn":    "privileged",
			}
		}
		docs = append(docs, ns)
	}
	for _, name := range paasNamespaces(spec) {
		if !seen[name] {
			seen[name] = true
			docs = append(docs, obj{"apiVersion": "v1", "kind": "Namespace", "metadata": obj{"name": name}})
		}
	}
	return docs
}

func metallbPools(spec *Spec) []obj {
	ns := spec.Components["metallb"].Namespace
	var docs []obj
	for _, p := range spec.MetalLB.Pools {
		poolSpec := obj{"addresses": p.Addresses}
		if p.AutoAssign != nil {
			poolSpec["autoAssign"] = *p.AutoAssign
		}
		docs = append(docs, obj{
			"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
			"metadata": obj{"name": p.Name, "namespace": ns},
			"spec":     poolSpec,
		})
		adv := obj{"ipAddressPools": []string{p.Name}}
		if len(p.Interfaces) > 0 {
			adv["interfaces"] = p.Interfaces
		}
		docs = append(docs, obj{
			"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
			"metadata": obj{"name": p.Name + "-l2", "namespace": ns},
			"spec":     adv,
		})
	}
	return docs
}

// ClusterService is a service k3s ships with a single replica.
type ClusterService struct {
	Name     string            // Deployment name in kube-system
	Selector map[string]string // pod labels
	Replicas int               // what render scales it to
	Why      string
}

// PackagedServices are k3s's packaged Deployments that run one replica
// unless someone scales them, keyed by the --disable name that removes them.
var PackagedServices = map[string]ClusterService{
	"coredns":        {"coredns", map[string]string{"k8s-app": "kube-dns"}, 3, "with one replica every name lookup in the cluster stops while its node is down (3-5 minutes until it is rescheduled)"},
	"metrics-server": {"metrics-server", map[string]string{"k8s-app": "metrics-server"}, 2, "with one replica kubectl top and autoscalers go blind while its node is down"},
	"local-storage":  {"local-path-provisioner", map[string]string{"app": "local-path-provisioner"}, 2, "with one replica no local-path volume can be created while its node is down (it elects a leader, so two are safe)"},
}

func enabledPackaged(spec *Spec) []ClusterService {
	var out []ClusterService
	for _, key := range slices.Sorted(maps.Keys(PackagedServices)) {
		if !slices.Contains(spec.K3s.Disable, key) {
			out = append(out, PackagedServices[key])
		}
	}
	return out
}

func clusterServicePDBs(spec *Spec) []obj {
	var docs []obj
	for _, s := range enabledPackaged(spec) {
		docs = append(docs, pdb(s.Name, "kube-system", s.Selector))
	}
	if !slices.Contains(spec.K3s.Disable, "traefik") && spec.Gateway == nil {
		// With a gateway, its HelmChartConfig (manifests/gateway.yaml)
		// is Traefik's: k3s reads one, named traefik.
		docs = append(docs, obj{
			"apiVersion": "helm.cattle.io/v1", "kind": "HelmChartConfig",
			"metadata": obj{"name": "traefik", "namespace": "kube-system"},
			"spec": obj{"valuesContent": mustYAML(obj{
				"deployment":                obj{"replicas": 3},
				"podDisruptionBudget":       obj{"enabled": true, "maxUnavailable": 1},
				"topologySpreadConstraints": []obj{spread(map[string]string{"app.kubernetes.io/name": "traefik"})},
			})},
		})
	}
	return docs
}

// chartPDB is a PodDisruptionBudget render writes for a component's
// replicated workload because its chart makes none, so a node drain (a k3s
// upgrade, maintenance) evicts one pod at a time. labels gives the pod
// labels the chart sets, from the component's release name; they belong to
// that chart, so a component installed from another chart (components.X.chart,
// such as the lab's stand-in chart) gets none.
type chartPDB struct {
	component, chart, suffix string
	labels                   func(release string) map[string]string
}

func harborPDB(component string) chartPDB {
	// Harbor's chart 1.18 labels each pod release, app (the chart's name)
	// and component; the same labels its Deployments and StatefulSets select.
	return chartPDB{"harbor", "harbor", component, func(release string) map[string]string {
		return map[string]string{"release": release, "app": "harbor", "component": component}
	}}
}

var chartPDBs = []chartPDB{
	// Longhorn 1.12: the UI (render runs two); its CSI Deployments are
	// created at run time by the driver deployer, not by the chart.
	{"longhorn", "longhorn", "ui", func(string) map[string]string { return map[string]string{"app": "longhorn-ui"} }},
	// Rancher 2.13: app is the chart's fullname, the release name when it
	// contains "rancher".
	{"rancher", "rancher", "", func(release string) map[string]string { return map[string]string{"app": rancherFullname(release)} }},
	harborPDB("core"), harborPDB("jobservice"), harborPDB("portal"), harborPDB("registry"),
	harborPDB("trivy"), // a StatefulSet
}

func rancherFullname(release string) string {
	if strings.Contains(release, "rancher") {
		return release
	}
	return release + "-rancher"
}

// componentPDBs are the PodDisruptionBudgets render adds for one component.
func componentPDBs(spec *Spec, component string) []obj {
	if !spec.Enabled(component) {
		return nil
	}
	var docs []obj
	release := releaseName(component)
	for _, p := range chartPDBs {
		if p.component != component || p.chart != spec.Components[component].Chart {
			continue
		}
		name := release
		if p.component == "longhorn" {
			name = "longhorn"
		}
		if p.suffix != "" {
			name += "-" + p.suffix
		}
		docs = append(docs, pdb(name, spec.Components[component].Namespace, p.labels(release)))
	}
	return docs
}

func allComponentPDBs(spec *Spec) []obj {
	var docs []obj
	for _, name := range ComponentOrder {
		docs = append(docs, componentPDBs(spec, name)...)
	}
	return docs
}

func pdb(name, ns string, selector map[string]string) obj {
	return obj{
		"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
		"metadata": obj{"name": name, "namespace": ns},
		"spec":     obj{"maxUnavailable": 1, "selector": obj{"matchLabels": selector}},
	}
}

func spread(selector map[string]string) obj {
	return obj{
		"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
		"labelSelector": obj{"matchLabels": selector},
	}
}

type namedPatch struct {
	name, why string
	patch     obj
}

func clusterServicePatches(spec *Spec) []namedPatch {
	var out []namedPatch
	for _, s := range enabledPackaged(spec) {
		out = append(out, namedPatch{s.Name, s.Why + "; this scales it to " + strconv.Itoa(s.Replicas) + " spread over nodes.", obj{
			"spec": obj{
				"replicas": s.Replicas,
				"template": obj{"spec": obj{"topologySpreadConstraints": []obj{spread(s.Selector)}}},
			},
		}})
	}
	return out
}

func mustYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshalling constant values: %v", err)) // only fixed maps reach here
	}
	return string(b)
}

func rancherAuthConfig(spec *Spec) []obj {
	l := newLDAPView(spec, "rancher")
	port, _ := strconv.Atoi(l.Port)
	memberMapping, memberUser := l.GroupMembership, "entryDN"
	if !l.MembershipAttributeIsDN {
		memberUser = l.LoginAttribute
	}
	return []obj{{
		"apiVersion": "management.cattle.io/v3", "kind": "AuthConfig",
		"metadata":                        obj{"name": "openldap"},
		"type":                            "openLdapConfig",
		"enabled":                         true,
		"accessMode":                      "restricted",
		"allowedPrincipalIds":             []string{"openldap_group://" + l.AdminGroupDN},
		"servers":                         []string{l.Host},
		"port":                            port,
		"tls":                             l.TLS,
		"starttls":                        l.StartTLS,
		"connectionTimeout":               5000,
		"serviceAccountDistinguishedName": l.BindDN,
		"serviceAccountPassword":          "cattle-global-data:openldapconfig-serviceaccountpassword",
		"userSearchBase":                  l.UserBase,
		"userSearchFilter":                l.UserFilter,
		"userLoginAttribute":              l.LoginAttribute,
		"userObjectClass":                 "inetOrgPerson",
		"userNameAttribute":               "displayName",
		"userSearchAttribute":             l.LoginAttribute + "|sn|givenName",
		"userMemberAttribute":             "memberOf",
		"groupSearchBase":                 l.GroupBase,
		"groupObjectClass":                l.GroupClass,
		"groupNameAttribute":              "cn",
		"groupSearchAttribute":            "cn",
		"groupMemberMappingAttribute":     memberMapping,
		"groupMemberUserAttribute":        memberUser,
		"groupDNAttribute":                "entryDN",
		"nestedGroupMembershipEnabled":    false,
	}}
}

func renderSecrets(spec *Spec) []byte {
	var b bytes.Buffer
	b.WriteString("Secrets render never writes. Create each before installing the component; the value comes from\n")
	b.WriteString("the environment variable or file platform.yaml names (keep them in Bitwarden).\n\n")
	fmt.Fprintf(&b, "k3s token        file %s on every host (same content; keep a copy offline: restores need it)\n", spec.K3s.TokenFile)
	for _, name := range ComponentOrder {
		if !spec.Enabled(name) || name == "metallb" || name == "longhorn" {
			continue
		}
		a := spec.BindFor(name)
		src := "$" + a.PasswordEnv
		if a.PasswordFile != "" {
			src = "file " + a.PasswordFile
		}
		ns := spec.Components[name].Namespace
		switch name {
		case "rancher":
			fmt.Fprintf(&b, "%-16s Secret cattle-global-data/openldapconfig-serviceaccountpassword key serviceaccountpassword = %s (bind DN %s)\n", name, src, a.DN)
			fmt.Fprintf(&b, "%-16s Secret %s/bootstrap-secret key bootstrapPassword = a first admin password\n", name, ns)
		case "harbor":
			fmt.Fprintf(&b, "%-16s ldap_search_password in Harbor's configuration (UI or CONFIG_OVERWRITE_JSON at install) = %s (bind DN %s)\n", name, src, a.DN)
		default:
			fmt.Fprintf(&b, "%-16s Secret %s/%s key password = %s (bind DN %s)\n", name, ns, BindSecretName(name), src, a.DN)
		}
		for _, l := range dataSecrets(spec, name) {
			b.WriteString(l + "\n")
		}
	}
	if spec.Gateway != nil && spec.Gateway.OIDC != nil {
		b.WriteString(gatewaySecretLine(spec) + "\n")
	}
	for _, l := range paasSecrets(spec) {
		b.WriteString(l + "\n")
	}
	if req := dataTeamRequest(spec); len(req) > 0 {
		b.WriteString("\nAsk the data team for (dataServices in platform.yaml; docs/platform.md, \"What to ask the data team for\"):\n")
		for _, l := range req {
			b.WriteString(l + "\n")
		}
	}
	return b.Bytes()
}
