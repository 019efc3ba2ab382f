package serve

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
	"github.com/tsys-group/tsys-ci/pipeline/notify"
	"github.com/tsys-group/tsys-ci/rollout"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// Config is tsys-ci serve's configuration file (serve.yaml), mounted
// from a ConfigMap in the cluster or read from the API directly. Secrets
// (webhook secret, LDAP bind password) are never in it: they come from
// files or the environment.
type Config struct {
	// Registry is the one registry host (with its port, if any) serve
	// deploys images from: Harbor's external host as its webhooks put it in
	// resource_url, e.g. harbor.company.example or harbor.example:443. An
	// event or a manual promote naming any other host is refused, so a
	// holder of a webhook secret cannot make serve pull (or deploy) from a
	// registry of their choosing.
	Registry string `json:"registry"`
	// WebhookSecretsDir holds one file per Harbor project, named after the
	// project, with the exact Authorization header that project's webhook
	// policy sends (`tsys-ci registry setup` makes one per project). An
	// event is accepted only with its own project's secret, so an admin of
	// one project cannot deploy another project's apps.
	WebhookSecretsDir string `json:"webhookSecretsDir,omitempty"`
	// TLS is serve's certificate and key (PEM files, e.g. a
	// kubernetes.io/tls Secret mounted as tls.crt and tls.key): webhook
	// secrets and directory passwords cross the network to serve.
	TLS *TLSConfig `json:"tls,omitempty"`
	// InsecurePlainHTTP serves plain HTTP instead, knowingly (a lab, or TLS
	// ended in front of serve on the same host); serve logs a warning.
	InsecurePlainHTTP bool `json:"insecurePlainHTTP,omitempty"`
	// ReadTokenFile holds a bearer token that may read the API
	// (/api/v1/policies, /api/v1/deploys) and /metrics, for Prometheus
	// and scripts; people read with their directory login. Without it and
	// without ldap, the reads are closed.
	ReadTokenFile string `json:"readTokenFile,omitempty"`
	// Policies say which pushes deploy what, in order.
	Policies []DeployPolicy `json:"policies"`
	// LDAP is the directory people log in against for manual promote and
	// rollback. Without it those endpoints are off.
	LDAP *LDAPConfig `json:"ldap,omitempty"`
	// Access maps a namespace to the DN of the LDAP group whose members may
	// promote and roll back apps in it. A namespace not listed is closed.
	Access map[string]string `json:"access,omitempty"`
	// Notifications say who hears about deploys (started, promoted,
	// rolled back, aborted, refused), by namespace or app: webhooks (JSON,
	// Slack, Teams) and e-mail. See pipeline/notify.
	Notifications []notify.Target `json:"notifications,omitempty"`
	// Dashboard configures the web dashboard at /ui/ (on whenever ldap is
	// set: people log in with their directory account).
	Dashboard *DashboardConfig `json:"dashboard,omitempty"`
}

// DashboardConfig is serve.yaml's dashboard section.
type DashboardConfig struct {
	// SessionKeyFile holds the key (at least 32 bytes, e.g. a mounted
	// Secret) that signs session cookies. Every replica must read the same
	// one, or a browser reaching the other replica has to log in again;
	// without it each replica makes a random key at start, and sessions
	// also end when serve restarts.
	SessionKeyFile string `json:"sessionKeyFile,omitempty"`
}

// TLSConfig names serve's serving certificate and key files.
type TLSConfig struct {
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
}

