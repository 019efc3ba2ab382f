package serve

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStagesConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "shop.yaml"), []byte("name: shop\nports: [{name: http, containerPort: 8080}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	head := "registry: harbor.company.example\ninsecurePlainHTTP: true\nldap: {url: 'ldaps://ucs:7636', baseDN: 'dc=x'}\npolicies:\n- name: p\n  repository: demo/shop\n  tags: 'main-*'\n  app: shop\n  namespace: shop\n  spec: shop.yaml\n  stages:\n"
	good := head + "  - {name: dev}\n  - {name: staging, namespace: shop-staging, after: 10m}\n  - {name: production, namespace: shop-prod, approval: {group: release-managers, fourEyes: true}}\n"
	cfg, err := ParseConfig([]byte(good), dir)
	if err != nil {
		t.Fatal(err)
	}
	st := cfg.Policies[0].Stages
	if len(st) != 3 || st[0].Namespace != "shop" || st[1].soak() != 10*time.Minute || st[2].Approval.Group != "release-managers" || !st[2].Approval.FourEyes {
		t.Fatalf("stages %+v", st)
	}
	if got := st[2].gatesText(); got != "approval by group release-managers (four eyes: not the pusher)" {
		t.Errorf("gates %q", got)
	}
	for _, tc := range []struct{ name, yaml, words string }{
		{"one stage", head + "  - {name: dev}\n", "policies[0].stages: has one stage"},
		{"first stage elsewhere", strings.Replace(good, "{name: dev}", "{name: dev, namespace: other}", 1), `policies[0].stages[0].namespace: "other", but the first stage is where a push deploys`},
		{"gate on the first stage", strings.Replace(good, "{name: dev}", "{name: dev, after: 1m}", 1), "policies[0].stages[0]: the first stage is deployed on push and has no gates"},
		{"no namespace", strings.Replace(good, "namespace: shop-staging, ", "", 1), "policies[0].stages[1].namespace: is required"},
		{"same namespace", strings.Replace(good, "shop-prod", "shop-staging", 1), `policies[0].stages[2].namespace: "shop-staging" is also the namespace of stages[1]`},
		{"same name", strings.Replace(good, "name: production", "name: staging", 1), `policies[0].stages[2].name: "staging" is also the name of stages[1]`},
		{"bad after", strings.Replace(good, "after: 10m", "after: -1m", 1), "policies[0].stages[1].after: -1m0s is not a soak time"},
		{"after not a duration", strings.Replace(good, "after: 10m", "after: soon", 1), "soon"},
		{"no group", strings.Replace(good, "group: release-managers, ", "", 1), "policies[0].stages[2].approval.group: is required"},
		{"bad group DN", strings.Replace(good, "group: release-managers", "group: 'cn=,='", 1), "is not a group DN"},
		{"approval without ldap", strings.Replace(good, "ldap: {url: 'ldaps://ucs:7636', baseDN: 'dc=x'}\n", "", 1), "policies[0].stages[2].approval: needs ldap"},
		{"another policy into a stage", good + "- {name: q, repository: demo/shop, tags: 'v*', app: shop, namespace: shop-prod, spec: shop.yaml}\n",
			"policies[1]: deploys app shop into namespace shop-prod, as policies[0] (p) does, and one of them has stages"},
		{"another policy into the first stage", good + "- {name: q, repository: demo/shop, tags: 'v*', app: shop, namespace: shop, spec: shop.yaml}\n",
			"policies[1]: deploys app shop into namespace shop, as policies[0] (p) does"},
		{"unknown gate", strings.Replace(good, "after: 10m", "soak: 10m", 1), `unknown field "soak"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml), dir)
			if err == nil || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("got %v, want %q", err, tc.words)
			}
		})
	}
}

func TestApprovalGroupByCNOrDN(t *testing.T) {
	id := &Identity{Login: "bob", Groups: []string{"cn=Release-Managers,cn=groups,dc=x", "cn=devs,cn=groups,dc=x"}}
	for group, want := range map[string]bool{
		"release-managers": true, "cn=release-managers,cn=groups,dc=x": true, "devs": true,
		"ops": false, "cn=release-managers,cn=other,dc=x": false, "groups": false,
	} {
		if got := inGroup(id, group); got != want {
			t.Errorf("inGroup(%q) = %v, want %v", group, got, want)
		}
	}
}
