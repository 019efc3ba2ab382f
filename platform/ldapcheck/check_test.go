package ldapcheck

import (
	"os"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/platform"
	"github.com/tsys-group/tsys-ci/test/slapd"
)

// bindPasswords are the passwords of the example's bind accounts, by the
// environment variable platform.yaml names.
var bindPasswords = map[string]string{
	"TSYS_LDAP_BIND_PASSWORD":     "platform-pw",
	"TSYS_LDAP_KEYCLOAK_PASSWORD": "keycloak-pw",
	"TSYS_LDAP_HARBOR_PASSWORD":   "harbor-pw",
	"TSYS_LDAP_JENKINS_PASSWORD":  "jenkins-pw",
}

// examplePath is the platform.yaml users start from.
const examplePath = "../../templates/platform/platform.yaml"

// fixtureSpec is the example platform.yaml pointed at the fixture slapd.
func fixtureSpec(t *testing.T, s *slapd.Server, ldapsURL bool, extra string) *platform.Spec {
	t.Helper()
	raw, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.ReplaceAll(string(raw), "dc=tsys,dc=lan", s.BaseDN)
	url, startTLS := s.LDAPSURL, ""
	if !ldapsURL {
		url, startTLS = s.URL, "\n  startTLS: true"
	}
	doc = strings.Replace(doc, "url: ldaps://ucs.tsys.lan:7636", "url: "+url+startTLS, 1)
	doc = strings.Replace(doc, "caFile: /etc/tsys-ci/ucs-ca.pem", "caFile: "+s.CAFile, 1)
	doc = strings.Replace(doc, "groupMembership: uniqueMember", extra, 1)
	spec, err := platform.ParseSpec([]byte(doc))
	if err != nil {
		t.Fatalf("fixture spec: %v", err)
	}
	return spec
}

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// completeDirectory loads everything the example's components need.
func completeDirectory(t *testing.T, s *slapd.Server) {
	t.Helper()
	s.LoadLDIF(t, strings.Join([]string{
		s.BindAccountLDIF("svc-platform", "platform-pw"),
		s.BindAccountLDIF("svc-keycloak", "keycloak-pw"),
		s.BindAccountLDIF("svc-harbor", "harbor-pw"),
		s.BindAccountLDIF("svc-jenkins", "jenkins-pw"),
		s.UserLDIF("platform-test", "test-pw"),
		s.UserLDIF("alice", "alice-pw"),
		s.GroupLDIF("platform-admins", "platform-test", "alice"),
		s.GroupLDIF("jenkins-admins", "platform-test"),
	}, "\n"))
}

func failing(r *Report) []string {
	var out []string
	for _, f := range r.Findings {
		if !f.OK {
			out = append(out, f.Check+" "+f.Subject+": "+f.Detail)
		}
	}
	return out
}

func TestCheckLDAPCompleteDirectory(t *testing.T) {
	s := slapd.Start(t)
	completeDirectory(t, s)
	for _, ldaps := range []bool{true, false} {
		name := map[bool]string{true: "ldaps", false: "starttls"}[ldaps]
		t.Run(name, func(t *testing.T) {
			r, err := Check(fixtureSpec(t, s, ldaps, "groupMembership: uniqueMember"), Options{Getenv: getenv(bindPasswords)})
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK() || r.LDIF != "" || len(r.Checklist) != 0 {
				t.Fatalf("complete directory reported missing: %v\nLDIF:\n%s", failing(r), r.LDIF)
			}
			// 4 bind accounts, 3 containers, the user, 2 groups and 2 memberships.
			if len(r.Findings) != 12 {
				t.Errorf("%d findings, want 12: %+v", len(r.Findings), r.Findings)
			}
		})
	}
}

// TestCheckLDAPMissingThenFixedByItsOwnLDIF loads the LDIF the check
// prints for a half-set-up directory, and checks again: nothing is missing.
func TestCheckLDAPMissingThenFixedByItsOwnLDIF(t *testing.T) {
	s := slapd.Start(t)
	s.LoadLDIF(t, s.BindAccountLDIF("svc-platform", "platform-pw")+"\n"+
		s.BindAccountLDIF("svc-keycloak", "keycloak-pw")+"\n"+
		s.UserLDIF("platform-test", "test-pw")+"\n"+
		s.GroupLDIF("platform-admins", "alice"))
	spec := fixtureSpec(t, s, true, "groupMembership: uniqueMember")
	r, err := Check(spec, Options{Getenv: getenv(bindPasswords)})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(failing(r), "\n")
	for _, want := range []string{
		"bind uid=svc-harbor,cn=users," + s.BaseDN + ": invalid credentials",
		"bind uid=svc-jenkins,cn=users," + s.BaseDN + ": invalid credentials",
		"group jenkins-admins: no group",
		"membership platform-test in platform-admins: uniqueMember does not list",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing finding %q in:\n%s", want, got)
		}
	}
	checklist := strings.Join(r.Checklist, "\n")
	for _, want := range []string{"udm users/ldap create", "udm groups/group create", "--append users="} {
		if !strings.Contains(checklist, want) {
			t.Errorf("checklist lacks %q:\n%s", want, checklist)
		}
	}
	if strings.Contains(r.LDIF, "harbor-pw") {
		t.Fatal("the LDIF contains a password")
	}
	// What envsubst would do with the operator's environment.
	s.LoadLDIF(t, os.Expand(r.LDIF, func(k string) string { return bindPasswords[k] }))
	again, err := Check(spec, Options{Getenv: getenv(bindPasswords)})
	if err != nil {
		t.Fatal(err)
	}
	if !again.OK() {
		t.Fatalf("after loading the printed LDIF still missing: %v\nLDIF was:\n%s", failing(again), r.LDIF)
	}
}

