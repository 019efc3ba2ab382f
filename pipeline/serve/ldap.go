package serve

// A small LDAP client for logins against the company's directory (UCS):
// find a user, check a password, list the user's groups. platform's
// CheckLDAP is a diagnostic of platform.yaml's bind accounts, bases and
// groups (unexported helpers bound to platform.Spec) and logs nobody in, so
// serve's login lives here, in its own file.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// LDAPConfig says how to reach the directory and where users and groups
// live. Defaults follow UCS: users under cn=users,<base> with
// univentionObjectType=users/user and uid as login, groups under
// cn=groups,<base> with memberUid (posixGroup) and uniqueMember
// (univentionGroup), or member (groupOfNames).
type LDAPConfig struct {
	URL      string `json:"url"`
	StartTLS bool   `json:"startTLS,omitempty"`
	// InsecurePlaintext allows ldap:// without StartTLS (a lab only).
	InsecurePlaintext bool `json:"insecurePlaintext,omitempty"`
	// CAFile verifies the directory's certificate; the system pool otherwise.
	CAFile    string `json:"caFile,omitempty"`
	BaseDN    string `json:"baseDN"`
	UserBase  string `json:"userBase,omitempty"`
	GroupBase string `json:"groupBase,omitempty"`
	// BindDN is a read-only service account that finds users and groups.
	// Without it, users bind directly as <loginAttribute>=<login>,<userBase>
	// and search with their own rights.
	BindDN           string `json:"bindDN,omitempty"`
	BindPasswordFile string `json:"bindPasswordFile,omitempty"`
	BindPasswordEnv  string `json:"bindPasswordEnv,omitempty"`
	// UserFilter narrows user entries; default (univentionObjectType=users/user).
	UserFilter string `json:"userFilter,omitempty"`
	// LoginAttribute holds the login name; default uid.
	LoginAttribute string `json:"loginAttribute,omitempty"`
}

var ldapAttrRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)

// ErrLoginFailed is every login refusal: unknown user, wrong password,
// malformed name. It never says which, so a caller cannot probe for names.
var ErrLoginFailed = errors.New("login failed")

// Identity is a logged-in person.
type Identity struct {
	Login  string
	DN     string
	Groups []string // DNs of the groups the user is a member of
}

// InGroup reports whether the identity is a member of the group groupDN
// (DNs compared as DNs, case-insensitively).
func (id *Identity) InGroup(groupDN string) bool {
	want, err := ldap.ParseDN(groupDN)
	if err != nil {
		return false
	}
	for _, g := range id.Groups {
		if d, err := ldap.ParseDN(g); err == nil && d.EqualFold(want) {
			return true
		}
	}
	return false
}

// Directory logs people in against LDAP. Each login opens its own
// connection: logins are rare, and a shared connection would carry one
// user's bind into another's search.
type Directory struct {
	cfg          LDAPConfig
	bindPassword string
	tls          *tls.Config
	Timeout      time.Duration
}

// NewDirectory checks the config, reads the bind password (file or
// environment variable, through getenv) and the CA file.
func NewDirectory(cfg LDAPConfig, getenv func(string) string) (*Directory, error) {
	if cfg.UserBase == "" {
		cfg.UserBase = "cn=users," + cfg.BaseDN
	}
	if cfg.GroupBase == "" {
		cfg.GroupBase = "cn=groups," + cfg.BaseDN
	}
	if cfg.UserFilter == "" {
		cfg.UserFilter = "(univentionObjectType=users/user)"
	}
	if cfg.LoginAttribute == "" {
		cfg.LoginAttribute = "uid"
	}
	d := &Directory{cfg: cfg, Timeout: 10 * time.Second}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("ldap.url %q: %w", cfg.URL, err)
	}
	d.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading ldap.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ldap.caFile %s holds no PEM certificate", cfg.CAFile)
		}
		d.tls.RootCAs = pool
	}
	switch {
	case cfg.BindPasswordFile != "":
		b, err := os.ReadFile(cfg.BindPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("reading ldap.bindPasswordFile: %w", err)
		}
		d.bindPassword = strings.TrimRight(string(b), "\r\n")
	case cfg.BindPasswordEnv != "":
		d.bindPassword = getenv(cfg.BindPasswordEnv)
	}
	if cfg.BindDN != "" && d.bindPassword == "" {
		return nil, fmt.Errorf("ldap.bindDN %s has an empty password; check ldap.bindPasswordFile or ldap.bindPasswordEnv", cfg.BindDN)
	}
	return d, nil
}

