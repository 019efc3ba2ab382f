package platform

import (
	"fmt"
	"net/netip"
	"net/url"
)

// Gateway is the API gateway: k3s's own Traefik, configured through the
// HelmChartConfig kube-system/traefik that render writes
// (manifests/gateway.yaml) and platform apply applies; k3s's helm
// controller then upgrades Traefik with it. Apps put their APIs behind it
// with the api: section of their spec (promote renders Traefik's
// IngressRoute and Middleware objects). Traefik OSS does not validate OIDC
// tokens itself: a route that names directory groups asks AuthURL
// (forwardAuth), an auth service such as oauth2-proxy v7 logged in to the
// IAM as OIDC.ClientID, which checks the token and its groups claim.
// Reasons and the full picture: docs/platform.md, "API gateway".
type Gateway struct {
	// Replicas of Traefik, spread over the workers (default 2; fewer is
	// accepted and flagged by platform doctor).
	Replicas int `json:"replicas,omitempty"`
	// AuthURL is the forwardAuth address of the auth service (e.g.
	// http://oauth2-proxy.kube-system.svc.cluster.local:4180/oauth2/auth).
	// Promote writes it into the Middleware of every route that names
	// groups; without it such an app is refused.
	AuthURL string `json:"authURL,omitempty"`
	// TrustedProxies are the addresses (or CIDRs) of the HAProxy edge:
	// Traefik keeps their X-Forwarded-For, so an app's ipAllowList and
	// rate limit see the client the edge saw, not the edge.
	TrustedProxies []string `json:"trustedProxies,omitempty"`
	// OIDC is the IAM client the auth service logs in with.
	OIDC *GatewayOIDC `json:"oidc,omitempty"`
	// Values are merged over the rendered Traefik chart values (maps
	// merge, everything else replaces).
	Values map[string]any `json:"values,omitempty"`
}

// GatewayOIDC names the IAM (Keycloak, federating UCS) client of the
// gateway's auth service. The client secret never appears in
// platform.yaml: it comes from an environment variable or a file, and
// goes into Secret kube-system/tsys-ci-gateway-oidc (SECRETS.txt).
type GatewayOIDC struct {
	// IssuerURL is the realm's issuer, e.g.
	// https://keycloak.tsys.example/realms/tsys: tokens must carry it as iss.
	IssuerURL string `json:"issuerURL"`
	ClientID  string `json:"clientID"`
	// ClientSecretEnv or ClientSecretFile: where the client secret comes from.
	ClientSecretEnv  string `json:"clientSecretEnv,omitempty"`
	ClientSecretFile string `json:"clientSecretFile,omitempty"`
	// GroupsClaim is the token claim holding the user's directory groups
	// (default groups: Keycloak's group membership mapper).
	GroupsClaim string `json:"groupsClaim,omitempty"`
}

// Gateway defaults and names.
const (
	DefaultGatewayReplicas    = 2
	DefaultGatewayGroupsClaim = "groups"
	// GatewayNamespace and GatewayChartConfig name Traefik's
	// HelmChartConfig, which k3s reads only under this name.
	GatewayNamespace   = "kube-system"
	GatewayChartConfig = "traefik"
	// GatewayOIDCSecret holds the auth service's client secret (key
	// client-secret).
	GatewayOIDCSecret = "tsys-ci-gateway-oidc"
)

func (g *Gateway) applyDefaults() {
	if g == nil {
		return
	}
	if g.Replicas == 0 {
		g.Replicas = DefaultGatewayReplicas
	}
	if g.OIDC != nil && g.OIDC.GroupsClaim == "" {
		g.OIDC.GroupsClaim = DefaultGatewayGroupsClaim
	}
}

func (v *validator) gateway(s *Spec) {
	g := s.Gateway
	if g == nil {
		return
	}
	const p = "gateway"
	for _, d := range s.K3s.Disable {
		if d == "traefik" {
			v.add(p, "the gateway is k3s's own Traefik, but k3s.disable lists traefik; remove traefik from k3s.disable (or remove gateway)")
		}
	}
	if g.Replicas < 0 {
		v.add(p+".replicas", "is %d; give 2 or more (leave it out for 2)", g.Replicas)
	}
	if g.AuthURL != "" {
		if u, err := url.Parse(g.AuthURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			v.add(p+".authURL", "%q is not an http:// or https:// URL; name the auth service's forwardAuth address, e.g. http://oauth2-proxy.kube-system.svc.cluster.local:4180/oauth2/auth", g.AuthURL)
		}
	}
	for i, a := range g.TrustedProxies {
		if _, err := netip.ParsePrefix(a); err != nil {
			if _, err := netip.ParseAddr(a); err != nil {
				v.add(fmt.Sprintf("%s.trustedProxies[%d]", p, i), "%q is neither an address nor a CIDR; write the edge's address, e.g. 10.251.50.5 or 10.251.50.0/28", a)
			}
		}
	}
	o := g.OIDC
	if o == nil {
		return
	}
	if u, err := url.Parse(o.IssuerURL); err != nil || u.Host == "" || u.Scheme != "https" {
		v.add(p+".oidc.issuerURL", "%q is not an https:// URL; give the IAM realm's issuer, e.g. https://keycloak.tsys.example/realms/tsys", o.IssuerURL)
	}
	if o.ClientID == "" {
		v.add(p+".oidc.clientID", "missing; name the IAM client the gateway's auth service logs in as")
	}
	switch {
	case o.ClientSecretEnv == "" && o.ClientSecretFile == "":
		v.add(p+".oidc", "no client secret; name where it comes from with clientSecretEnv or clientSecretFile (never the secret itself)")
	case o.ClientSecretEnv != "" && o.ClientSecretFile != "":
		v.add(p+".oidc", "both clientSecretEnv and clientSecretFile; give one")
	case o.ClientSecretEnv != "" && !envVarName.MatchString(o.ClientSecretEnv):
		v.add(p+".oidc.clientSecretEnv", "%q is not an environment variable name", o.ClientSecretEnv)
	}
	if g.AuthURL == "" {
		v.add(p+".authURL", "missing while gateway.oidc is set; name the forwardAuth address of the auth service that checks the tokens (e.g. http://oauth2-proxy.kube-system.svc.cluster.local:4180/oauth2/auth)")
	}
}

// gatewaySecretLine is SECRETS.txt's line for the gateway.
func gatewaySecretLine(s *Spec) string {
	o := s.Gateway.OIDC
	src := "$" + o.ClientSecretEnv
	if o.ClientSecretFile != "" {
		src = "file " + o.ClientSecretFile
	}
	return fmt.Sprintf("%-16s Secret %s/%s key client-secret = %s (IAM client %s at %s; read by the auth service at gateway.authURL)", "gateway", GatewayNamespace, GatewayOIDCSecret, src, o.ClientID, o.IssuerURL)
}
