package ldapcheck

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/tsys-group/tsys-ci/platform"
)

// Options are what Check needs besides the spec. Zero values
// read the real environment and files.
type Options struct {
	// TestUser overrides spec.LDAP.TestUser.
	TestUser string
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
	// Timeout bounds each network operation (default 10s).
	Timeout time.Duration
}

// Finding is one thing Check looked at.
type Finding struct {
	// Components that rely on this (e.g. "harbor, jenkins").
	Components string `json:"components"`
	Check      string `json:"check"`
	Subject    string `json:"subject"`
	OK         bool   `json:"ok"`
	Detail     string `json:"detail"`
}

// Report is the result of Check: every finding, and what is missing
// written as LDIF and as steps for UCS's tools.
type Report struct {
	Findings  []Finding `json:"findings"`
	LDIF      string    `json:"ldif,omitempty"`
	Checklist []string  `json:"checklist,omitempty"`
}

// OK reports whether the directory has everything the components need.
func (r *Report) OK() bool {
	for _, f := range r.Findings {
		if !f.OK {
			return false
		}
	}
	return true
}

type ldapChecker struct {
	spec   *platform.Spec
	opts   Options
	report *Report
	tls    *tls.Config
	// reader is a connection bound as an account that works, for lookups.
	reader *ldap.Conn
	ldif   []string
}

// Check checks that the directory has what every enabled component
// needs: bind accounts that can bind and read users, the admin groups, and
// the test user's membership in each. Connection failures are errors; what
// is missing is in the report.
func Check(spec *platform.Spec, opts Options) (*Report, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.TestUser == "" {
		opts.TestUser = spec.LDAP.TestUser
	}
	c := &ldapChecker{spec: spec, opts: opts, report: &Report{}}
	cfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	c.tls = cfg
	defer func() {
		if c.reader != nil {
			c.reader.Close()
		}
	}()
	if err := c.checkBinds(); err != nil {
		return nil, err
	}
	if c.reader == nil {
		c.report.Checklist = append(c.report.Checklist, "No bind account could bind, so groups and users were not checked; fix the accounts above and run again.")
		c.finish()
		return c.report, nil
	}
	c.checkBases()
	user := c.checkTestUser()
	c.checkGroups(user)
	c.finish()
	return c.report, nil
}

func (c *ldapChecker) tlsConfig() (*tls.Config, error) {
	u, err := url.Parse(c.spec.LDAP.URL)
	if err != nil {
		return nil, fmt.Errorf("ldap.url %q: %w", c.spec.LDAP.URL, err)
	}
	cfg := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if c.spec.LDAP.CAFile != "" {
		pem, err := c.opts.ReadFile(c.spec.LDAP.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading ldap.caFile: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ldap.caFile %s holds no PEM certificate", c.spec.LDAP.CAFile)
		}
	}
	return cfg, nil
}

// dial connects to the directory, with StartTLS when configured.
func (c *ldapChecker) dial() (*ldap.Conn, error) {
	l := c.spec.LDAP
	conn, err := ldap.DialURL(l.URL, ldap.DialWithTLSConfig(c.tls), ldap.DialWithDialer(&net.Dialer{Timeout: c.opts.Timeout}))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w (check ldap.url, the port and ldap.caFile)", l.URL, err)
	}
	conn.SetTimeout(c.opts.Timeout)
	if l.StartTLS {
		if err := conn.StartTLS(c.tls); err != nil {
			conn.Close()
			return nil, fmt.Errorf("StartTLS with %s: %w (check ldap.caFile)", l.URL, err)
		}
	}
	return conn, nil
}

func (c *ldapChecker) add(f Finding) { c.report.Findings = append(c.report.Findings, f) }

func (c *ldapChecker) todo(step string) { c.report.Checklist = append(c.report.Checklist, step) }

// ldapComponents are the enabled components that log in against the directory.
func (c *ldapChecker) ldapComponents() []string {
	var out []string
	for _, name := range platform.ComponentOrder {
		if name != "metallb" && name != "longhorn" && c.spec.Enabled(name) {
			out = append(out, name)
		}
	}
	return out
}

// byAccount groups components by the bind DN they use, in a stable order.
func (c *ldapChecker) byAccount() ([]platform.Account, map[string][]string) {
	users := map[string][]string{}
	var accounts []platform.Account
	for _, name := range append([]string{"platform"}, c.ldapComponents()...) {
		a := c.spec.LDAP.Bind
		if name != "platform" {
			a = c.spec.BindFor(name)
		}
		key := strings.ToLower(a.DN)
		if _, seen := users[key]; !seen {
			accounts = append(accounts, a)
		}
		users[key] = append(users[key], name)
	}
	return accounts, users
}

