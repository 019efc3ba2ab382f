package serve

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServeConfigLoads(t *testing.T) {
	cfg, err := LoadConfig("testdata/serve/serve.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Policies) != 3 || cfg.Policies[1].Strategy != "canary" || !filepath.IsAbs(cfg.Policies[0].Spec) && !strings.HasPrefix(cfg.Policies[0].Spec, "testdata/serve/") {
		t.Fatalf("decoded %+v", cfg.Policies)
	}
}

func TestServeConfigErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "shop.yaml")
	if err := os.WriteFile(spec, []byte("name: shop\nports: [{name: http, containerPort: 8080}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := "registry: harbor.company.example\ninsecurePlainHTTP: true\npolicies:\n- {name: p, repository: demo/shop, tags: 'main-*', app: shop, namespace: shop, spec: shop.yaml}\n"
	for _, tc := range []struct {
		name, yaml, field, words string
	}{
		{"unknown field", "policies:\n- {name: p, repo: demo/shop}\n", "", `unknown field "repo"`},
		{"unknown top-level", good + "polices: []\n", "", `unknown field "polices"`},
		{"bad repository", strings.Replace(good, "demo/shop", "Demo/Shop", 1), "policies[0].repository", "not a Harbor repository"},
		{"no project", strings.Replace(good, "demo/shop", "shop", 1), "policies[0].repository", "project/name"},
		{"bad glob", strings.Replace(good, "main-*", "main-[", 1), "policies[0].tags", "not a glob"},
		{"no tags", strings.Replace(good, "tags: 'main-*', ", "", 1), "policies[0].tags", "is required"},
		{"bad app", strings.Replace(good, "app: shop", "app: Shop_1", 1), "policies[0].app", "not a valid name"},
		{"app is not the spec's", strings.Replace(good, "app: shop", "app: blog", 1), "policies[0].app", `spec`},
		{"namespace is not the spec's", strings.Replace(good, "namespace: shop", "namespace: prod", 1), "policies[0].namespace", `says namespace "shop"`},
		{"bad strategy", strings.Replace(good, "spec:", "strategy: bluegreen, spec:", 1), "policies[0].strategy", "not one of blueGreen"},
		{"bad envSecret", strings.Replace(good, "spec:", "envSecret: Shop_Env, spec:", 1), "policies[0].envSecret", "not a Secret name"},
		{"missing spec", strings.Replace(good, "spec: shop.yaml", "spec: nope.yaml", 1), "policies[0].spec", "no such file"},
		{"duplicate name", good + strings.TrimPrefix(good, "registry: harbor.company.example\ninsecurePlainHTTP: true\npolicies:\n"), "policies[1].name", "also the name of policies[0]"},
		{"access bad ns", good + "ldap: {url: 'ldaps://ucs:7636', baseDN: 'dc=x'}\naccess: {Shop: 'cn=g,dc=x'}\n", "access.Shop", "not a namespace"},
		{"access bad dn", good + "ldap: {url: 'ldaps://ucs:7636', baseDN: 'dc=x'}\naccess: {shop: 'deployers'}\n", "access.shop", "not a group DN"},
		{"access without ldap", good + "access: {shop: 'cn=g,dc=x'}\n", "ldap", "missing"},
		{"dashboard without key file", good + "ldap: {url: 'ldaps://ucs:7636', baseDN: 'dc=x'}\ndashboard: {}\n", "dashboard.sessionKeyFile", "is required"},
		{"dashboard without ldap", good + "dashboard: {sessionKeyFile: /k}\n", "ldap", "the dashboard logs people in"},
		{"dashboard typo", good + "dashboard: {sessionKey: /k}\n", "", `unknown field "sessionKey"`},
		{"ldap plaintext", good + "ldap: {url: 'ldap://ucs:7389', baseDN: 'dc=x'}\n", "ldap.startTLS", "in clear"},
		{"ldap bad url", good + "ldap: {url: 'http://ucs', baseDN: 'dc=x'}\n", "ldap.url", "not ldap://"},
		{"ldap bind without password", good + "ldap: {url: 'ldaps://ucs', baseDN: 'dc=x', bindDN: 'cn=svc,dc=x'}\n", "ldap.bindDN", "bindPasswordFile"},
		{"ldap bad filter", good + "ldap: {url: 'ldaps://ucs', baseDN: 'dc=x', userFilter: '(uid=*'}\n", "ldap.userFilter", "not an LDAP filter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml), dir)
			if err == nil {
				t.Fatal("accepted")
			}
			var ce *ConfigError
			if tc.field != "" && !errors.As(err, &ce) {
				t.Fatalf("error %v is not a ConfigError", err)
			}
			if !strings.Contains(err.Error(), tc.field+": ") || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("error %q does not name %q with %q", err, tc.field, tc.words)
			}
		})
	}
	if _, err := ParseConfig([]byte(good), dir); err != nil {
		t.Fatalf("the good config was refused: %v", err)
	}
	withEnv := strings.Replace(good, "spec:", "envSecret: shop-env.v1, spec:", 1)
	if cfg, err := ParseConfig([]byte(withEnv), dir); err != nil || cfg.Policies[0].EnvSecret != "shop-env.v1" {
		t.Fatalf("a policy with envSecret: %v", err)
	}
}

func TestMatchPolicies(t *testing.T) {
	cfg, err := LoadConfig("testdata/serve/serve.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		repo, tag string
		want      []string // policy names
		reason    string
	}{
		{"demo/shop", "main-abc1234", []string{"shop-main"}, ""},
		{"demo/shop", "v1.2.3", []string{"shop-release"}, ""},
		{"demo/shop", "v", nil, `tag "v" of demo/shop matches no policy`},
		{"demo/shop", "feature-main-1", nil, "matches no policy"},
		{"demo/shop", "", nil, "pushed by digest"},
		{"demo/shop", "sha256-" + strings.Repeat("0", 64) + ".sig", nil, "cosign"},
		{"demo/shop", "sha256-" + strings.Repeat("0", 64) + ".att", nil, "cosign"},
		{"web/blog/frontend", "anything", []string{"blog"}, ""},
		{"web/blog", "main-1", nil, "no policy for repository web/blog"},
		{"demo/shopping", "main-1", nil, "no policy for repository"},
	} {
		t.Run(tc.repo+":"+tc.tag, func(t *testing.T) {
			ev, err := ParseHarborEvent(harborPush(tc.repo, tc.tag, 1764039600, 1))
			if err != nil {
				t.Fatal(err)
			}
			got, reason := Match(cfg.Policies, ev)
			var names []string
			for _, p := range got {
				names = append(names, p.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.want, ",") || !strings.Contains(reason, tc.reason) || (tc.want == nil) == (reason == "") {
				t.Fatalf("matched %v reason %q, want %v reason %q", names, reason, tc.want, tc.reason)
			}
		})
	}
}

// FuzzParseConfig: any serve.yaml is either refused with an error or
// yields policies that all passed validation.
func FuzzParseConfig(f *testing.F) {
	seed, err := os.ReadFile("testdata/serve/serve.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("policies: [{name: p, repository: a/b, tags: '[', app: x, namespace: y, spec: shop.yaml}]\n"))
	f.Add([]byte("ldap: {url: 'ldaps://h', baseDN: 'dc=x'}\naccess: {shop: 'cn=g,dc=x'}\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data, "testdata/serve")
		if err != nil {
			return
		}
		for _, p := range cfg.Policies {
			if !repoRE.MatchString(p.Repository) || p.App == "" || p.Namespace == "" {
				t.Fatalf("accepted policy %+v", p)
			}
		}
	})
}
