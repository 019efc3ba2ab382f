package serve

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// shopCanary is shop's state while a canary of shopNext runs on blue.
func shopCanary(at time.Time, abortAsked bool) *rollout.State {
	st := shopState(at.Add(-time.Hour))
	st.Phase, st.Strategy, st.Step, st.StartedAt, st.UpdatedAt = rollout.PhaseCanary, rollout.StrategyCanary, 1, at, at
	st.Candidate = &rollout.Release{Color: "blue", Image: shopNext}
	st.Message, st.AbortRequested = "canary step 2: 50% on the new version", abortAsked
	return st
}

var shopNext = "harbor.company.example/demo/shop@sha256:" + strings.Repeat("6f", 32)

// TestDashboardAbortButton: while a promote runs, the app's page shows an
// Abort button to those whose group may deploy; its POST needs the
// session's CSRF token, then the API's checks, and queues an abort by the
// person; others see no button and get 403; POST /api/v1/abort is the
// same for scripts.
func TestDashboardAbortButton(t *testing.T) {
	dir := ucsDirectory(t)
	ts := dashboardServer(t, dir, dashboardCluster(t, shopCanary(newTestClock().Now(), false)), nil)

	alice := newBrowser(t, ts.url)
	csrf := alice.login("alice", "alice-pw")
	page := alice.get("/ui/apps/shop/shop")
	for _, want := range []string{`action="/ui/apps/shop/shop/abort"`, ">Abort</button>", "canary step 2: 50% on the new version"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("alice's shop page during a canary lacks %q:\n%s", want, page.body)
		}
	}
	for _, f := range []url.Values{{}, {"csrf": {"forged"}}} {
		if a := alice.post("/ui/apps/shop/shop/abort", f); a.code != http.StatusForbidden || !strings.Contains(a.body, "did not carry your session&#39;s token") {
			t.Fatalf("abort with %v: %d %q", f, a.code, a.body)
		}
	}
	if n := len(ts.deployer.Calls()); n != 0 {
		t.Fatalf("%d deploys after refused forms", n)
	}
	a := alice.post("/ui/apps/shop/shop/abort", url.Values{"csrf": {csrf}})
	if a.code != http.StatusSeeOther || !strings.HasPrefix(a.h.Get("Location"), "/ui/apps/shop/shop?deploy=") {
		t.Fatalf("alice aborts: %d %s %q", a.code, a.h.Get("Location"), a.body)
	}
	testenv.Eventually(t, "the abort deployed", 10*time.Second, func() bool { return len(ts.deployer.Calls()) == 1 })
	if c := ts.deployer.Calls()[0]; c.Kind != DeployAbort || c.By != "alice" || c.Trigger != "api" || c.Namespace != "shop" || c.App != "shop" || c.Image != "" {
		t.Fatalf("deploy %+v", c)
	}
	if after := alice.get(a.h.Get("Location")); !strings.Contains(after.body, "Your abort was queued as deploy") {
		t.Fatalf("page after the abort: %q", after.body)
	}

	t.Run("bob may not abort shop", func(t *testing.T) {
		b := newBrowser(t, ts.url)
		csrf := b.login("bob", "bob-pw")
		if page := b.get("/ui/apps/shop/shop"); strings.Contains(page.body, "/abort") {
			t.Fatalf("bob's shop page shows the abort button: %q", page.body)
		}
		a := b.post("/ui/apps/shop/shop/abort", url.Values{"csrf": {csrf}})
		if a.code != http.StatusForbidden || !strings.Contains(a.body, "bob may not deploy in namespace &#34;shop&#34;") {
			t.Fatalf("bob forges an abort: %d %q", a.code, a.body)
		}
		if code, _ := manual(t, ts, "/api/v1/abort", "bob", "bob-pw", map[string]string{"namespace": "shop", "app": "shop"}); code != http.StatusForbidden {
			t.Fatalf("bob's API abort: %d", code)
		}
		if n := len(ts.deployer.Calls()); n != 1 {
			t.Fatalf("%d deploys after bob's forged aborts", n)
		}
	})
	t.Run("the API", func(t *testing.T) {
		if code, reply := manual(t, ts, "/api/v1/abort", "alice", "alice-pw", map[string]string{"namespace": "shop", "app": "shop", "image": shopNext}); code != http.StatusBadRequest || !strings.Contains(reply["error"].(string), "abort takes no image") {
			t.Fatalf("abort with an image: %d %v", code, reply)
		}
		code, reply := manual(t, ts, "/api/v1/abort", "alice", "alice-pw", map[string]string{"namespace": "shop", "app": "shop"})
		if code != http.StatusAccepted || reply["kind"] != DeployAbort || reply["by"] != "alice" {
			t.Fatalf("alice's API abort: %d %v", code, reply)
		}
	})
	t.Run("an abort asked shows instead of the button", func(t *testing.T) {
		ts := dashboardServer(t, dir, dashboardCluster(t, shopCanary(newTestClock().Now(), true)), nil)
		b := newBrowser(t, ts.url)
		b.login("alice", "alice-pw")
		page := b.get("/ui/apps/shop/shop")
		if strings.Contains(page.body, "/abort") || !strings.Contains(page.body, "abort asked") {
			t.Fatalf("shop page with an abort asked: %q", page.body)
		}
	})
	t.Run("no button while rolling back", func(t *testing.T) {
		st := shopCanary(newTestClock().Now(), false)
		st.Phase = rollout.PhaseRollingBack
		ts := dashboardServer(t, dir, dashboardCluster(t, st), nil)
		b := newBrowser(t, ts.url)
		b.login("alice", "alice-pw")
		if page := b.get("/ui/apps/shop/shop"); strings.Contains(page.body, "/abort") || !strings.Contains(page.body, "rolling-back") {
			t.Fatalf("rolling-back shop page shows the abort button: %q", page.body)
		}
	})
	t.Run("no button when nothing is in progress", func(t *testing.T) {
		ts := dashboardServer(t, dir, dashboardCluster(t, shopState(newTestClock().Now())), nil)
		b := newBrowser(t, ts.url)
		b.login("alice", "alice-pw")
		if page := b.get("/ui/apps/shop/shop"); strings.Contains(page.body, "/abort") {
			t.Fatalf("stable shop page shows the abort button: %q", page.body)
		}
	})
}