func (c *ldapChecker) password(a platform.Account) (string, error) {
	if a.PasswordEnv != "" {
		if v := c.opts.Getenv(a.PasswordEnv); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("$%s is not set", a.PasswordEnv)
	}
	b, err := c.opts.ReadFile(a.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("reading password file: %w", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("password file %s is empty", a.PasswordFile)
	}
	return pw, nil
}

func passwordSource(a platform.Account) string {
	if a.PasswordEnv != "" {
		return "$" + a.PasswordEnv
	}
	return "the content of " + a.PasswordFile
}

// checkBinds binds as every account; the first that binds and can read
// users becomes the reader for the remaining checks.
func (c *ldapChecker) checkBinds() error {
	accounts, users := c.byAccount()
	type failed struct {
		a   platform.Account
		why string
	}
	var bad []failed
	for _, a := range accounts {
		comps := strings.Join(users[strings.ToLower(a.DN)], ", ")
		pw, err := c.password(a)
		if err != nil {
			c.add(Finding{comps, "bind", a.DN, false, "password not available: " + err.Error()})
			c.todo(fmt.Sprintf("Provide the password of %s in %s (from Bitwarden) and run again.", a.DN, passwordSource(a)))
			continue
		}
		conn, err := c.dial()
		if err != nil {
			return err
		}
		if err := conn.Bind(a.DN, pw); err != nil {
			conn.Close()
			why := err.Error()
			if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
				why = "invalid credentials: the account is missing or its password differs from " + passwordSource(a)
			}
			c.add(Finding{comps, "bind", a.DN, false, why})
			bad = append(bad, failed{a, why})
			continue
		}
		seen, err := c.countUsers(conn)
		switch {
		case err != nil:
			c.add(Finding{comps, "bind", a.DN, false, "binds, but searching users failed: " + err.Error()})
			conn.Close()
		case seen == 0:
			c.add(Finding{comps, "bind", a.DN, false, fmt.Sprintf("binds, but sees no user matching %s under %s: it cannot read the directory", c.spec.LDAP.UserFilter, c.spec.LDAP.UserBase)})
			c.todo(fmt.Sprintf("Give %s read access to %s (a UCS simple authentication account can read the LDAP directory; check ldap/acl settings).", a.DN, c.spec.LDAP.UserBase))
			conn.Close()
		default:
			c.add(Finding{comps, "bind", a.DN, true, "binds and reads users"})
			if c.reader == nil {
				c.reader = conn
			} else {
				conn.Close()
			}
		}
	}
	for _, f := range bad {
		c.bindAccountMissing(f.a)
	}
	return nil
}

func (c *ldapChecker) countUsers(conn *ldap.Conn) (int, error) {
	res, err := conn.Search(ldap.NewSearchRequest(c.spec.LDAP.UserBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		1, int(c.opts.Timeout/time.Second), false, c.spec.LDAP.UserFilter, []string{"dn"}, nil))
	if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return 1, nil
	}
	if err != nil {
		return 0, err
	}
	return len(res.Entries), nil
}

// bindAccountMissing tells whether a failed account exists (wrong password)
// or not (create it); without a reader it offers both.
func (c *ldapChecker) bindAccountMissing(a platform.Account) {
	exists := false
	known := false
	if c.reader != nil {
		if e, err := c.lookupDN(a.DN, "objectClass"); err == nil {
			known, exists = true, e != nil
		}
	}
	rdnAttr, rdnValue := firstRDN(a.DN)
	if !known || !exists {
		pwLine := ldifLine("userPassword", "${"+a.PasswordEnv+"}")
		if a.PasswordEnv == "" {
			pwLine = "userPassword:< " + ldifFileURL(a.PasswordFile) + "\n"
		}
		objectClass := "account"
		if !strings.EqualFold(rdnAttr, "uid") {
			objectClass = "applicationProcess"
		}
		c.ldif = append(c.ldif, ldifComment("bind account (password from "+passwordSource(a)+")")+ldifLine("dn", a.DN)+
			"objectClass: top\n"+ldifLine("objectClass", objectClass)+"objectClass: simpleSecurityObject\n"+ldifLine(rdnAttr, rdnValue)+pwLine)
		c.todo(fmt.Sprintf("Create the simple authentication account %s: UMC > Users > Add > type \"Simple authentication account\", or udm users/ldap create --position %q --set username=%s --set password=\"%s\".",
			a.DN, parentDN(a.DN), rdnValue, passwordSource(a)))
	}
	if !known || exists {
		c.todo(fmt.Sprintf("Set the password of %s to %s: udm users/ldap modify --dn %q --set password=\"%s\".", a.DN, passwordSource(a), a.DN, passwordSource(a)))
	}
}

