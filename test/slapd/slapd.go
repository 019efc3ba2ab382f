// Package slapd starts a real OpenLDAP server for tests, shaped like the
// company's Univention Corporate Server directory: users under
// cn=users,<base>, groups under cn=groups,<base>, users with
// univentionObjectType=users/user, groups that are posixGroup (memberUid)
// and univentionGroup (uniqueMember) at once, as UCS writes them.
//
// Each Start runs its own slapd as a child process on loopback ports with
// a temporary slapd.conf and mdb database; it is stopped when the test
// ends. It listens on ldap:// (StartTLS offered) and ldaps://, with a
// certificate signed by a CA written to CAFile.
package slapd

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/testenv"
)

// Server is a running slapd.
type Server struct {
	// URL is ldap://127.0.0.1:<port> (StartTLS available).
	URL string
	// LDAPSURL is ldaps://127.0.0.1:<port>.
	LDAPSURL string
	// CAFile is the PEM CA that signed the server certificate.
	CAFile        string
	BaseDN        string
	AdminDN       string
	AdminPassword string
	// Dir holds the config, certificates, database and log.
	Dir string
}

// Base DN and admin credentials of every fixture.
const (
	BaseDN        = "dc=tsys,dc=test"
	AdminDN       = "cn=admin," + BaseDN
	AdminPassword = "admin-secret"
)

// UserBase and GroupBase are where UCS keeps users and groups.
func (s *Server) UserBase() string  { return "cn=users," + s.BaseDN }
func (s *Server) GroupBase() string { return "cn=groups," + s.BaseDN }

// UserDN is the DN UCS gives user uid.
func (s *Server) UserDN(uid string) string { return "uid=" + uid + "," + s.UserBase() }

// GroupDN is the DN UCS gives group cn.
func (s *Server) GroupDN(cn string) string { return "cn=" + cn + "," + s.GroupBase() }

// Start runs slapd and returns it with the base entry and the cn=users and
// cn=groups containers in place. Without slapd installed the test skips
// (fails under make test).
func Start(t testing.TB) *Server {
	t.Helper()
	slapd := lookSlapd(t)
	testenv.LookPath(t, "ldapmodify")
	s, cmd, exited, logFile, err := launch(slapd, t.TempDir(), false)
	if err != nil {
		t.Fatalf("slapd fixture: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logFile.Close()
		if t.Failed() {
			if log, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("slapd log (last 3000 bytes):\n%s", testenv.Tail(log, 3000))
			}
		}
	})
	if err := s.ApplyLDIF(s.baseLDIF()); err != nil {
		t.Fatalf("slapd fixture: %v", err)
	}
	return s
}

// Daemon runs slapd in dir (made if missing) in a session of its own, so it
// outlives the program that started it: make demo's directory, which its
// dashboard logs people in against after the demo has ended. It returns
// slapd's process id, for the caller to end it with (SIGTERM).
func Daemon(dir string) (*Server, int, error) {
	slapd := "/usr/sbin/slapd"
	if _, err := os.Stat(slapd); err != nil {
		if slapd, err = exec.LookPath("slapd"); err != nil {
			return nil, 0, fmt.Errorf("slapd is not installed (scripts/deps.sh installs it): %w", err)
		}
	}
	if _, err := exec.LookPath("ldapmodify"); err != nil {
		return nil, 0, fmt.Errorf("ldapmodify is not installed (scripts/deps.sh installs ldap-utils): %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, err
	}
	s, cmd, exited, logFile, err := launch(slapd, dir, true)
	if err != nil {
		return nil, 0, err
	}
	// The log file stays open in slapd; this process no longer needs it.
	logFile.Close()
	pid := cmd.Process.Pid
	if err := s.ApplyLDIF(s.baseLDIF()); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return nil, 0, err
	}
	// slapd lives on after this program ends (init adopts it); launch's
	// Wait goroutine ends with this program.
	return s, pid, nil
}

// launch writes slapd's configuration, certificates and database folder
// into dir, starts slapd in the foreground (-d: the caller owns the
// process) on two free loopback ports, and waits until both listen.
func launch(slapd, dir string, detach bool) (*Server, *exec.Cmd, <-chan error, *os.File, error) {
	s := &Server{BaseDN: BaseDN, AdminDN: AdminDN, AdminPassword: AdminPassword, Dir: dir,
		CAFile: filepath.Join(dir, "ca.pem")}
	if err := writeCerts(dir); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("writing certificates: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, nil, nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "ucs.schema"), []byte(ucsSchema), 0o644); err != nil {
		return nil, nil, nil, nil, err
	}
	conf := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(conf, []byte(slapdConf(dir)), 0o644); err != nil {
		return nil, nil, nil, nil, err
	}
	var ports [2]int
	for i := range ports {
		a, err := testenv.FreeAddr()
		if err != nil {
			return nil, nil, nil, nil, err
		}
		ports[i] = a.Port
	}
	ldapPort, ldapsPort := ports[0], ports[1]
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", ldapPort)
	s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", ldapsPort)

	logFile, err := os.Create(filepath.Join(dir, "slapd.log"))
	if err != nil {
		return nil, nil, nil, nil, err
	}
	cmd := exec.Command(slapd, "-f", conf, "-h", s.URL+"/ "+s.LDAPSURL+"/", "-d", "stats")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, nil, nil, nil, fmt.Errorf("starting %s: %w", slapd, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := waitReady(ldapPort, ldapsPort, exited, 15*time.Second); err != nil {
		_ = cmd.Process.Kill()
		log, _ := os.ReadFile(logFile.Name())
		logFile.Close()
		return nil, nil, nil, nil, fmt.Errorf("%w\nslapd log:\n%s", err, testenv.Tail(log, 3000))
	}
	return s, cmd, exited, logFile, nil
}

// baseLDIF is the base entry and UCS's cn=users and cn=groups containers.
func (s *Server) baseLDIF() string {
	return fmt.Sprintf(`dn: %s
objectClass: top
objectClass: domain
dc: tsys

dn: %s
objectClass: top
objectClass: organizationalRole
cn: users

dn: %s
objectClass: top
objectClass: organizationalRole
cn: groups
`, s.BaseDN, s.UserBase(), s.GroupBase())
}

func lookSlapd(t testing.TB) string {
	t.Helper()
	// Debian installs slapd in /usr/sbin, which is not on every PATH.
	if _, err := os.Stat("/usr/sbin/slapd"); err == nil {
		return "/usr/sbin/slapd"
	}
	return testenv.LookPath(t, "slapd")
}

// LoadLDIF applies LDIF (entries without changetype are added; changetype
// modify/delete work too) as the admin, with ldapmodify from ldap-utils.
func (s *Server) LoadLDIF(t testing.TB, ldif string) {
	t.Helper()
	if err := s.ApplyLDIF(ldif); err != nil {
		t.Fatalf("slapd fixture: %v", err)
	}
}

// ApplyLDIF is LoadLDIF returning the error, for tests that expect one.
func (s *Server) ApplyLDIF(ldif string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ldapmodify", "-x", "-a", "-H", s.URL, "-D", s.AdminDN, "-w", s.AdminPassword)
	cmd.Stdin = strings.NewReader(ldif)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ldapmodify: %v\n%s\nLDIF was:\n%s", err, out, ldif)
	}
	return nil
}

