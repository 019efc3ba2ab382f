package ldapcheck

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/tsys-group/tsys-ci/platform"
)

// parseLDIFRecord reads back one LDIF record (no folded lines) as
// attribute -> values, decoding "attr:: base64"; comments are skipped.
func parseLDIFRecord(t *testing.T, rec string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSuffix(rec, "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		attr, v, ok := strings.Cut(line, ":")
		if !ok || attr == "" || strings.ContainsAny(attr, " =") {
			t.Fatalf("line %q is not an attribute line; the LDIF was\n%s", line, rec)
		}
		switch {
		case strings.HasPrefix(v, ": "):
			b, err := base64.StdEncoding.DecodeString(v[2:])
			if err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			v = string(b)
		case strings.HasPrefix(v, " "):
			v = v[1:]
		}
		out[attr] = append(out[attr], v)
	}
	return out
}

// TestLDIFEscapesValues (issue 17, finding 12): a group name or login with
// a newline, a leading space or colon, or a trailing space cannot add
// lines of its own to the LDIF; each value reads back exactly.
func TestLDIFEscapesValues(t *testing.T) {
	cn := "admins\nmemberUid: mallory"
	login := ": alice"
	c := &ldapChecker{spec: &platform.Spec{LDAP: platform.LDAP{
		GroupBase: "cn=groups,dc=tsys,dc=lan", GroupObjectClass: "univentionGroup", GroupMembership: "uniqueMember",
	}}}
	rec := c.groupLDIF(cn, &testUser{dn: "uid= bob ,cn=users,dc=tsys,dc=lan", login: login})
	got := parseLDIFRecord(t, rec)
	if v := got["cn"]; len(v) != 1 || v[0] != cn {
		t.Errorf("cn reads back as %q, want %q; LDIF:\n%s", v, cn, rec)
	}
	if v := got["memberUid"]; len(v) != 1 || v[0] != login {
		t.Errorf("memberUid reads back as %q, want only %q; LDIF:\n%s", v, login, rec)
	}
	if v, want := got["dn"], "cn="+ldap.EscapeDN(cn)+",cn=groups,dc=tsys,dc=lan"; len(v) != 1 || v[0] != want {
		t.Errorf("dn reads back as %q, want %q (the cn escaped as a DN value); LDIF:\n%s", v, want, rec)
	}
	if v := got["uniqueMember"]; len(v) != 1 || v[0] != "uid= bob ,cn=users,dc=tsys,dc=lan" {
		t.Errorf("uniqueMember reads back as %q; LDIF:\n%s", v, rec)
	}
	for in, safe := range map[string]bool{"alice": true, "": true, " alice": false, "alice ": false, ":x": false, "<x": false,
		"a\rb": false, "a\x00b": false, "ä": false, "a:b": true, "a<b": true} {
		if safeLDIF(in) != safe {
			t.Errorf("safeLDIF(%q) = %v, want %v", in, !safe, safe)
		}
	}
}