// DeployPolicy maps pushes of a Harbor repository with a matching tag to a
// deploy of one app.
type DeployPolicy struct {
	// Name identifies the policy in logs, events and the API.
	Name string `json:"name"`
	// Repository is Harbor's repo_full_name, project/name (exact).
	Repository string `json:"repository"`
	// Tags is a glob (path.Match syntax: *, ?, [a-z]) the pushed tag must
	// match, e.g. "main-*" or "v[0-9]*". Untagged pushes never match.
	Tags string `json:"tags"`
	// App and Namespace name the app promote deploys.
	App       string `json:"app"`
	Namespace string `json:"namespace"`
	// Strategy overrides the app spec's strategy when set.
	Strategy string `json:"strategy,omitempty"`
	// Spec is the app spec's path (tsys-ci.yaml), relative paths being
	// relative to the config file.
	Spec string `json:"spec"`
	// EnvSecret names a Secret in serve's own namespace whose keys are the
	// variables the spec's fromEnv entries read (SHOP_DB_PASSWORD: ...):
	// serve reads it afresh on each promote of the policy and gives its
	// values to promote as the CLI's environment would. Without it a
	// promote of a spec with fromEnv entries is refused.
	EnvSecret string `json:"envSecret,omitempty"`
	// Stages, when set, are where a pushed digest goes, in order: a push
	// deploys to the first (the policy's namespace), and serve's leader
	// deploys the same digest to each later stage once its gates pass
	// (stages.go). Without stages a push deploys to Namespace only.
	Stages []Stage `json:"stages,omitempty"`
}

// ConfigError lists every problem of a config file, each naming its field.
type ConfigError struct{ Problems []string }

// BadInput marks serve.yaml as the user's to fix: the CLI exits 2 on it.
func (e *ConfigError) BadInput() bool { return true }

func (e *ConfigError) Error() string {
	return "serve config is not valid:\n  " + strings.Join(e.Problems, "\n  ")
}

// LoadConfig reads serve.yaml; relative spec paths are taken from its
// directory.
func LoadConfig(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading serve config: %w", err)
	}
	cfg, err := ParseConfig(data, filepath.Dir(file))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return cfg, nil
}

// ParseConfig decodes a config strictly (an unknown or misspelt field
// is an error, never a silent default), validates it, and loads every
// policy's app spec so a broken spec is found at start, not at the first
// push. specDir resolves relative spec paths.
func ParseConfig(data []byte, specDir string) (*Config, error) {
	var cfg Config
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return nil, fmt.Errorf("decoding serve config: %w", err)
	}
	v := &cfgChecker{}
	v.registry("registry", cfg.Registry)
	switch {
	case cfg.TLS == nil && !cfg.InsecurePlainHTTP:
		v.add("tls", "missing; add `tls: {certFile: /var/run/tsys-ci/tls/tls.crt, keyFile: /var/run/tsys-ci/tls/tls.key}` (webhook secrets and directory passwords cross the network to serve), or `insecurePlainHTTP: true` to send them in clear knowingly")
	case cfg.TLS != nil && cfg.InsecurePlainHTTP:
		v.add("insecurePlainHTTP", "set together with tls; choose one")
	case cfg.TLS != nil:
		if cfg.TLS.CertFile == "" {
			v.add("tls.certFile", "is required: the PEM certificate (chain) serve presents")
		}
		if cfg.TLS.KeyFile == "" {
			v.add("tls.keyFile", "is required: the PEM private key of tls.certFile")
		}
	}
	names := map[string]int{}
	for i := range cfg.Policies {
		p := &cfg.Policies[i]
		f := fmt.Sprintf("policies[%d]", i)
		if p.Spec != "" && !filepath.IsAbs(p.Spec) {
			p.Spec = filepath.Join(specDir, p.Spec)
		}
		v.policy(f, p)
		v.stages(f, p, cfg.LDAP != nil)
		if j, ok := names[p.Name]; ok && p.Name != "" {
			v.add(f+".name", "%q is also the name of policies[%d]; names must be unique", p.Name, j)
		}
		names[p.Name] = i
	}
	v.stagedAlone(cfg.Policies)
	if cfg.LDAP != nil {
		v.ldap("ldap", cfg.LDAP)
	}
	for _, ns := range slices.Sorted(maps.Keys(cfg.Access)) {
		f := "access." + ns
		for _, msg := range validation.IsDNS1123Label(ns) {
			v.add(f, "%q is not a namespace name: %s", ns, msg)
		}
		if d, err := ldap.ParseDN(cfg.Access[ns]); err != nil || len(d.RDNs) == 0 {
			v.add(f, "%q is not a group DN such as cn=deployers,cn=groups,dc=example,dc=com", cfg.Access[ns])
		}
	}
	if err := notify.Validate("notifications", cfg.Notifications); err != nil {
		var ce *notify.ConfigError
		if errors.As(err, &ce) {
			v.problems = append(v.problems, ce.Problems...)
		}
	}
	if cfg.Dashboard != nil {
		if cfg.Dashboard.SessionKeyFile == "" {
			v.add("dashboard.sessionKeyFile", "is required in a dashboard section: a file with at least %d random bytes shared by serve's replicas (or drop the section for a random key per replica)", MinSessionKey)
		}
		if cfg.LDAP == nil {
			v.add("ldap", "missing; the dashboard logs people in against the directory, so it is off without ldap")
		}
	}
	if len(cfg.Access) > 0 && cfg.LDAP == nil {
		v.add("ldap", "missing; access lists LDAP groups, so serve needs the directory to check them")
	}
	if len(v.problems) > 0 {
		return nil, &ConfigError{Problems: v.problems}
	}
	return &cfg, nil
}

