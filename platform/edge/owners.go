package edge

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Owners declares which namespaces may claim which host names and TCP
// frontend ports at the edge (issue 17, finding 6). Without it any Service
// in any watched namespace could take any name, `sso.company.example`
// included, or any port of the edge host. It is the edge host's own file
// (`tsys-ci edge sync --owners FILE`), written by the HAProxy
// administrator, so nobody with only Service rights in the cluster can
// change it:
//
//	namespaces:
//	  shop:
//	    hosts: [shop.company.example, "*.shop.company.example"]
//	    tcpPorts: [2222]
//	  web:
//	    hosts: ["*.web.company.example"]
//
// A host entry is a name, or "*.DOMAIN" for every name below DOMAIN (one
// or more labels; DOMAIN itself is not included). A namespace that is not
// listed may claim nothing.
type Owners struct {
	Namespaces map[string]Claims `json:"namespaces"`
	// Source names the file, for messages.
	Source string `json:"-"`
}

// Claims is what one namespace may claim.
type Claims struct {
	Hosts    []string `json:"hosts,omitempty"`
	TCPPorts []int    `json:"tcpPorts,omitempty"`
}

// LoadOwners reads and checks the owners file at path.
func LoadOwners(path string) (*Owners, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the edge owners file: %w", err)
	}
	o, err := ParseOwners(data)
	if err != nil {
		return nil, fmt.Errorf("edge owners file %s: %w", path, err)
	}
	o.Source = path
	return o, nil
}

// ParseOwners parses an owners file (YAML or JSON) strictly: unknown fields,
// malformed host patterns and ports outside 1-65535 are errors.
func ParseOwners(data []byte) (*Owners, error) {
	var o Owners
	if err := yaml.UnmarshalStrict(data, &o); err != nil {
		return nil, fmt.Errorf("not a valid owners file (namespaces: {NS: {hosts: [...], tcpPorts: [...]}}): %w", err)
	}
	if len(o.Namespaces) == 0 {
		return nil, fmt.Errorf("it lists no namespaces; add namespaces: {NS: {hosts: [...], tcpPorts: [...]}}")
	}
	for ns, c := range o.Namespaces {
		if ns == "" {
			return nil, fmt.Errorf("a namespace with an empty name")
		}
		for _, h := range c.Hosts {
			if err := ValidateHost(strings.TrimPrefix(h, "*.")); err != nil {
				return nil, fmt.Errorf("namespace %s: host %q: %v (a name, or *.DOMAIN)", ns, h, err)
			}
		}
		for _, p := range c.TCPPorts {
			if p < 1 || p > 65535 {
				return nil, fmt.Errorf("namespace %s: TCP port %d is not in 1-65535", ns, p)
			}
		}
	}
	return &o, nil
}

// hostRule says whether namespace ns may claim host, and the rule that
// decided, for messages.
func (o *Owners) hostRule(ns, host string) (bool, string) {
	c, ok := o.Namespaces[ns]
	if !ok {
		return false, fmt.Sprintf("namespace %s is not listed in the edge owners file %s, so it may claim no host", ns, o.source())
	}
	for _, pat := range c.Hosts {
		if pat == host || (strings.HasPrefix(pat, "*.") && strings.HasSuffix(host, pat[1:])) {
			return true, ""
		}
	}
	if len(c.Hosts) == 0 {
		return false, fmt.Sprintf("the edge owners file %s gives namespace %s no hosts", o.source(), ns)
	}
	return false, fmt.Sprintf("the edge owners file %s gives namespace %s only the hosts %s", o.source(), ns, strings.Join(c.Hosts, ", "))
}

// portRule is hostRule for TCP frontend ports.
func (o *Owners) portRule(ns string, port int) (bool, string) {
	c, ok := o.Namespaces[ns]
	if !ok {
		return false, fmt.Sprintf("namespace %s is not listed in the edge owners file %s, so it may claim no TCP port", ns, o.source())
	}
	if slices.Contains(c.TCPPorts, port) {
		return true, ""
	}
	if len(c.TCPPorts) == 0 {
		return false, fmt.Sprintf("the edge owners file %s gives namespace %s no TCP ports", o.source(), ns)
	}
	ps := make([]string, len(c.TCPPorts))
	for i, p := range c.TCPPorts {
		ps[i] = strconv.Itoa(p)
	}
	return false, fmt.Sprintf("the edge owners file %s gives namespace %s only the TCP ports %s", o.source(), ns, strings.Join(ps, ", "))
}

func (o *Owners) source() string {
	if o.Source == "" {
		return "(--owners)"
	}
	return o.Source
}