func (c *ldapChecker) lookupDN(dn string, attrs ...string) (*ldap.Entry, error) {
	res, err := c.reader.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", attrs, nil))
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(res.Entries) == 0 {
		return nil, nil
	}
	return res.Entries[0], nil
}

func (c *ldapChecker) checkBases() {
	l := c.spec.LDAP
	for _, b := range []struct{ what, dn string }{{"base DN", l.BaseDN}, {"user base", l.UserBase}, {"group base", l.GroupBase}} {
		e, err := c.lookupDN(b.dn)
		switch {
		case err != nil:
			c.add(Finding{"all", "container", b.dn, false, "looking it up failed: " + err.Error()})
		case e == nil:
			c.add(Finding{"all", "container", b.dn, false, b.what + " does not exist (or the bind account cannot see it)"})
			c.todo(fmt.Sprintf("Check ldap.%s in platform.yaml: %s does not exist; UCS keeps users in cn=users and groups in cn=groups under `ucr get ldap/base`.",
				map[string]string{"base DN": "baseDN", "user base": "userBase", "group base": "groupBase"}[b.what], b.dn))
		default:
			c.add(Finding{"all", "container", b.dn, true, b.what + " exists"})
		}
	}
}

// testUser is the entry of the test user, if found.
type testUser struct {
	dn, login string
}

func (c *ldapChecker) checkTestUser() *testUser {
	l := c.spec.LDAP
	login := c.opts.TestUser
	if login == "" {
		c.add(Finding{"all", "user", "(none)", true, "no ldap.testUser set: group membership not checked"})
		return nil
	}
	filter := fmt.Sprintf("(&%s(%s=%s))", l.UserFilter, l.LoginAttribute, ldap.EscapeFilter(login))
	res, err := c.reader.Search(ldap.NewSearchRequest(l.UserBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false,
		filter, []string{l.LoginAttribute}, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		c.add(Finding{"all", "user", login, false, "searching " + filter + " failed: " + err.Error()})
		return nil
	}
	switch {
	case res == nil || len(res.Entries) == 0:
		c.add(Finding{"all", "user", login, false, fmt.Sprintf("no user matches %s under %s", filter, l.UserBase)})
		c.todo(fmt.Sprintf("Create the test user %s: UMC > Users > Add, or udm users/user create --position %q --set username=%s --set lastname=Test --set password=<a password>.",
			login, l.UserBase, login))
		return nil
	case len(res.Entries) > 1:
		c.add(Finding{"all", "user", login, false, fmt.Sprintf("%d users match %s: logins must be unique", len(res.Entries), filter)})
		return nil
	}
	dn := res.Entries[0].DN
	c.add(Finding{"all", "user", login, true, "found as " + dn})
	return &testUser{dn: dn, login: login}
}

func (c *ldapChecker) checkGroups(user *testUser) {
	groups := map[string][]string{}
	var order []string
	for _, name := range c.ldapComponents() {
		g := c.spec.AdminGroupFor(name)
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], name)
	}
	for _, g := range order {
		c.checkGroup(g, strings.Join(groups[g], ", "), user)
	}
}

