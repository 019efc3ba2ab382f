package platform

// Domain is the public host name of a component behind the HAProxy edge
// (domains.<component>, default <component>.<domains.base>); "" for a
// component without one.
func (s *Spec) Domain(component string) string {
	d := s.Domains
	return map[string]string{"rancher": d.Rancher, "harbor": d.Harbor, "keycloak": d.Keycloak, "jenkins": d.Jenkins}[component]
}

// URL is the address people and tsys-ci reach a component at: https:// on
// its domain, as its rendered values give it (Harbor's externalURL,
// Jenkins' jenkinsUrl). `registry setup --platform` and `jenkins seed
// --platform` read Harbor's and Jenkins' from here, so nothing is typed
// twice.
func (s *Spec) URL(component string) string {
	if d := s.Domain(component); d != "" {
		return "https://" + d
	}
	return ""
}