// TestDashboardShowsTheEdgeNumbers: during a promote the app's page shows,
// per version, the weight asked at the edge, the weight HAProxy showed
// (given: a state written before it was recorded has none), the requests, failures
// and response time promote's analysis last read there (EdgeTraffic in
// the state); before the first reading, the weights alone.
func TestDashboardShowsTheEdgeNumbers(t *testing.T) {
	dir := ucsDirectory(t)
	now := newTestClock().Now()
	st := shopCanary(now, false)
	st.EdgeWeights = rollout.EdgeWeights{"green": 75, "blue": 25}
	cs := dashboardCluster(t, st)
	ts := dashboardServer(t, dir, cs, nil)
	b := newBrowser(t, ts.url)
	b.login("carol", "carol-pw") // looking needs no group
	page := b.get("/ui/apps/shop/shop")
	for _, want := range []string{`id="traffic"`, "<td>blue</td><td>25%</td>", "not read from the edge yet"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("page before a reading lacks %q:\n%s", want, page.body)
		}
	}
	st.EdgeTraffic = &rollout.EdgeTraffic{At: now.Add(-3 * time.Second), WindowSeconds: 30, Versions: []rollout.VersionTraffic{
		{Color: "blue", Image: shopNext, Requests: 412, Failed: 3, ErrorRate: 100 * 3.0 / 412, ResponseTimeMs: 41, WeightGiven: new(20)},
		{Color: "green", Image: shopImage, Requests: 1240, Failed: 0, ResponseTimeMs: 18},
	}}
	setShopState(t, cs, st)
	page = b.get("/ui/apps/shop/shop", partialHeader, "main")
	for _, want := range []string{"shop@6f6f6f6f6f6f", "<td>412</td><td>3 (0.7%)</td><td>41 ms</td>", "<td>25%</td><td>20%</td>", "<td>1240</td><td>0 (0%)</td><td>18 ms</td>", "<td>75%</td><td>-</td>", "in the last 30 s", "just now"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("page with a reading lacks %q:\n%s", want, page.body)
		}
	}
	st.Phase, st.Candidate = rollout.PhaseStable, nil
	setShopState(t, cs, st)
	if page := b.get("/ui/apps/shop/shop"); strings.Contains(page.body, `id="traffic"`) {
		t.Errorf("a stable app's page shows the edge table:\n%s", page.body)
	}
}
