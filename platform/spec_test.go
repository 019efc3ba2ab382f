package platform

import (
	"errors"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const examplePath = "../templates/platform/platform.yaml"

func loadExample(t *testing.T) *Spec {
	t.Helper()
	spec, err := LoadSpec(examplePath)
	if err != nil {
		t.Fatalf("the example platform.yaml does not load: %v", err)
	}
	return spec
}

func TestExampleLoads(t *testing.T) {
	spec := loadExample(t)
	var names []string
	for _, h := range spec.JoinOrder() {
		names = append(names, h.Name)
	}
	if got, want := strings.Join(names, ","), "db1,db2,db3,www2,www3,www1"; got != want {
		t.Errorf("join order %s, want %s", got, want)
	}
	if got := spec.RegistrationURL(); got != "https://k8s-api.tsys.lan:6443" {
		t.Errorf("registration URL %s", got)
	}
	if got := spec.Components["harbor"].Namespace; got != "harbor" {
		t.Errorf("harbor namespace defaulted to %q", got)
	}
	if got := spec.BindFor("rancher").DN; got != spec.LDAP.Bind.DN {
		t.Errorf("rancher binds as %q, want the shared account", got)
	}
	if got := spec.AdminGroupFor("jenkins"); got != "jenkins-admins" {
		t.Errorf("jenkins admin group %q", got)
	}
	if g := spec.Gateway; g == nil || g.Replicas != 2 || g.OIDC == nil || g.OIDC.GroupsClaim != "groups" {
		t.Errorf("gateway %+v, want 2 replicas and the groups claim defaulted", g)
	}
}

// mutate loads the example as a generic document, applies edit and
// serialises it again, so each case changes exactly one thing.
func mutate(t *testing.T, edit func(doc map[string]any)) []byte {
	t.Helper()
	raw, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc)
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func m(doc map[string]any, key string) map[string]any { return doc[key].(map[string]any) }

func host(doc map[string]any, i int) map[string]any { return doc["hosts"].([]any)[i].(map[string]any) }

// TestLDAPInClearOnlyWithOptIn (issue 17, finding 5): ldap:// is accepted
// with StartTLS, or without it only with insecurePlaintext: true.
func TestLDAPInClearOnlyWithOptIn(t *testing.T) {
	for name, edit := range map[string]func(map[string]any){
		"starttls": func(d map[string]any) {
			m(d, "ldap")["url"] = "ldap://ucs.tsys.lan:7389"
			m(d, "ldap")["startTLS"] = true
		},
		"opt-in": func(d map[string]any) {
			m(d, "ldap")["url"] = "ldap://ucs.tsys.lan:7389"
			m(d, "ldap")["insecurePlaintext"] = true
		},
	} {
		if _, err := ParseSpec(mutate(t, edit)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValidationNamesTheField(t *testing.T) {
	cases := []struct {
		name     string
		edit     func(doc map[string]any)
		path     string
		contains string
	}{
		{"bad host address", func(d map[string]any) { host(d, 1)["address"] = "10.251.51.x" }, "hosts[1].address", "not an IP"},
		{"duplicate address", func(d map[string]any) { host(d, 1)["address"] = "10.251.51.1" }, "hosts[1].address", "also the address of db1"},
		{"duplicate host", func(d map[string]any) { host(d, 4)["name"] = "www2" }, "hosts[4].name", "twice"},
		{"unknown role", func(d map[string]any) { host(d, 3)["role"] = "worker" }, "hosts[3].role", `"worker"`},
		{"even servers", func(d map[string]any) { host(d, 2)["role"] = "agent" }, "hosts", "odd number"},
		{"first server last", func(d map[string]any) { host(d, 0)["joinLast"] = true }, "hosts[0].joinLast", "initialises"},
		{"k3s version", func(d map[string]any) { m(d, "k3s")["version"] = "1.34" }, "k3s.version", "not a k3s release"},
		{"registration scheme", func(d map[string]any) { m(d, "k3s")["registrationAddress"] = "https://x:6443" }, "k3s.registrationAddress", "no scheme"},
		{"servicelb kept", func(d map[string]any) { m(d, "k3s")["disable"] = []any{"traefik"} }, "k3s.disable", "servicelb"},
		{"unknown disable", func(d map[string]any) { m(d, "k3s")["disable"] = []any{"servicelb", "flannel"} }, "k3s.disable[1]", "not a k3s component"},
		{"dns outside services", func(d map[string]any) { m(d, "k3s")["clusterDNS"] = "10.42.0.10" }, "k3s.clusterDNS", "outside serviceCIDR"},
		{"overlapping cidrs", func(d map[string]any) { m(d, "k3s")["serviceCIDR"] = "10.42.128.0/17" }, "k3s.serviceCIDR", "overlaps"},
		{"noexecute taint", func(d map[string]any) { m(d, "k3s")["serverTaints"] = []any{"CriticalAddonsOnly=true:NoExecute"} }, "k3s.serverTaints[0]", "NoSchedule"},
		{"relative token", func(d map[string]any) { m(d, "k3s")["tokenFile"] = "token" }, "k3s.tokenFile", "absolute"},
		// issue 25: node-failure timings a healthy cluster can live with.
		{"grace not a duration", func(d map[string]any) { m(d, "k3s")["nodeFailure"] = map[string]any{"nodeMonitorGracePeriod": "16"} }, "k3s.nodeFailure.nodeMonitorGracePeriod", "not a positive duration"},
		{"grace under the lease", func(d map[string]any) {
			m(d, "k3s")["nodeFailure"] = map[string]any{"nodeMonitorGracePeriod": "8s"}
		}, "k3s.nodeFailure.nodeMonitorGracePeriod", "8s is shorter than the node lease (10s"},
		{"lease checked once", func(d map[string]any) {
			m(d, "k3s")["nodeFailure"] = map[string]any{"nodeMonitorPeriod": "10s"}
		}, "k3s.nodeFailure.nodeMonitorPeriod", "at least twice"},
		{"one heartbeat per grace", func(d map[string]any) {
			m(d, "k3s")["nodeFailure"] = map[string]any{"nodeStatusUpdateFrequency": "10s"}
		}, "k3s.nodeFailure.nodeStatusUpdateFrequency", "at least twice"},
		{"negative lease", func(d map[string]any) {
			m(d, "k3s")["nodeFailure"] = map[string]any{"nodeLeaseDurationSeconds": -1}
		}, "k3s.nodeFailure.nodeLeaseDurationSeconds", "negative"},
		{"toleration as a raw flag", func(d map[string]any) {
			m(d, "k3s")["kubeAPIServerArgs"] = []any{"default-unreachable-toleration-seconds=60"}
		}, "k3s.kubeAPIServerArgs[0]", "podEvictionSeconds"},
		{"bad pool", func(d map[string]any) {
			m(d, "metallb")["pools"] = []any{map[string]any{"name": "lan", "addresses": []any{"10.251.50.250-10.251.50.200"}}}
		}, "metallb.pools[0].addresses[0]", "before the first"},
		{"pool holds a host", func(d map[string]any) {
			m(d, "metallb")["pools"] = []any{map[string]any{"name": "lan", "addresses": []any{"10.251.50.0/24"}}}
		}, "metallb.pools[0].addresses[0]", "host www2"},
		{"overlapping pools", func(d map[string]any) {
			m(d, "metallb")["pools"] = []any{
				map[string]any{"name": "a", "addresses": []any{"10.251.52.0/25"}},
				map[string]any{"name": "b", "addresses": []any{"10.251.52.100-10.251.52.200"}}}
		}, "metallb.pools[1].addresses[0]", "overlaps"},
		{"storage node unknown", func(d map[string]any) { m(d, "storage")["nodes"] = []any{"db1", "db2", "db4"} }, "storage.nodes[2]", "not one of hosts"},
		{"too many replicas", func(d map[string]any) { m(d, "storage")["nodes"] = []any{"db1", "db2"} }, "storage.replicaCount", "need 3 storage nodes"},
		{"bad policy", func(d map[string]any) { m(d, "storage")["nodeDownPodDeletionPolicy"] = "delete" }, "storage.nodeDownPodDeletionPolicy", "not one of"},
		{"ldap scheme", func(d map[string]any) { m(d, "ldap")["url"] = "http://ucs:7389" }, "ldap.url", "ldap://host"},
		{"starttls on ldaps", func(d map[string]any) { m(d, "ldap")["startTLS"] = true }, "ldap.startTLS", "ldaps://"},
		// issue 17, finding 5: ldap:// without StartTLS is refused, saying what to add.
		{"ldap in clear", func(d map[string]any) { m(d, "ldap")["url"] = "ldap://ucs.tsys.lan:7389" }, "ldap.startTLS",
			"ldap://ucs.tsys.lan:7389 without StartTLS sends the bind password and every login's password in clear; set startTLS: true, use ldaps://, or set insecurePlaintext: true"},
		{"bad base dn", func(d map[string]any) { m(d, "ldap")["baseDN"] = "tsys.lan" }, "ldap.baseDN", "not a DN"},
		{"group base elsewhere", func(d map[string]any) { m(d, "ldap")["groupBase"] = "cn=groups,dc=other" }, "ldap.groupBase", "not under baseDN"},
		{"no password source", func(d map[string]any) { delete(m(d, "ldap")["bind"].(map[string]any), "passwordEnv") }, "ldap.bind", "no password source"},
		{"two password sources", func(d map[string]any) { m(d, "ldap")["bind"].(map[string]any)["passwordFile"] = "/run/pw" }, "ldap.bind", "both"},
		{"bad filter", func(d map[string]any) { m(d, "ldap")["userFilter"] = "(uid=*" }, "ldap.userFilter", "not an LDAP filter"},
		{"admin group dn", func(d map[string]any) { m(d, "ldap")["adminGroup"] = "cn=admins,cn=groups" }, "ldap.adminGroup", "cn of the admin group"},
		{"membership style", func(d map[string]any) { m(d, "ldap")["groupMembership"] = "memberOf" }, "ldap.groupMembership", "not one of"},
		{"unpinned chart", func(d map[string]any) { delete(m(m(d, "components"), "harbor"), "version") }, "components.harbor.version", "pinned"},
		{"missing component", func(d map[string]any) { delete(m(d, "components"), "jenkins") }, "components.jenkins", "missing"},
		{"unknown component", func(d map[string]any) { m(d, "components")["gitea"] = map[string]any{"version": "1.0.0"} }, "components.gitea", "unknown component"},
		{"file repo without path", func(d map[string]any) { m(m(d, "components"), "harbor")["repo"] = "file://" }, "components.harbor.repo", "names no path"},
		{"file repo without slashes", func(d map[string]any) { m(m(d, "components"), "harbor")["repo"] = "file:charts/harbor" }, "components.harbor.repo", "file://"},
		{"component bind", func(d map[string]any) {
			m(m(d, "components"), "harbor")["bind"] = map[string]any{"dn": "uid=x", "passwordEnv": "1BAD"}
		}, "components.harbor.bind.passwordEnv", "not an environment variable"},
		{"domain", func(d map[string]any) { m(d, "domains")["base"] = "Tsys_Example" }, "domains.base", "not a DNS domain"},
		// issue 26: the gateway.
		{"gateway without traefik", func(d map[string]any) { m(d, "k3s")["disable"] = []any{"servicelb", "traefik"} }, "gateway", "remove traefik from k3s.disable"},
		{"gateway replicas", func(d map[string]any) { m(d, "gateway")["replicas"] = -1 }, "gateway.replicas", "2 or more"},
		{"gateway auth url", func(d map[string]any) { m(d, "gateway")["authURL"] = "oauth2-proxy:4180" }, "gateway.authURL", "http:// or https://"},
		{"gateway oidc without auth url", func(d map[string]any) { delete(m(d, "gateway"), "authURL") }, "gateway.authURL", "missing while gateway.oidc is set"},
		{"gateway trusted proxy", func(d map[string]any) { m(d, "gateway")["trustedProxies"] = []any{"edge.tsys.lan"} }, "gateway.trustedProxies[0]", "neither an address nor a CIDR"},
		{"gateway issuer in clear", func(d map[string]any) {
			m(m(d, "gateway"), "oidc")["issuerURL"] = "http://keycloak.tsys.example/realms/tsys"
		}, "gateway.oidc.issuerURL", "https://"},
		{"gateway client", func(d map[string]any) { delete(m(m(d, "gateway"), "oidc"), "clientID") }, "gateway.oidc.clientID", "missing"},
		{"gateway secret", func(d map[string]any) { delete(m(m(d, "gateway"), "oidc"), "clientSecretEnv") }, "gateway.oidc", "no client secret"},
		{"gateway two secrets", func(d map[string]any) { m(m(d, "gateway"), "oidc")["clientSecretFile"] = "/run/secret" }, "gateway.oidc", "both"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec(mutate(t, tc.edit))
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("got %v, want a validation error at %s", err, tc.path)
			}
			for _, p := range verr.Problems {
				if p.Path == tc.path && strings.Contains(p.Message, tc.contains) {
					return
				}
			}
			t.Fatalf("no problem at %s containing %q in:\n%v", tc.path, tc.contains, err)
		})
	}
}

func TestStrictParsing(t *testing.T) {
	cases := []struct {
		name, doc, contains string
	}{
		{"empty", "  \n", "empty"},
		{"unknown field", "apiVersion: tsys-ci.io/v1\nkind: Platform\nhostz: []\n", `unknown field "hostz"`},
		{"inline password", "ldap:\n  bind:\n    dn: uid=a\n    password: hunter2\n", "passwords never go into platform.yaml"},
		{"duplicate key", "kind: Platform\nkind: Platform\n", "already set"},
		{"wrong type", "hosts: 3\n", "hosts"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("got %v, want an error containing %q", err, tc.contains)
			}
		})
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	_, err := ParseSpec(mutate(t, func(d map[string]any) {
		host(d, 0)["address"] = "nope"
		m(d, "k3s")["version"] = "latest"
		m(d, "ldap")["url"] = ""
	}))
	var verr *ValidationError
	if !errors.As(err, &verr) || len(verr.Problems) != 3 {
		t.Fatalf("want exactly 3 problems, got %v", err)
	}
}

func FuzzParseSpec(f *testing.F) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte("hosts: [{name: a, address: '::1', role: server}]\nmetallb: {pools: [{name: p, addresses: ['fd00::/120']}]}"))
	f.Add([]byte("ldap: {url: 'ldap://[::1]:389', baseDN: 'dc=a', userBase: 'cn=u,dc=a'}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := ParseSpec(data)
		if err != nil {
			if spec != nil {
				t.Fatal("ParseSpec returned a spec with an error")
			}
			return
		}
		// A spec that parses must validate again after its defaults are
		// filled in, and its derived views must not panic.
		if err := spec.Validate(); err != nil {
			t.Fatalf("a parsed spec no longer validates after defaults: %v", err)
		}
		_ = spec.JoinOrder()
		_ = spec.RegistrationURL()
	})
}

