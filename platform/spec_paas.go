package platform

import (
	"path/filepath"
	"strings"

	"github.com/tsys-group/tsys-ci/rollout"
)

// PaaS is tsys-ci's own layer on the platform: the pool promote hands
// load-balancer addresses out of, and `tsys-ci serve`, which turns Harbor's
// push events into promotes. Without it the platform has no way to promote
// (issue 29). Other parts of the layer (the edge, admission) get their own
// fields beside these.
type PaaS struct {
	Promote *PromotePool `json:"promote,omitempty"`
	Serve   *Serve       `json:"serve,omitempty"`
}

// PromotePool is the pool of ConfigMap tsys-ci-system/tsys-ci-lb (key
// pool.json) that every promote allocates an app's address and ports from.
//
// Its addresses come out of a MetalLB pool of their own (MetalLBPool) that
// has autoAssign: false: MetalLB then gives those addresses only to
// Services that ask for them by address, as promote's do, and never to any
// other LoadBalancer Service, which get addresses from the auto-assigning
// pools. That is how platform.yaml keeps promote's addresses apart from
// every other Service's.
type PromotePool struct {
	// MetalLBPool names the metallb.pools entry (autoAssign: false) the
	// addresses lie in.
	MetalLBPool string `json:"metallbPool"`
	// Addresses are single addresses, CIDRs or first-last ranges, each
	// inside one address entry of MetalLBPool.
	Addresses []string `json:"addresses"`
	// Ports is the range of ports handed out on each address.
	Ports PortRange `json:"ports"`
}

// PortRange is an inclusive range of TCP ports.
type PortRange struct {
	Min int32 `json:"min"`
	Max int32 `json:"max"`
}

// Serve is `tsys-ci serve`, installed from its chart (templates/serve,
// carried inside tsys-ci) as release tsys-ci. Secrets are never here: the
// chart reads them from Secrets named below (SECRETS.txt lists them).
type Serve struct {
	// Version pins serve's chart, like every component's.
	Version string `json:"version"`
	// Repo is empty for the chart inside this tsys-ci binary, or a file://,
	// https:// or oci:// chart repository holding chart tsys-ci-serve.
	Repo string `json:"repo,omitempty"`
	// Namespace defaults to tsys-ci.
	Namespace string `json:"namespace,omitempty"`
	// Replicas defaults to 2 (one leads, the other takes over); fewer is
	// refused: one replica is a single point of failure.
	Replicas int `json:"replicas,omitempty"`
	// Image is tsys-ci's image; pin it by digest in production.
	Image ServeImage `json:"image"`
	// Registry is the one registry host serve deploys images from: Harbor's
	// host as its webhooks name it (default domains.harbor).
	Registry string `json:"registry,omitempty"`
	// AppNamespaces are the namespaces serve may deploy into (it gets
	// promote's rights there and nowhere else).
	AppNamespaces []string `json:"appNamespaces,omitempty"`
	// ManageAppNamespaces makes the chart create AppNamespaces with Pod
	// Security labels.
	ManageAppNamespaces bool `json:"manageAppNamespaces,omitempty"`
	// Bind is the directory account serve looks people up with for manual
	// promote and rollback (default ldap.bind).
	Bind *Account `json:"bind,omitempty"`
	// Access maps an app namespace to the cn (under ldap.groupBase) of the
	// group whose members may promote and roll back there.
	Access map[string]string `json:"access,omitempty"`
	// TLS is serve's certificate: Harbor's webhook secrets cross the network to it.
	TLS ServeTLS `json:"tls"`
	// VerifyKey is the cosign public key promoted images must be signed with.
	VerifyKey ServeVerifyKey `json:"verifyKey"`
	// WebhookURL is where Harbor's webhook policies post push events: by
	// default serve's Service inside the cluster (ServeWebhookURL). Set it
	// when Harbor reaches serve another way (a LoadBalancer address or the
	// edge, through values.service). `registry setup --platform` registers it.
	WebhookURL string `json:"webhookURL,omitempty"`
	// WebhookSecret names the Secret holding one key per Harbor project:
	// the Authorization header that project's webhook sends (default
	// tsys-ci-serve-webhook).
	WebhookSecret string `json:"webhookSecret,omitempty"`
	// ReadTokenSecret optionally names a Secret with key read-token, the
	// bearer token Prometheus and scripts read the API with.
	ReadTokenSecret string `json:"readTokenSecret,omitempty"`
	// Values are merged over the rendered chart values (policies, specs,
	// service, resources...).
	Values map[string]any `json:"values,omitempty"`
}

// ServeImage is tsys-ci's container image.
type ServeImage struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag,omitempty"`
	Digest     string `json:"digest,omitempty"`
}

