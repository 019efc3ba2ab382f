package platform

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"slices"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/tsys-group/tsys-ci/rollout"
)

// promotePoolObjects is promote's pool ConfigMap: key pool.json only, so
// applying it leaves the allocations promote has recorded beside it
// (allocations.json) alone.
func promotePoolObjects(spec *Spec) []obj {
	p := spec.PaaS.Promote
	if p == nil {
		return nil
	}
	pool := rollout.Pool{Addresses: p.Addresses, Ports: rollout.PortRange{Min: p.Ports.Min, Max: p.Ports.Max}}
	if g := spec.Gateway; g != nil && g.AuthURL != "" {
		pool.Gateway = &rollout.GatewayConfig{AuthURL: g.AuthURL}
	}
	body, err := json.Marshal(pool)
	if err != nil {
		panic(fmt.Sprintf("marshalling the promote pool: %v", err)) // strings and ints only
	}
	return []obj{{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": obj{"name": PromotePoolName, "namespace": PromotePoolNamespace},
		"data":     obj{rollout.PoolKey: string(body)},
	}}
}

// serveConfig is serve.yaml as serve's chart takes it under config: the
// registry, the directory (platform.yaml's, bound as paas.serve.bind or
// ldap.bind, password from the chart's Secret) and who may promote where.
// The chart adds the fixed paths (TLS, webhook secrets, read token).
func serveConfig(spec *Spec) map[string]any {
	sv := spec.PaaS.Serve
	l := spec.LDAP
	ldapCfg := map[string]any{
		"url": l.URL, "baseDN": l.BaseDN, "userBase": l.UserBase, "groupBase": l.GroupBase,
		"bindDN": spec.BindFor(ServeComponent).DN, "bindPasswordEnv": "LDAP_BIND_PASSWORD",
		"userFilter": l.UserFilter, "loginAttribute": l.LoginAttribute,
	}
	if l.StartTLS {
		ldapCfg["startTLS"] = true
	}
	if l.InsecurePlaintext {
		ldapCfg["insecurePlaintext"] = true
	}
	if l.CAFile != "" {
		ldapCfg["caFile"] = "/etc/tsys-ci/ldap-ca.pem"
	}
	cfg := map[string]any{"registry": spec.ServeRegistry(), "policies": []any{}, "ldap": ldapCfg}
	if len(sv.Access) > 0 {
		access := map[string]any{}
		for ns, group := range sv.Access {
			access[ns] = "cn=" + group + "," + l.GroupBase
		}
		cfg["access"] = access
	}
	return cfg
}

// ChartFS loads the chart of one component from fsys (the chart carried
// inside the binary: templates.Serve for serve) when platform.yaml names no
// repository for it, and asks next otherwise. The chart's name and version
// must be the ones platform.yaml gives.
func ChartFS(component string, fsys fs.FS, next func(string, Component) (*chart.Chart, error)) func(string, Component) (*chart.Chart, error) {
	return func(name string, c Component) (*chart.Chart, error) {
		if name != component || c.Repo != "" {
			return next(name, c)
		}
		var files []*loader.BufferedFile
		err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			files = append(files, &loader.BufferedFile{Name: path.Clean(p), Data: data})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading the %s chart inside tsys-ci: %w", name, err)
		}
		ch, err := loader.LoadFiles(files)
		if err != nil {
			return nil, fmt.Errorf("loading the %s chart inside tsys-ci: %w", name, err)
		}
		if ch.Metadata.Name != c.Chart {
			return nil, fmt.Errorf("the %s chart inside tsys-ci is named %s, not %s", name, ch.Metadata.Name, c.Chart)
		}
		if ch.Metadata.Version != c.Version {
			return nil, fmt.Errorf("this tsys-ci carries chart %s %s, but platform.yaml pins %s: set paas.%s.version: %s, or give paas.%s.repo for another copy",
				c.Chart, ch.Metadata.Version, c.Version, name, ch.Metadata.Version, name)
		}
		return ch, nil
	}
}

// paasSecrets are SECRETS.txt's lines for the PaaS layer.
func paasSecrets(spec *Spec) []string {
	sv := spec.PaaS.Serve
	if sv == nil {
		return nil
	}
	ns := sv.Namespace
	a := spec.BindFor(ServeComponent)
	var out []string
	line := func(format string, args ...any) {
		out = append(out, fmt.Sprintf("%-16s ", ServeComponent)+fmt.Sprintf(format, args...))
	}
	line("Secret %s/%s key ldap-bind-password = %s (bind DN %s)", ns, ServeBindSecret, passwordSource(a), a.DN)
	if spec.LDAP.CAFile != "" {
		line("Secret %s/%s key ldap-ca.pem = the directory's CA, file %s", ns, ServeLDAPCASecret, spec.LDAP.CAFile)
	}
	if sv.TLS.SecretName != "" {
		line("Secret %s/%s (kubernetes.io/tls: tls.crt, tls.key) = serve's certificate for %s (Harbor must trust its CA)",
			ns, sv.TLS.SecretName, serveWebhookHost(spec))
	}
	if sv.VerifyKey.Secret != "" {
		line("Secret %s/%s key cosign.pub = the cosign public key promoted images are signed with", ns, sv.VerifyKey.Secret)
	}
	line("Secret %s/%s: one key per Harbor project = its webhook's Authorization header (`tsys-ci registry setup` writes .tsys-ci/webhook-secrets/; create it empty before the first project: kubectl -n %s create secret generic %s)",
		ns, sv.WebhookSecret, ns, sv.WebhookSecret)
	if sv.ReadTokenSecret != "" {
		line("Secret %s/%s key read-token = a random token for Prometheus and scripts", ns, sv.ReadTokenSecret)
	}
	return out
}

// serveWebhookHost is the host name serve's certificate must carry: the one
// Harbor's webhook deliveries call.
func serveWebhookHost(spec *Spec) string {
	u, err := url.Parse(spec.ServeWebhookURL())
	if err != nil {
		return spec.ServeWebhookURL()
	}
	return u.Hostname()
}

func passwordSource(a Account) string {
	if a.PasswordFile != "" {
		return "file " + a.PasswordFile
	}
	return "$" + a.PasswordEnv
}

// paasNamespaces are the namespaces of the PaaS layer, created before any chart.
func paasNamespaces(spec *Spec) []string {
	var out []string
	if spec.PaaS.Promote != nil {
		out = append(out, PromotePoolNamespace)
	}
	if sv := spec.PaaS.Serve; sv != nil && !slices.Contains(out, sv.Namespace) {
		out = append(out, sv.Namespace)
	}
	return out
}