type cfgChecker struct{ problems []string }

func (c *cfgChecker) add(field, format string, args ...any) {
	c.problems = append(c.problems, field+": "+fmt.Sprintf(format, args...))
}

// registryHostRE is a registry host as it appears in an image reference:
// lower-case DNS name or IPv4 address, optional port; no scheme or path.
var registryHostRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$`)

func (c *cfgChecker) registry(f, host string) {
	switch {
	case host == "":
		c.add(f, "missing; add `registry: harbor.company.example` (Harbor's host, with :port if it has one, as in its webhooks' resource_url): serve deploys images from this registry only")
	case !registryHostRE.MatchString(host):
		c.add(f, "%q is not a registry host such as harbor.company.example or harbor.example:443 (lower case, no scheme, no path)", host)
	}
}

// Project is the Harbor project of a policy's repository.
func (p DeployPolicy) Project() string {
	project, _, _ := strings.Cut(p.Repository, "/")
	return project
}

// Projects are the Harbor projects the policies deploy from, sorted.
func (c *Config) Projects() []string {
	var out []string
	for _, p := range c.Policies {
		if !slices.Contains(out, p.Project()) {
			out = append(out, p.Project())
		}
	}
	slices.Sort(out)
	return out
}

var strategies = []string{rollout.StrategyBlueGreen, rollout.StrategyCanary, rollout.StrategyRolling, rollout.StrategyRecreate}

func (c *cfgChecker) policy(f string, p *DeployPolicy) {
	if p.Name == "" {
		c.add(f+".name", "is required")
	}
	if !repoRE.MatchString(p.Repository) {
		c.add(f+".repository", "%q is not a Harbor repository (project/name, lower case)", p.Repository)
	}
	if p.Tags == "" {
		c.add(f+".tags", "is required; a glob such as \"main-*\" or \"*\"")
	} else if _, err := path.Match(p.Tags, ""); err != nil {
		c.add(f+".tags", "%q is not a glob pattern: %v", p.Tags, err)
	}
	for _, fv := range [][2]string{{"app", p.App}, {"namespace", p.Namespace}} {
		if fv[1] == "" {
			c.add(f+"."+fv[0], "is required")
			continue
		}
		for _, msg := range validation.IsDNS1123Label(fv[1]) {
			c.add(f+"."+fv[0], "%q is not a valid name: %s", fv[1], msg)
		}
	}
	if p.Strategy != "" && !slices.Contains(strategies, p.Strategy) {
		c.add(f+".strategy", "%q is not one of %s", p.Strategy, strings.Join(strategies, ", "))
	}
	if p.EnvSecret != "" {
		for _, msg := range validation.IsDNS1123Subdomain(p.EnvSecret) {
			c.add(f+".envSecret", "%q is not a Secret name: %s", p.EnvSecret, msg)
		}
	}
	if p.Spec == "" {
		c.add(f+".spec", "is required; the path of the app's tsys-ci.yaml")
		return
	}
	spec, err := rollout.LoadSpec(p.Spec)
	if err != nil {
		c.add(f+".spec", "%v", err)
		return
	}
	if p.App != "" && spec.Name != p.App {
		c.add(f+".app", "%q but the spec %s is for app %q", p.App, p.Spec, spec.Name)
	}
	if p.Namespace != "" && spec.Namespace != "" && spec.Namespace != p.Namespace {
		c.add(f+".namespace", "%q but the spec %s says namespace %q", p.Namespace, p.Spec, spec.Namespace)
	}
}

func (c *cfgChecker) ldap(f string, l *LDAPConfig) {
	u, err := url.Parse(l.URL)
	switch {
	case l.URL == "":
		c.add(f+".url", "is required; ldap://host[:port] or ldaps://host[:port]")
	case err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" || (u.Path != "" && u.Path != "/"):
		c.add(f+".url", "%q is not ldap://host[:port] or ldaps://host[:port]", l.URL)
	case u.Scheme == "ldaps" && l.StartTLS:
		c.add(f+".startTLS", "StartTLS is for ldap:// URLs; ldaps:// is TLS already")
	case u.Scheme == "ldap" && !l.StartTLS && !l.InsecurePlaintext:
		c.add(f+".startTLS", "ldap:// without StartTLS sends passwords in clear; set startTLS: true, use ldaps://, or set insecurePlaintext: true for a lab")
	}
	for _, fv := range [][2]string{{"baseDN", l.BaseDN}, {"userBase", l.UserBase}, {"groupBase", l.GroupBase}, {"bindDN", l.BindDN}} {
		if fv[1] == "" {
			if fv[0] == "baseDN" {
				c.add(f+".baseDN", "is required, e.g. dc=example,dc=com")
			}
			continue
		}
		if d, err := ldap.ParseDN(fv[1]); err != nil || len(d.RDNs) == 0 {
			c.add(f+"."+fv[0], "%q is not a DN such as dc=example,dc=com", fv[1])
		}
	}
	if l.BindDN != "" && l.BindPasswordFile == "" && l.BindPasswordEnv == "" {
		c.add(f+".bindDN", "set; give its password with bindPasswordFile or bindPasswordEnv")
	}
	if l.UserFilter != "" {
		if _, err := ldap.CompileFilter(l.UserFilter); err != nil {
			c.add(f+".userFilter", "%q is not an LDAP filter: %v", l.UserFilter, err)
		}
	}
	if l.LoginAttribute != "" && !ldapAttrRE.MatchString(l.LoginAttribute) {
		c.add(f+".loginAttribute", "%q is not an attribute name", l.LoginAttribute)
	}
}

// Match returns the policies a push of repository:tag triggers, or a
// reason when none does. Untagged pushes (by digest) and cosign
// signatures never match.
func Match(policies []DeployPolicy, ev *HarborEvent) ([]DeployPolicy, string) {
	if ev.Type != HarborPushArtifact {
		return nil, fmt.Sprintf("event type %s does not trigger deploys", ev.Type)
	}
	tag := ev.Tag()
	if tag == "" {
		return nil, "pushed by digest without a tag; policies match tags"
	}
	if ev.IsCosignAccessory() {
		return nil, "cosign signature or attestation, not an image"
	}
	repo := ev.EventData.Repository.RepoFullName
	var out []DeployPolicy
	repoKnown := false
	for _, p := range policies {
		if p.Repository != repo {
			continue
		}
		repoKnown = true
		if ok, _ := path.Match(p.Tags, tag); ok {
			out = append(out, p)
		}
	}
	switch {
	case len(out) > 0:
		return out, ""
	case repoKnown:
		return nil, fmt.Sprintf("tag %q of %s matches no policy's tag pattern", tag, repo)
	default:
		return nil, fmt.Sprintf("no policy for repository %s", repo)
	}
}

// ConfigKey is the key of serve.yaml in its ConfigMap.
const ConfigKey = "serve.yaml"

// ConfigFromConfigMap reads serve.yaml from a ConfigMap through the
// API (no volume needed). Relative spec paths are taken from specDir.
func ConfigFromConfigMap(ctx context.Context, cs kubernetes.Interface, namespace, name, specDir string) (*Config, error) {
	cm, err := cs.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading serve config from ConfigMap %s/%s: %w", namespace, name, err)
	}
	data, ok := cm.Data[ConfigKey]
	if !ok {
		return nil, fmt.Errorf("ConfigMap %s/%s has no key %s; put serve.yaml under it", namespace, name, ConfigKey)
	}
	cfg, err := ParseConfig([]byte(data), specDir)
	if err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s: %w", namespace, name, err)
	}
	return cfg, nil
}