func (c *ldapChecker) checkGroup(cn, comps string, user *testUser) {
	l := c.spec.LDAP
	filter := "(cn=" + ldap.EscapeFilter(cn) + ")"
	res, err := c.reader.Search(ldap.NewSearchRequest(l.GroupBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false,
		filter, []string{"objectClass", l.GroupMembership, "memberUid"}, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		c.add(Finding{comps, "group", cn, false, "searching failed: " + err.Error()})
		return
	}
	if res == nil || len(res.Entries) == 0 {
		c.add(Finding{comps, "group", cn, false, "no group " + filter + " under " + l.GroupBase})
		c.ldif = append(c.ldif, c.groupLDIF(cn, user))
		step := fmt.Sprintf("Create group %s: UMC > Groups > Add, or udm groups/group create --position %q --set name=%s", cn, l.GroupBase, cn)
		if user != nil {
			step += fmt.Sprintf(" --append users=%q", user.dn)
		}
		c.todo(step + ".")
		return
	}
	g := res.Entries[0]
	if !hasValueFold(g.GetAttributeValues("objectClass"), l.GroupObjectClass) {
		c.add(Finding{comps, "group", g.DN, false, fmt.Sprintf("exists but is not a %s; the components search groups with (objectClass=%s)", l.GroupObjectClass, l.GroupObjectClass)})
		c.todo(fmt.Sprintf("Set ldap.groupObjectClass in platform.yaml to one of %s, or recreate %s as a UCS group.", strings.Join(g.GetAttributeValues("objectClass"), ", "), g.DN))
	} else {
		c.add(Finding{comps, "group", g.DN, true, "exists"})
	}
	if user == nil {
		return
	}
	want := user.dn
	if l.GroupMembership == "memberUid" {
		want = user.login
	}
	if memberOf(g.GetAttributeValues(l.GroupMembership), want, l.GroupMembership != "memberUid") {
		c.add(Finding{comps, "membership", user.login + " in " + cn, true, "member by " + l.GroupMembership})
		return
	}
	c.add(Finding{comps, "membership", user.login + " in " + cn, false, fmt.Sprintf("%s does not list %s", l.GroupMembership, want)})
	mod := ldifLine("dn", g.DN) + "changetype: modify\n" + ldifLine("add", l.GroupMembership) + ldifLine(l.GroupMembership, want)
	if l.GroupMembership != "memberUid" && hasValueFold(g.GetAttributeValues("objectClass"), "posixGroup") {
		mod += "-\nadd: memberUid\n" + ldifLine("memberUid", user.login)
	}
	c.ldif = append(c.ldif, mod)
	c.todo(fmt.Sprintf("Add %s to group %s: UMC > Groups > %s > Users, or udm groups/group modify --dn %q --append users=%q.", user.login, cn, cn, g.DN, user.dn))
}

// groupLDIF creates a group in the configured style, with the test user
// as its member when known.
func (c *ldapChecker) groupLDIF(cn string, user *testUser) string {
	l := c.spec.LDAP
	dn := "cn=" + ldap.EscapeDN(cn) + "," + l.GroupBase
	var b strings.Builder
	b.WriteString(ldifComment("group "+cn) + ldifLine("dn", dn) + "objectClass: top\n")
	switch l.GroupObjectClass {
	case "univentionGroup", "posixGroup":
		b.WriteString("objectClass: posixGroup\n")
		if l.GroupObjectClass == "univentionGroup" {
			b.WriteString("objectClass: univentionGroup\nobjectClass: univentionObject\nuniventionObjectType: groups/group\n")
		}
		fmt.Fprintf(&b, "%s# gidNumber: pick a free one (udm does this for you)\ngidNumber: %d\n", ldifLine("cn", cn), 50000+fnv(cn)%10000)
	default:
		b.WriteString(ldifLine("objectClass", l.GroupObjectClass) + ldifLine("cn", cn))
	}
	if user != nil {
		if l.GroupMembership == "memberUid" || l.GroupObjectClass == "univentionGroup" {
			b.WriteString(ldifLine("memberUid", user.login))
		}
		if l.GroupMembership != "memberUid" {
			b.WriteString(ldifLine(l.GroupMembership, user.dn))
		}
	} else if l.GroupObjectClass == "groupOfNames" {
		b.WriteString("# groupOfNames needs at least one member\n" + ldifLine("member", l.Bind.DN))
	}
	return b.String()
}

func (c *ldapChecker) finish() {
	if len(c.ldif) > 0 {
		c.report.LDIF = "# What the directory lacks. Passwords are ${VARIABLES}: load with\n" +
			"#   envsubst < missing.ldif | ldapmodify -a -x -H <url> -D <admin DN> -W\n" +
			"# (on UCS prefer the udm commands of the checklist: they keep UCS's own attributes right).\n\n" +
			strings.Join(c.ldif, "\n")
	}
}

func memberOf(values []string, want string, isDN bool) bool {
	for _, v := range values {
		if !isDN && v == want {
			return true
		}
		if isDN {
			a, errA := ldap.ParseDN(v)
			b, errB := ldap.ParseDN(want)
			if errA == nil && errB == nil && a.EqualFold(b) {
				return true
			}
		}
	}
	return false
}

func hasValueFold(values []string, want string) bool {
	for _, v := range values {
		if strings.EqualFold(v, want) {
			return true
		}
	}
	return false
}

func firstRDN(dn string) (attr, value string) {
	d, err := ldap.ParseDN(dn)
	if err != nil || len(d.RDNs) == 0 || len(d.RDNs[0].Attributes) == 0 {
		return "cn", dn
	}
	a := d.RDNs[0].Attributes[0]
	return a.Type, a.Value
}

func parentDN(dn string) string {
	d, err := ldap.ParseDN(dn)
	if err != nil || len(d.RDNs) < 2 {
		return dn
	}
	parts := make([]string, 0, len(d.RDNs)-1)
	for _, r := range d.RDNs[1:] {
		parts = append(parts, r.String())
	}
	return strings.Join(parts, ",")
}

func fnv(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
