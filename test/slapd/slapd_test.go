package slapd

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestStartServesUCSShapedDirectory(t *testing.T) {
	s := Start(t)
	s.LoadLDIF(t, s.UserLDIF("alice", "alice-pw")+"\n"+s.GroupLDIF("admins", "alice")+"\n"+s.GroupOfNamesLDIF("devs", "alice"))

	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("CA file holds no certificate")
	}
	for _, tc := range []struct {
		name string
		dial func() (*ldap.Conn, error)
	}{
		{"ldaps", func() (*ldap.Conn, error) {
			return ldap.DialURL(s.LDAPSURL, ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool}))
		}},
		{"starttls", func() (*ldap.Conn, error) {
			c, err := ldap.DialURL(s.URL)
			if err != nil {
				return nil, err
			}
			return c, c.StartTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.dial()
			if err != nil {
				t.Fatalf("connecting: %v", err)
			}
			defer c.Close()
			if err := c.Bind(s.UserDN("alice"), "alice-pw"); err != nil {
				t.Fatalf("binding as alice: %v", err)
			}
			res, err := c.Search(ldap.NewSearchRequest(s.GroupBase(), ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
				"(|(memberUid=alice)(member="+ldap.EscapeFilter(s.UserDN("alice"))+"))", []string{"cn"}, nil))
			if err != nil {
				t.Fatalf("searching groups: %v", err)
			}
			if len(res.Entries) != 2 {
				t.Fatalf("alice is in %d groups, want 2 (admins by memberUid, devs by member)", len(res.Entries))
			}
		})
	}
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(s.UserDN("alice"), "wrong"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("a wrong password gave %v, want invalid credentials", err)
	}
}