// UserLDIF is a UCS-shaped user entry with a cleartext password (slapd
// checks it on simple bind).
func (s *Server) UserLDIF(uid, password string) string {
	return fmt.Sprintf(`dn: %s
objectClass: top
objectClass: inetOrgPerson
objectClass: posixAccount
objectClass: univentionObject
univentionObjectType: users/user
uid: %s
cn: %s
sn: %s
displayName: %s
uidNumber: %d
gidNumber: 5001
homeDirectory: /home/%s
userPassword: %s
`, s.UserDN(uid), uid, uid, uid, uid, 2000+len(uid)*7+int(uid[0]), uid, password)
}

// BindAccountLDIF is a UCS "simple authentication account": it can bind
// and read the directory but is no person.
func (s *Server) BindAccountLDIF(uid, password string) string {
	return fmt.Sprintf("dn: %s\nobjectClass: top\nobjectClass: account\nobjectClass: simpleSecurityObject\nuid: %s\nuserPassword: %s\n",
		s.UserDN(uid), uid, password)
}

// GroupLDIF is a UCS-shaped group: posixGroup with memberUid and
// univentionGroup with uniqueMember, both naming members.
func (s *Server) GroupLDIF(cn string, members ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: top\nobjectClass: posixGroup\nobjectClass: univentionGroup\nobjectClass: univentionObject\nuniventionObjectType: groups/group\ncn: %s\ngidNumber: %d\n",
		s.GroupDN(cn), cn, 5000+len(cn)*13+int(cn[0]))
	for _, m := range members {
		fmt.Fprintf(&b, "memberUid: %s\nuniqueMember: %s\n", m, s.UserDN(m))
	}
	return b.String()
}

// GroupOfNamesLDIF is a group whose members are DNs in "member" (the
// style of Active Directory and plain OpenLDAP directories).
func (s *Server) GroupOfNamesLDIF(cn string, members ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: top\nobjectClass: groupOfNames\ncn: %s\n", s.GroupDN(cn), cn)
	for _, m := range members {
		fmt.Fprintf(&b, "member: %s\n", s.UserDN(m))
	}
	return b.String()
}

// waitReady waits until both ports accept connections, or slapd exits, or
// the deadline passes.
func waitReady(ldapPort, ldapsPort int, exited <-chan error, within time.Duration) error {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ready := true
		for _, p := range []int{ldapPort, ldapsPort} {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second)
			if err != nil {
				ready = false
				break
			}
			c.Close()
		}
		if ready {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("slapd exited before listening: %v", err)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slapd not listening on ports %d and %d after %s", ldapPort, ldapsPort, within)
		}
	}
}

func slapdConf(dir string) string {
	return fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
include %[1]s/ucs.schema
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile %[1]s/ca.pem
TLSCertificateFile %[1]s/server.pem
TLSCertificateKeyFile %[1]s/server.key
database mdb
maxsize 67108864
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/data
index objectClass,uid,cn,memberUid,uniqueMember,member eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
`, dir, BaseDN, AdminDN, AdminPassword)
}

// ucsSchema is a stand-in for the parts of UCS's schema the platform's
// components use: univentionObjectType on users and groups, and the
// auxiliary univentionGroup class that carries uniqueMember. The OIDs sit
// under Univention's enterprise number in an arc marked for tests; they are
// not UCS's own.
const ucsSchema = `attributetype ( 1.3.6.1.4.1.10176.99999.1.1 NAME 'univentionObjectType'
	DESC 'test stand-in: UCS object type such as users/user'
	EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
objectclass ( 1.3.6.1.4.1.10176.99999.2.1 NAME 'univentionObject'
	DESC 'test stand-in' SUP top AUXILIARY MAY ( univentionObjectType ) )
objectclass ( 1.3.6.1.4.1.10176.99999.2.2 NAME 'univentionGroup'
	DESC 'test stand-in' SUP top AUXILIARY MAY ( uniqueMember $ description ) )
`