// ServeTLS is serve's serving certificate: a kubernetes.io/tls Secret, or
// plain HTTP knowingly (a lab).
type ServeTLS struct {
	SecretName        string `json:"secretName,omitempty"`
	InsecurePlainHTTP bool   `json:"insecurePlainHTTP,omitempty"`
}

// ServeVerifyKey names the Secret holding the cosign public key (key
// cosign.pub), or allows unsigned images knowingly.
type ServeVerifyKey struct {
	Secret        string `json:"secret,omitempty"`
	AllowUnsigned bool   `json:"allowUnsigned,omitempty"`
}

// Names and defaults of the PaaS layer.
const (
	// ServeComponent is serve's name in plans, after the platform's components.
	ServeComponent = "serve"
	// ServeRelease is serve's Helm release; its objects are tsys-ci-serve.
	ServeRelease = "tsys-ci"
	// ServeChart is the name in templates/serve/Chart.yaml.
	ServeChart                = "tsys-ci-serve"
	DefaultServeNamespace     = "tsys-ci"
	DefaultServeReplicas      = 2
	DefaultServeWebhookSecret = "tsys-ci-serve-webhook"
	// ServeBindSecret holds serve's directory bind password (key ldap-bind-password).
	ServeBindSecret = "tsys-ci-serve-ldap-bind"
	// ServeLDAPCASecret holds the directory's CA (key ldap-ca.pem) when ldap.caFile is set.
	ServeLDAPCASecret = "tsys-ci-serve-ldap-ca"
)

// PromotePoolNamespace and PromotePoolName are where promote reads its
// pool (rollout's defaults, which promote and serve use).
const (
	PromotePoolNamespace = rollout.DefaultAllocNamespace
	PromotePoolName      = rollout.DefaultAllocName
)

func (p *PaaS) applyDefaults() {
	s := p.Serve
	if s == nil {
		return
	}
	if s.Namespace == "" {
		s.Namespace = DefaultServeNamespace
	}
	if s.Replicas == 0 {
		s.Replicas = DefaultServeReplicas
	}
	if s.WebhookSecret == "" {
		s.WebhookSecret = DefaultServeWebhookSecret
	}
}

// releases are the Helm releases plan and apply handle, in install order:
// the enabled components, then serve (it needs MetalLB's pool, Harbor and
// the directory).
func (s *Spec) releases() []string {
	var out []string
	for _, name := range ComponentOrder {
		if s.Enabled(name) {
			out = append(out, name)
		}
	}
	if s.PaaS.Serve != nil {
		out = append(out, ServeComponent)
	}
	return out
}

// component returns a release's chart settings; serve's come from paas.serve.
func (s *Spec) component(name string) Component {
	if name == ServeComponent && s.PaaS.Serve != nil {
		sv := s.PaaS.Serve
		return Component{Chart: ServeChart, Repo: sv.Repo, Version: sv.Version, Namespace: sv.Namespace, Bind: sv.Bind, Values: sv.Values}
	}
	return s.Components[name]
}

// releaseName is the Helm release of a component: its name, except serve.
func releaseName(component string) string {
	if component == ServeComponent {
		return ServeRelease
	}
	return component
}

// ServeRegistry is the registry host serve deploys from.
func (s *Spec) ServeRegistry() string {
	if s.PaaS.Serve == nil {
		return ""
	}
	if s.PaaS.Serve.Registry != "" {
		return s.PaaS.Serve.Registry
	}
	return s.Domains.Harbor
}

// ServeWebhookPath is where serve takes Harbor's webhook deliveries
// (pipeline/serve's route).
const ServeWebhookPath = "/webhook/harbor"

// ServeWebhookURL is the address Harbor's webhook policies call:
// paas.serve.webhookURL, else serve's Service inside the cluster
// (https://tsys-ci-serve.<namespace>.svc.<clusterDomain>/webhook/harbor,
// http:// on port 80 with tls.insecurePlainHTTP, as the rendered values
// make the Service). "" without paas.serve.
func (s *Spec) ServeWebhookURL() string {
	sv := s.PaaS.Serve
	if sv == nil {
		return ""
	}
	if sv.WebhookURL != "" {
		return sv.WebhookURL
	}
	scheme := "https"
	if sv.TLS.SecretName == "" {
		scheme = "http"
	}
	return scheme + "://" + ServeChart + "." + sv.Namespace + ".svc." + s.K3s.ClusterDomain + ServeWebhookPath
}

func resolveLocalServeChart(spec *Spec, dir string) {
	if sv := spec.PaaS.Serve; sv != nil {
		if local, ok := strings.CutPrefix(sv.Repo, "file://"); ok && !filepath.IsAbs(local) {
			sv.Repo = "file://" + filepath.Join(dir, local)
		}
	}
}