func TestCheckLDAPMembershipStyles(t *testing.T) {
	s := slapd.Start(t)
	s.LoadLDIF(t, strings.Join([]string{
		s.BindAccountLDIF("svc-platform", "platform-pw"),
		s.BindAccountLDIF("svc-keycloak", "keycloak-pw"),
		s.BindAccountLDIF("svc-harbor", "harbor-pw"),
		s.BindAccountLDIF("svc-jenkins", "jenkins-pw"),
		s.UserLDIF("platform-test", "test-pw"),
		// memberUid only (posixGroup) and member only (groupOfNames).
		"dn: " + s.GroupDN("platform-admins") + "\nobjectClass: posixGroup\ncn: platform-admins\ngidNumber: 5100\nmemberUid: platform-test\n",
		s.GroupOfNamesLDIF("jenkins-admins", "platform-test"),
	}, "\n"))
	cases := []struct {
		style       string
		wantMissing []string
	}{
		{"groupMembership: memberUid", []string{"group cn=jenkins-admins", "membership platform-test in jenkins-admins"}},
		{"groupMembership: member", []string{"group cn=platform-admins", "membership platform-test in platform-admins"}},
	}
	for _, tc := range cases {
		t.Run(tc.style, func(t *testing.T) {
			r, err := Check(fixtureSpec(t, s, true, tc.style), Options{Getenv: getenv(bindPasswords)})
			if err != nil {
				t.Fatal(err)
			}
			missing := failing(r)
			if len(missing) != len(tc.wantMissing) {
				t.Fatalf("missing %d things, want %d: %v", len(missing), len(tc.wantMissing), missing)
			}
			for i, want := range tc.wantMissing {
				if !strings.HasPrefix(missing[i], want) {
					t.Errorf("finding %d is %q, want it to start with %q", i, missing[i], want)
				}
			}
		})
	}
}

func TestCheckLDAPPasswordProblems(t *testing.T) {
	s := slapd.Start(t)
	completeDirectory(t, s)
	spec := fixtureSpec(t, s, true, "groupMembership: uniqueMember")
	env := map[string]string{}
	for k, v := range bindPasswords {
		env[k] = v
	}
	env["TSYS_LDAP_HARBOR_PASSWORD"] = "wrong"
	delete(env, "TSYS_LDAP_JENKINS_PASSWORD")
	r, err := Check(spec, Options{Getenv: getenv(env)})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(failing(r), "\n")
	if !strings.Contains(got, "svc-harbor") || !strings.Contains(got, "invalid credentials") {
		t.Errorf("wrong harbor password not reported:\n%s", got)
	}
	if !strings.Contains(got, "$TSYS_LDAP_JENKINS_PASSWORD is not set") {
		t.Errorf("unset jenkins password not reported:\n%s", got)
	}
	steps := strings.Join(r.Checklist, "\n")
	if !strings.Contains(steps, "udm users/ldap modify --dn \"uid=svc-harbor") || strings.Contains(steps, "users/ldap create") {
		t.Errorf("an existing account with a wrong password should get a password reset, not a create:\n%s", steps)
	}
}

// TestCheckLDAPEscapesFilters feeds names that would widen an unescaped
// filter to every entry; the check must look for them literally.
func TestCheckLDAPEscapesFilters(t *testing.T) {
	s := slapd.Start(t)
	completeDirectory(t, s)
	for _, evil := range []string{"*", "platform-test)(|(uid=*", "alice)(uid=*", `\2a`} {
		t.Run(evil, func(t *testing.T) {
			spec := fixtureSpec(t, s, true, "groupMembership: uniqueMember")
			j := spec.Components["jenkins"]
			j.AdminGroup = evil
			spec.Components["jenkins"] = j
			r, err := Check(spec, Options{Getenv: getenv(bindPasswords), TestUser: evil})
			if err != nil {
				t.Fatal(err)
			}
			var userFound, groupFound bool
			for _, f := range r.Findings {
				if f.Check == "user" && f.Subject == evil {
					userFound = f.OK
				}
				if f.Check == "group" && f.Components == "jenkins" {
					groupFound = f.OK
				}
			}
			if !strings.Contains(r.LDIF, "# group "+evil) {
				t.Errorf("no group LDIF for the literal name %q:\n%s", evil, r.LDIF)
			}
			if userFound || groupFound {
				t.Fatalf("an injected name matched real entries: %+v", r.Findings)
			}
		})
	}
}

func TestCheckLDAPWrongCAFails(t *testing.T) {
	s := slapd.Start(t)
	other := slapd.Start(t)
	spec := fixtureSpec(t, s, true, "groupMembership: uniqueMember")
	spec.LDAP.CAFile = other.CAFile
	_, err := Check(spec, Options{Getenv: getenv(bindPasswords)})
	if err == nil || !strings.Contains(err.Error(), "caFile") {
		t.Fatalf("a certificate from another CA gave %v, want a connection error naming caFile", err)
	}
}