// A relative file:// chart is found next to platform.yaml, whatever
// directory the command runs in.
func TestLoadSpecResolvesLocalChartsAgainstTheFile(t *testing.T) {
	dir := t.TempDir()
	doc := mutate(t, func(d map[string]any) {
		m(m(d, "components"), "harbor")["repo"] = "file://charts/harbor"
		m(m(d, "components"), "jenkins")["repo"] = "file:///srv/charts/jenkins-5.9.53.tgz"
	})
	path := dir + "/platform.yaml"
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := LoadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := spec.Components["harbor"].Repo, "file://"+dir+"/charts/harbor"; got != want {
		t.Errorf("harbor repo %s, want %s", got, want)
	}
	if got := spec.Components["jenkins"].Repo; got != "file:///srv/charts/jenkins-5.9.53.tgz" {
		t.Errorf("an absolute path changed: %s", got)
	}
}

// issue 25: without k3s.nodeFailure the lab's timings are rendered; set
// ones are rendered as written, for servers (control plane) and every host
// (kubelet).
func TestNodeFailureTimingsRendered(t *testing.T) {
	spec := loadExample(t)
	if spec.K3s.NodeFailure != DefaultNodeFailure {
		t.Fatalf("defaulted nodeFailure = %+v, want %+v", spec.K3s.NodeFailure, DefaultNodeFailure)
	}
	data := mutate(t, func(d map[string]any) {
		m(d, "k3s")["nodeFailure"] = map[string]any{"nodeMonitorGracePeriod": "40s", "nodeLeaseDurationSeconds": 20, "podEvictionSeconds": 60}
	})
	spec, err := ParseSpec(data)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Render(spec, templatesFS(t))
	if err != nil {
		t.Fatal(err)
	}
	server, agent := string(out["hosts/db1/config.yaml"]), string(out["hosts/www2/config.yaml"])
	for _, want := range []string{"- node-monitor-grace-period=40s", "- node-monitor-period=2s",
		"- default-not-ready-toleration-seconds=60", "- default-unreachable-toleration-seconds=60", "- config=" + KubeletNodeFailureFile} {
		if !strings.Contains(server, want) {
			t.Errorf("server config lacks %q:\n%s", want, server)
		}
	}
	if strings.Contains(agent, "node-monitor") || strings.Contains(agent, "toleration") || !strings.Contains(agent, "- config="+KubeletNodeFailureFile) {
		t.Errorf("agent config: want the kubelet file only, no control-plane flags:\n%s", agent)
	}
	kubelet := string(out["hosts/www2/kubelet-node-failure.yaml"])
	for _, want := range []string{"kind: KubeletConfiguration", "nodeLeaseDurationSeconds: 20", "nodeStatusUpdateFrequency: 4s"} {
		if !strings.Contains(kubelet, want) {
			t.Errorf("kubelet file lacks %q:\n%s", want, kubelet)
		}
	}
}
