package serve

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Stage is one place a policy's pushed digest goes through (dev, staging,
// production): its namespace and the gates the digest must pass before
// serve deploys it there. The first stage is the policy's own namespace
// and is deployed on push; it has no gates.
type Stage struct {
	Name string `json:"name"`
	// Namespace the stage's copy of the app runs in (the first stage's is
	// the policy's namespace; it may be left out there).
	Namespace string `json:"namespace,omitempty"`
	// After is the soak gate: the previous stage must have served the
	// digest, promoted and not rolled back, for at least this long.
	After *metav1.Duration `json:"after,omitempty"`
	// Approval is the approval gate: a member of a directory group
	// approves the digest for this stage.
	Approval *ApprovalGate `json:"approval,omitempty"`
}

// ApprovalGate says who may let a digest into a stage.
type ApprovalGate struct {
	// Group is the directory group whose members approve: a DN
	// (cn=release-managers,cn=groups,dc=example,dc=com) or a CN alone
	// (release-managers), compared with the first RDN of the person's
	// groups.
	Group string `json:"group"`
	// FourEyes refuses the pusher (the Harbor event's operator) as
	// approver of their own push.
	FourEyes bool `json:"fourEyes,omitempty"`
}

// soak is the stage's after gate, 0 when it has none.
func (st Stage) soak() time.Duration {
	if st.After == nil {
		return 0
	}
	return st.After.Duration
}

// gatesText lists the stage's gates for messages ("after 10m0s, approval
// by group release-managers (four eyes)"), "none" when it has none.
func (st Stage) gatesText() string {
	var g []string
	if st.After != nil {
		g = append(g, "after "+st.After.Duration.String())
	}
	if a := st.Approval; a != nil {
		t := "approval by group " + a.Group
		if a.FourEyes {
			t += " (four eyes: not the pusher)"
		}
		g = append(g, t)
	}
	if len(g) == 0 {
		return "none"
	}
	return strings.Join(g, ", ")
}

// inGroup reports whether id is a member of group, a DN or a CN (see
// ApprovalGate.Group).
func inGroup(id *Identity, group string) bool {
	if strings.Contains(group, "=") {
		return id.InGroup(group)
	}
	for _, g := range id.Groups {
		d, err := ldap.ParseDN(g)
		if err != nil || len(d.RDNs) == 0 || len(d.RDNs[0].Attributes) == 0 {
			continue
		}
		a := d.RDNs[0].Attributes[0]
		if strings.EqualFold(a.Type, "cn") && strings.EqualFold(a.Value, group) {
			return true
		}
	}
	return false
}

// stages checks a policy's stages; the first one's namespace is filled in
// from the policy.
func (c *cfgChecker) stages(f string, p *DeployPolicy, haveLDAP bool) {
	if len(p.Stages) == 0 {
		return
	}
	if len(p.Stages) == 1 {
		c.add(f+".stages", "has one stage; a push deploys to the policy's namespace anyway, so list at least two (or none)")
	}
	names, namespaces := map[string]int{}, map[string]int{}
	for i := range p.Stages {
		st := &p.Stages[i]
		sf := fmt.Sprintf("%s.stages[%d]", f, i)
		if i == 0 {
			switch {
			case st.Namespace == "":
				st.Namespace = p.Namespace
			case st.Namespace != p.Namespace:
				c.add(sf+".namespace", "%q, but the first stage is where a push deploys, the policy's namespace %q; leave it out or make them the same", st.Namespace, p.Namespace)
			}
			if st.After != nil || st.Approval != nil {
				c.add(sf, "the first stage is deployed on push and has no gates; put after and approval on a later stage")
			}
		}
		if st.Name == "" {
			c.add(sf+".name", "is required (dev, staging, production, ...)")
		} else {
			for _, msg := range validation.IsDNS1123Label(st.Name) {
				c.add(sf+".name", "%q is not a stage name: %s", st.Name, msg)
			}
			if j, ok := names[st.Name]; ok {
				c.add(sf+".name", "%q is also the name of stages[%d]; names must be unique", st.Name, j)
			}
			names[st.Name] = i
		}
		if st.Namespace == "" {
			c.add(sf+".namespace", "is required: the namespace the stage's copy of %s runs in", p.App)
		} else {
			for _, msg := range validation.IsDNS1123Label(st.Namespace) {
				c.add(sf+".namespace", "%q is not a namespace name: %s", st.Namespace, msg)
			}
			if j, ok := namespaces[st.Namespace]; ok {
				c.add(sf+".namespace", "%q is also the namespace of stages[%d]; each stage needs its own", st.Namespace, j)
			}
			namespaces[st.Namespace] = i
		}
		if st.After != nil && st.After.Duration <= 0 {
			c.add(sf+".after", "%s is not a soak time; give a positive duration such as 30m", st.After.Duration)
		}
		if a := st.Approval; a != nil {
			switch {
			case a.Group == "":
				c.add(sf+".approval.group", "is required: the CN or DN of the directory group whose members approve")
			case strings.Contains(a.Group, "="):
				if d, err := ldap.ParseDN(a.Group); err != nil || len(d.RDNs) == 0 {
					c.add(sf+".approval.group", "%q is not a group DN such as cn=release-managers,cn=groups,dc=example,dc=com (or give the CN alone)", a.Group)
				}
			}
			if !haveLDAP {
				c.add(sf+".approval", "needs ldap: approvers log in with their directory account")
			}
		}
	}
}

// stagedAlone refuses two policies deploying one app into a namespace
// when either is staged: the other's pushes would pass the gates by, and
// two staged policies of one app would share (and fight over) one record.
func (c *cfgChecker) stagedAlone(policies []DeployPolicy) {
	places := func(p DeployPolicy) []string {
		out := []string{p.Namespace}
		for _, st := range p.Stages {
			if st.Namespace != "" && !slices.Contains(out, st.Namespace) {
				out = append(out, st.Namespace)
			}
		}
		return out
	}
	for i, p := range policies {
		for j := i + 1; j < len(policies); j++ {
			o := policies[j]
			if o.App != p.App || (len(p.Stages) == 0 && len(o.Stages) == 0) {
				continue
			}
			for _, ns := range places(o) {
				if slices.Contains(places(p), ns) {
					c.add(fmt.Sprintf("policies[%d]", j), "deploys app %s into namespace %s, as policies[%d] (%s) does, and one of them has stages; a staged app is deployed by its one policy only (give that policy the other tags, or use another app name)", o.App, ns, i, p.Name)
					break
				}
			}
		}
	}
}