// validLogin takes only canonical names: printable ASCII without spaces,
// at most 256 bytes. The directory matches names its own way (case
// folded, leading, trailing and repeated spaces dropped, a no-break space
// taken as a space, full-width letters as their ASCII ones), so " alice",
// "alice ", NBSP+"alice" and "ａｌｉｃｅ" all found alice, each with its own
// throttle entry and recorded as typed (issue 17 finding 7). Normalising
// here instead would mean imitating the directory's matching rules exactly
// (and golang.org/x/text is not a dependency); a mismatch would reopen the
// gap. Refused, every such spelling fails like a wrong password. Case is
// left to the directory: the throttle keys on the lower-cased name and the
// identity takes the name from the directory's entry.
func validLogin(login string) bool {
	if login == "" || len(login) > 256 {
		return false
	}
	for i := 0; i < len(login); i++ {
		if c := login[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// Authenticate checks login and password and returns the person's groups.
// Bad credentials of any kind give ErrLoginFailed; other errors mean the
// directory could not be asked (unreachable, TLS, service account refused).
func (d *Directory) Authenticate(login, password string) (*Identity, error) {
	// An empty password would be an unauthenticated bind, which LDAP
	// servers accept as success: never pass one on.
	if !validLogin(login) || password == "" {
		return nil, ErrLoginFailed
	}
	conn, err := d.dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	var userDN string
	if d.cfg.BindDN != "" {
		if err := conn.Bind(d.cfg.BindDN, d.bindPassword); err != nil {
			return nil, fmt.Errorf("binding to the directory as the service account %s: %w", d.cfg.BindDN, err)
		}
		userDN, login, err = d.findUser(conn, login)
		if err != nil {
			return nil, err
		}
	} else {
		userDN = ldap.EscapeDN(d.cfg.LoginAttribute) + "=" + ldap.EscapeDN(login) + "," + d.cfg.UserBase
	}
	if err := conn.Bind(userDN, password); err != nil {
		if isCredentialsRefused(err) {
			return nil, ErrLoginFailed
		}
		return nil, fmt.Errorf("binding to the directory as a user: %w", err)
	}
	if d.cfg.BindDN == "" {
		// Direct bind: confirm the entry is a user (the filter), with the
		// user's own rights.
		if userDN, login, err = d.findUser(conn, login); err != nil {
			return nil, err
		}
	} else if err := conn.Bind(d.cfg.BindDN, d.bindPassword); err != nil {
		return nil, fmt.Errorf("binding to the directory as the service account %s: %w", d.cfg.BindDN, err)
	}
	groups, err := d.groups(conn, login, userDN)
	if err != nil {
		return nil, err
	}
	return &Identity{Login: login, DN: userDN, Groups: groups}, nil
}

// ErrNoServiceAccount says the directory has no service account
// (ldap.bindDN), so nobody's groups can be read without their password.
var ErrNoServiceAccount = errors.New("the directory has no service account (serve.yaml ldap.bindDN), so groups can be read only at login")

// Lookup reads a person's entry and groups as they are now, with the
// service account and without their password: the dashboard checks them
// again before each deploy, since a session outlives a group change.
// A login that no longer finds one user gives ErrLoginFailed.
func (d *Directory) Lookup(login string) (*Identity, error) {
	if d.cfg.BindDN == "" {
		return nil, ErrNoServiceAccount
	}
	if !validLogin(login) {
		return nil, ErrLoginFailed
	}
	conn, err := d.dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.Bind(d.cfg.BindDN, d.bindPassword); err != nil {
		return nil, fmt.Errorf("binding to the directory as the service account %s: %w", d.cfg.BindDN, err)
	}
	userDN, login, err := d.findUser(conn, login)
	if err != nil {
		return nil, err
	}
	groups, err := d.groups(conn, login, userDN)
	if err != nil {
		return nil, err
	}
	return &Identity{Login: login, DN: userDN, Groups: groups}, nil
}

func (d *Directory) dial() (*ldap.Conn, error) {
	opts := []ldap.DialOpt{ldap.DialWithDialer(&net.Dialer{Timeout: d.Timeout}), ldap.DialWithTLSConfig(d.tls)}
	conn, err := ldap.DialURL(d.cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to the directory %s: %w", d.cfg.URL, err)
	}
	conn.SetTimeout(d.Timeout)
	if d.cfg.StartTLS {
		if err := conn.StartTLS(d.tls); err != nil {
			conn.Close()
			return nil, fmt.Errorf("StartTLS with the directory %s (check ldap.caFile): %w", d.cfg.URL, err)
		}
	}
	return conn, nil
}

// findUser returns the DN of the one user entry with this login, and the
// login as the entry spells it (the directory matches case-insensitively:
// ALICE finds alice, and is recorded and checked in groups as alice).
func (d *Directory) findUser(conn *ldap.Conn, login string) (string, string, error) {
	filter := "(&" + d.cfg.UserFilter + "(" + d.cfg.LoginAttribute + "=" + ldap.EscapeFilter(login) + "))"
	res, err := conn.Search(ldap.NewSearchRequest(d.cfg.UserBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, int(d.Timeout/time.Second), false, filter, []string{"dn", d.cfg.LoginAttribute}, nil))
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded):
		return "", "", ErrLoginFailed // more than one entry: ambiguous, refuse
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return "", "", ErrLoginFailed
	case err != nil:
		return "", "", fmt.Errorf("searching the directory for a user under %s: %w", d.cfg.UserBase, err)
	case len(res.Entries) != 1:
		return "", "", ErrLoginFailed
	}
	e := res.Entries[0]
	for _, v := range e.GetAttributeValues(d.cfg.LoginAttribute) {
		if strings.EqualFold(v, login) {
			return e.DN, v, nil
		}
	}
	return e.DN, login, nil
}

// groups lists the DNs of the groups that name the user, in any of the
// styles UCS and other directories use.
func (d *Directory) groups(conn *ldap.Conn, login, userDN string) ([]string, error) {
	dn := ldap.EscapeFilter(userDN)
	filter := "(|(memberUid=" + ldap.EscapeFilter(login) + ")(uniqueMember=" + dn + ")(member=" + dn + "))"
	res, err := conn.Search(ldap.NewSearchRequest(d.cfg.GroupBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, int(d.Timeout/time.Second), false, filter, []string{"dn"}, nil))
	if err != nil {
		return nil, fmt.Errorf("searching the directory for groups under %s: %w", d.cfg.GroupBase, err)
	}
	out := make([]string, 0, len(res.Entries))
	for _, e := range res.Entries {
		out = append(out, e.DN)
	}
	return out, nil
}

// isCredentialsRefused tells a refused bind (wrong password, no such entry,
// a name that is no DN) from a directory that could not answer.
func isCredentialsRefused(err error) bool {
	return ldap.IsErrorAnyOf(err, ldap.LDAPResultInvalidCredentials, ldap.LDAPResultInvalidDNSyntax,
		ldap.LDAPResultNoSuchObject, ldap.LDAPResultUnwillingToPerform, ldap.LDAPResultInappropriateAuthentication)
}
