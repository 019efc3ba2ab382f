package serve

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/slapd"
)

// A dashboard session lives up to SessionMax; someone taken out of a
// deploy group, or out of the directory, must lose the buttons' rights at
// once. With a service account serve asks the directory before each
// deploy; the first two cases failed before recheckGroups (the group read
// at login was trusted).
func TestDashboardDeployChecksTheGroupNow(t *testing.T) {
	dir := ucsDirectory(t)
	cs := dashboardCluster(t, shopState(newTestClock().Now().Add(-5*time.Minute)))
	ts := dashboardServer(t, dir, cs, func(o *ServerOptions) {
		cfg := *o.Config
		l := *cfg.LDAP
		l.BindDN, l.BindPasswordEnv = dir.AdminDN, "X"
		cfg.LDAP = &l
		o.Config = &cfg
		d, err := NewDirectory(l, func(string) string { return slapd.AdminPassword })
		if err != nil {
			t.Fatal(err)
		}
		o.Directory = d
	})

	t.Run("removed from the group", func(t *testing.T) {
		b := newBrowser(t, ts.url)
		csrf := b.login("xavier", "xavier-pw")
		if page := b.get("/ui/apps/shop/shop"); !strings.Contains(page.body, `action="/ui/apps/shop/shop/rollback"`) {
			t.Fatalf("xavier, in shop-deployers, sees no rollback button: %q", page.body)
		}
		dir.LoadLDIF(t, "dn: "+dir.GroupDN("shop-deployers")+"\nchangetype: modify\ndelete: memberUid\nmemberUid: xavier\n-\ndelete: uniqueMember\nuniqueMember: "+dir.UserDN("xavier")+"\n")
		a := b.post("/ui/apps/shop/shop/rollback", url.Values{"csrf": {csrf}})
		if a.code != http.StatusForbidden || !strings.Contains(a.body, "xavier may not deploy in namespace &#34;shop&#34;") {
			t.Fatalf("rollback after xavier left the group: %d %q", a.code, a.body)
		}
		if n := len(ts.deployer.Calls()); n != 0 {
			t.Fatalf("%d deploys by someone no longer in the group", n)
		}
		if page := b.get("/ui/apps/shop/shop"); page.code != http.StatusOK || strings.Contains(page.body, "/rollback") {
			t.Fatalf("xavier's page after the refusal still shows the button: %d %q", page.code, page.body)
		}
	})

	t.Run("removed from the directory", func(t *testing.T) {
		b := newBrowser(t, ts.url)
		csrf := b.login("alice", "alice-pw")
		dir.LoadLDIF(t, "dn: "+dir.UserDN("alice")+"\nchangetype: delete\n")
		a := b.post("/ui/apps/shop/shop/rollback", url.Values{"csrf": {csrf}})
		if a.code != http.StatusForbidden || !strings.Contains(a.body, "your login alice is no longer found in the directory") {
			t.Fatalf("rollback after alice left the directory: %d %q", a.code, a.body)
		}
		if n := len(ts.deployer.Calls()); n != 0 {
			t.Fatalf("%d deploys by someone no longer in the directory", n)
		}
		if a := b.get("/ui/"); a.code != http.StatusSeeOther {
			t.Fatalf("alice's session outlived her entry: %d", a.code)
		}
	})

	t.Run("still in the group", func(t *testing.T) {
		dir.LoadLDIF(t, dir.UserLDIF("dora", "dora-pw")+"\ndn: "+dir.GroupDN("shop-deployers")+"\nchangetype: modify\nadd: memberUid\nmemberUid: dora\n")
		b := newBrowser(t, ts.url)
		csrf := b.login("dora", "dora-pw")
		ts.clock.Advance(SessionIdle - time.Minute)
		b.get("/ui/")
		ts.clock.Advance(SessionIdle - time.Minute) // older than FreshLogin: asked, not refused
		a := b.post("/ui/apps/shop/shop/rollback", url.Values{"csrf": {csrf}})
		if a.code != http.StatusSeeOther {
			t.Fatalf("dora, still in the group, rolls back: %d %q", a.code, a.body)
		}
	})
}

// Without a service account nobody's groups can be read without their
// password, so a deploy needs a login of the last FreshLogin.
func TestDashboardDeployWithoutServiceAccountNeedsAFreshLogin(t *testing.T) {
	dir := ucsDirectory(t)
	cs := dashboardCluster(t, shopState(newTestClock().Now().Add(-5*time.Minute)))
	ts := dashboardServer(t, dir, cs, nil)

	b := newBrowser(t, ts.url)
	csrf := b.login("alice", "alice-pw")
	ts.clock.Advance(FreshLogin - time.Minute)
	if a := b.get("/ui/apps/shop/shop"); a.code != http.StatusOK {
		t.Fatalf("page: %d", a.code)
	}
	ts.clock.Advance(2 * time.Minute)
	a := b.post("/ui/apps/shop/shop/rollback", url.Values{"csrf": {csrf}})
	if a.code != http.StatusUnauthorized || !strings.Contains(a.body, "no service account") || !strings.Contains(a.body, "log in again") {
		t.Fatalf("rollback %v after the login: %d %q", FreshLogin+time.Minute, a.code, a.body)
	}
	if n := len(ts.deployer.Calls()); n != 0 {
		t.Fatalf("%d deploys on an old login", n)
	}
	csrf = b.login("alice", "alice-pw")
	if a := b.post("/ui/apps/shop/shop/rollback", url.Values{"csrf": {csrf}}); a.code != http.StatusSeeOther {
		t.Fatalf("rollback after logging in again: %d %q", a.code, a.body)
	}
}
