package platform

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

// ldapView is the directory as the values templates need it.
type ldapView struct {
	URL, Host, Port, Scheme     string
	TLS, StartTLS               bool
	BaseDN, UserBase, GroupBase string
	UserBaseRel, GroupBaseRel   string // relative to BaseDN (Jenkins wants these)
	UserFilter, LoginAttribute  string
	GroupMembership, GroupClass string
	GroupFilter                 string // (objectClass=<group class>)
	MemberOfGroupFilter         string // groups holding a user, Jenkins style ({0} DN, {1} login)
	MembershipAttributeIsDN     bool
	BindDN, BindSecret          string
	AdminGroup, AdminGroupDN    string
	CAFile                      string
}

// valuesView is what each values template is executed with.
type valuesView struct {
	Spec      *Spec
	Name      string
	Component Component
	Domain    string
	// URL is https:// on Domain (Spec.URL): what Harbor's externalURL and
	// Jenkins' jenkinsUrl say, and what tsys-ci's commands call.
	URL          string
	LDAP         ldapView
	StorageClass string
	// Tolerations tolerate the servers' taints (Longhorn and MetalLB must
	// run on db1-3).
	Tolerations []map[string]string
	// TaintToleration is Longhorn's key=value:Effect;... form of the same.
	TaintToleration string

	// Postgres and Redis are the component's database and Redis account on
	// the company's data services (nil when it has none).
	Postgres *postgresView
	Redis    *redisView
	// HarborCABundle is Harbor's caBundleSecretName ("" when no data
	// service names a CA).
	HarborCABundle string

	// Serve and the fields after it are tsys-ci serve's (nil for the others).
	Serve                *Serve
	ServeConfig          map[string]any
	ServeBindSecret      string
	ServeLDAPCASecret    string
	PromotePoolNamespace string
}

// LonghornStorageClass is the replicated class the Longhorn chart creates.
const LonghornStorageClass = "longhorn"

// BindSecretName is the Secret, in each component's namespace, holding the
// LDAP bind password under key "password". Render never writes it.
func BindSecretName(component string) string { return component + "-ldap-bind" }

func renderValues(spec *Spec, templates fs.FS, out Rendered) error {
	for _, name := range spec.releases() {
		values, err := ComponentValues(spec, templates, name)
		if err != nil {
			return err
		}
		body, err := yaml.Marshal(values)
		if err != nil {
			return fmt.Errorf("rendering values of %s: %w", name, err)
		}
		c := spec.component(name)
		about := fmt.Sprintf("Helm values of %s: chart %s %s from %s, namespace %s.", name, c.Chart, c.Version, c.Repo, c.Namespace)
		overrides := "components." + name + ".values"
		if name == ServeComponent {
			repo := c.Repo
			if repo == "" {
				repo = "the chart inside tsys-ci (templates/serve)"
			}
			about = fmt.Sprintf("Helm values of %s: chart %s %s from %s, namespace %s, release %s.", name, c.Chart, c.Version, repo, c.Namespace, ServeRelease)
			overrides = "paas.serve.values"
		}
		out["values/"+name+".yaml"] = append(header(
			about,
			overrides+" in platform.yaml are merged over these.",
		), body...)
	}
	return nil
}

// ComponentValues returns the Helm values of one component: its template
// in templates/platform/values executed for the spec, with
// components.<name>.values merged over it.
func ComponentValues(spec *Spec, templates fs.FS, name string) (map[string]any, error) {
	funcs := template.FuncMap{"toJSON": toJSON, "quote": toJSON, "prettyJSON": prettyJSON}
	src, err := fs.ReadFile(templates, "values/"+name+".yaml.tmpl")
	if err != nil {
		return nil, fmt.Errorf("reading the values template of %s: %w", name, err)
	}
	tmpl, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("parsing templates/platform/values/%s.yaml.tmpl: %w", name, err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, newValuesView(spec, name)); err != nil {
		return nil, fmt.Errorf("executing templates/platform/values/%s.yaml.tmpl: %w", name, err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(buf.Bytes(), &values); err != nil {
		return nil, fmt.Errorf("templates/platform/values/%s.yaml.tmpl did not produce YAML: %w", name, err)
	}
	return mergeValues(values, spec.component(name).Values), nil
}

func newValuesView(spec *Spec, name string) valuesView {
	v := valuesView{
		Spec:         spec,
		Name:         name,
		Component:    spec.component(name),
		Domain:       spec.Domain(name),
		URL:          spec.URL(name),
		LDAP:         newLDAPView(spec, name),
		StorageClass: LonghornStorageClass,
	}
	var tt []string
	for _, t := range spec.K3s.ServerTaints {
		key, value, effect := taintParts(t)
		tol := map[string]string{"key": key, "effect": effect, "operator": "Exists"}
		if value != "" {
			tol = map[string]string{"key": key, "effect": effect, "operator": "Equal", "value": value}
		}
		v.Tolerations = append(v.Tolerations, tol)
		tt = append(tt, t)
	}
	v.TaintToleration = strings.Join(tt, ";")
	v.Postgres, v.Redis = newPostgresView(spec, name), newRedisView(spec, name)
	if name == "harbor" && len(harborCAFiles(spec)) > 0 {
		v.HarborCABundle = HarborCABundleSecret
	}
	if name == ServeComponent && spec.PaaS.Serve != nil {
		v.Serve = spec.PaaS.Serve
		v.ServeConfig = serveConfig(spec)
		v.ServeBindSecret, v.ServeLDAPCASecret = ServeBindSecret, ServeLDAPCASecret
		v.PromotePoolNamespace = PromotePoolNamespace
	}
	return v
}

func newLDAPView(spec *Spec, component string) ldapView {
	l := spec.LDAP
	u, _ := url.Parse(l.URL) // validated
	port := u.Port()
	if port == "" {
		port = map[string]string{"ldap": "389", "ldaps": "636"}[u.Scheme]
	}
	v := ldapView{
		URL: l.URL, Host: u.Hostname(), Port: port, Scheme: u.Scheme,
		TLS: u.Scheme == "ldaps", StartTLS: l.StartTLS,
		BaseDN: l.BaseDN, UserBase: l.UserBase, GroupBase: l.GroupBase,
		UserBaseRel: relativeDN(l.UserBase, l.BaseDN), GroupBaseRel: relativeDN(l.GroupBase, l.BaseDN),
		UserFilter: l.UserFilter, LoginAttribute: l.LoginAttribute,
		GroupMembership: l.GroupMembership, GroupClass: l.GroupObjectClass,
		GroupFilter:             "(objectClass=" + l.GroupObjectClass + ")",
		MembershipAttributeIsDN: l.GroupMembership != "memberUid",
		BindDN:                  spec.BindFor(component).DN,
		BindSecret:              BindSecretName(component),
		AdminGroup:              spec.AdminGroupFor(component),
		CAFile:                  l.CAFile,
	}
	v.AdminGroupDN = "cn=" + v.AdminGroup + "," + l.GroupBase
	if v.MembershipAttributeIsDN {
		v.MemberOfGroupFilter = "(" + l.GroupMembership + "={0})"
	} else {
		v.MemberOfGroupFilter = "(memberUid={1})"
	}
	return v
}

// relativeDN strips base from dn ("cn=users,dc=a" under "dc=a" is "cn=users").
func relativeDN(dn, base string) string {
	if len(dn) > len(base) && strings.EqualFold(dn[len(dn)-len(base):], base) {
		return strings.TrimSuffix(dn[:len(dn)-len(base)], ",")
	}
	return dn
}

// prettyJSON indents, so a JSON document inside a values string stays
// reviewable (it renders as a YAML block).
func prettyJSON(v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return string(b) + "\n", err
}

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// mergeValues merges override over base the way Helm merges values files:
// maps merge key by key, anything else replaces.
func mergeValues(base, override map[string]any) map[string]any {
	out := make(map[string]any, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range override {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = mergeValues(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}
