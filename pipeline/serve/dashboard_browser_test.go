package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/testenv"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// setShopState rewrites shop's state ConfigMap, as a promote would.
func setShopState(t *testing.T, cs kubernetes.Interface, st *rollout.State) {
	t.Helper()
	b, _ := json.Marshal(st)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: rollout.StateName("shop")}, Data: map[string]string{"state.json": string(b)}}
	if _, err := cs.CoreV1().ConfigMaps("shop").Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// chromium starts a headless Chromium with its own profile (one person on
// one machine); it lives until the test ends.
func chromium(t *testing.T, exe string) context.Context {
	alloc, cancel := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()),
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
	)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(alloc)
	t.Cleanup(cancel2)
	// Start it on this context: the first Run's context owns the browser,
	// and the waits below run on shorter-lived ones.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	return ctx
}

// screenshots saves full-page screenshots of the dashboard tests and
// prints their paths, as TestDemo does: in $TSYS_CI_TEST_OUT/dashboard,
// else test/out/dashboard (git-ignored).
type screenshots struct {
	dir string
}

func newScreenshots(t *testing.T) *screenshots {
	dir := os.Getenv("TSYS_CI_TEST_OUT")
	if dir == "" {
		root, err := testenv.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "test", "out")
	}
	dir = filepath.Join(dir, "dashboard")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("making the screenshot folder: %v", err)
	}
	return &screenshots{dir: dir}
}

// take saves what ctx's page shows now as name.png; a failed screenshot
// fails t (the test or subtest taking it), as a missing page would.
func (s *screenshots) take(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(s.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", path, len(png))
}

// uiWait bounds each wait on the page: live.js refreshes every 2 s.
const uiWait = 20 * time.Second

func within(ctx context.Context, d time.Duration, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// browserLogin logs in through the form and waits for the apps list.
func browserLogin(ctx context.Context, base, user, pass string) error {
	return within(ctx, uiWait,
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(`input[name="login"]`),
		chromedp.SendKeys(`input[name="login"]`, user),
		chromedp.SendKeys(`input[name="password"]`, pass),
		chromedp.Click(`form.login button`),
		chromedp.WaitVisible(`a[href="/ui/apps/shop/shop"]`),
	)
}

// postFrom sends a form POST from the page with fetch (a forged request
// from the logged-in browser, its cookies included); bodyJS is a
// JavaScript expression giving the body. It returns the status and the
// answer's text.
func postFrom(ctx context.Context, path, bodyJS string) (int, string, error) {
	p, _ := json.Marshal(path)
	r, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
		Status int    `json:"status"`
		Text   string `json:"text"`
	}](`fetch(`+string(p)+`, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: `+bodyJS+`, redirect: "manual"}).then(r => r.text().then(text => ({status: r.status, text})))`, chromedp.EvalAwaitPromise))
	return r.Status, r.Text, err
}

// waitNotice waits until the page's notice says want. A click on a form
// navigates: until the answer replaces the page, the last action's notice
// is still there, and a script run during the navigation fails; so it asks
// again until the deadline rather than taking the first notice it sees.
func waitNotice(ctx context.Context, want string) error {
	deadline := time.Now().Add(uiWait)
	var last string
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		text, err := chromedp.Run(c, chromedp.Evaluate[string](`document.querySelector("p.notice")?.textContent ?? ""`))
		cancel()
		if err == nil && strings.Contains(text, want) {
			// Found while the page may still be loading: wait until it
			// is laid out (a screenshot of it needs a width).
			return within(ctx, uiWait, chromedp.WaitVisible(`p.notice`))
		}
		if err != nil {
			last = "(unreadable: " + err.Error() + ")"
		} else {
			last = text
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s the page's notice is %q, want one saying %q", uiWait, last, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDashboardInChromium(t *testing.T) {
	exe := testenv.LookPath(t, "chromium")
	dir := ucsDirectory(t)
	st := shopState(newTestClock().Now().Add(-5 * time.Minute))
	cs := dashboardCluster(t, st)
	ts := dashboardServer(t, dir, cs, nil)
	shots := newScreenshots(t)

	alice := chromium(t, exe)
	if err := browserLogin(alice, ts.url, "alice", "alice-pw"); err != nil {
		t.Fatalf("alice logs in: %v", err)
	}
	// The style sheet applies under the CSP (no inline style is needed).
	styled, err := chromedp.Run(alice, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("header")).display`))
	if err != nil || styled != "flex" {
		t.Fatalf("style.css not applied: header display %q, %v", styled, err)
	}
	row, err := chromedp.Run(alice, chromedp.Text(`table.apps tbody tr`))
	if err != nil || !strings.Contains(row, "shop/shop") || !strings.Contains(row, "shop@5e5e5e5e5e5e") || !strings.Contains(row, "stable") {
		t.Fatalf("apps list's first row %q, %v", row, err)
	}
	shots.take(t, alice, "1-apps")

	if err := within(alice, uiWait,
		chromedp.Click(`a[href="/ui/apps/shop/shop"]`),
		chromedp.WaitVisible(`#phase`),
		chromedp.WaitVisible(`form[action="/ui/apps/shop/shop/rollback"] button`),
		// A mark on this document: a reload would lose it, live.js keeps it.
		chromedp.Evaluate[chromedp.Void](`window.sameDocument = true`),
	); err != nil {
		t.Fatalf("opening shop: %v", err)
	}

	t.Run("the page follows a promote under way", func(t *testing.T) {
		canary := *st
		canary.Phase, canary.Step, canary.Message = rollout.PhaseCanary, 1, "canary step 1: 1 of 4 pods"
		canary.Candidate = &rollout.Release{Color: "blue", Image: "harbor.company.example/demo/shop@sha256:" + strings.Repeat("6f", 32)}
		canary.EdgeWeights = rollout.EdgeWeights{"blue": 25, "green": 75}
		canary.EdgeTraffic = &rollout.EdgeTraffic{At: ts.clock.Now(), WindowSeconds: 30, Versions: []rollout.VersionTraffic{
			{Color: "blue", Image: canary.Candidate.Image, Requests: 412, Failed: 1, ErrorRate: 100.0 / 412, ResponseTimeMs: 41},
			{Color: "green", Image: st.Active.Image, Requests: 1240, ResponseTimeMs: 18}}}
		setShopState(t, cs, &canary)
		if err := within(alice, uiWait, chromedp.Poll[chromedp.Void](`document.getElementById("phase").textContent === "canary" && document.getElementById("progress").textContent.includes("shop@6f6f6f6f6f6f")`, chromedp.WithPollingTimeout(uiWait))); err != nil {
			t.Fatalf("the page did not show the canary: %v", err)
		}
		same, err := chromedp.Run(alice, chromedp.Evaluate[bool](`window.sameDocument === true`))
		if err != nil || !same {
			t.Fatalf("the page was reloaded instead of updated in place: %v", err)
		}
		if err := within(alice, uiWait, chromedp.WaitVisible(`#traffic`), chromedp.WaitVisible(`#abort`)); err != nil {
			t.Fatalf("the edge's numbers or the Abort button did not show: %v", err)
		}
		shots.take(t, alice, "2-app-canary")
		// The Abort button came with the live update; a click queues an
		// abort by alice.
		if err := within(alice, uiWait, chromedp.Click(`#abort`)); err != nil {
			t.Fatalf("alice aborts: %v", err)
		}
		if err := waitNotice(alice, "Your abort was queued as deploy"); err != nil {
			t.Fatal(err)
		}
		shots.take(t, alice, "3-abort-queued")
		testenv.Eventually(t, "the abort deployed", 10*time.Second, func() bool { return len(ts.deployer.Calls()) == 1 })
		if c := ts.deployer.Calls()[0]; c.Kind != DeployAbort || c.By != "alice" {
			t.Fatalf("deploy %+v", c)
		}
		setShopState(t, cs, st)
		if err := within(alice, uiWait, chromedp.Poll[chromedp.Void](`document.getElementById("phase").textContent === "stable" && !document.getElementById("progress") && !document.getElementById("abort")`, chromedp.WithPollingTimeout(uiWait))); err != nil {
			t.Fatalf("the page did not show the end of the canary: %v", err)
		}
	})

	t.Run("a POST without the CSRF field is refused", func(t *testing.T) {
		code, text, err := postFrom(alice, "/ui/apps/shop/shop/rollback", `""`)
		if err != nil || code != 403 || !strings.Contains(text, "did not carry your session&#39;s token") {
			t.Fatalf("rollback without csrf from alice's browser: %d %q, %v", code, text, err)
		}
		if n := len(ts.deployer.Calls()); n != 1 {
			t.Fatalf("%d deploys, want alice's abort only", n)
		}
	})

	// The abort's notice is still on the page until the form's answer
	// replaces it: wait for the rollback's own notice, not for any notice.
	if err := within(alice, uiWait, chromedp.Click(`form[action="/ui/apps/shop/shop/rollback"] button`)); err != nil {
		t.Fatalf("alice rolls back: %v", err)
	}
	if err := waitNotice(alice, "Your rollback was queued as deploy"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the rollback deployed", 10*time.Second, func() bool { return len(ts.deployer.Calls()) == 2 })
	if c := ts.deployer.Calls()[1]; c.Kind != DeployRollback || c.By != "alice" || c.Namespace != "shop" || c.App != "shop" {
		t.Fatalf("deploy %+v", c)
	}
	if err := within(alice, uiWait, chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("table.deploys tbody tr")].some(r => r.textContent.includes("rollback") && r.textContent.includes("alice") && r.textContent.includes("succeeded"))`, chromedp.WithPollingTimeout(uiWait))); err != nil {
		t.Fatalf("the deploys table did not show alice's rollback succeeded: %v", err)
	}
	shots.take(t, alice, "4-rollback-done")

	t.Run("bob sees no buttons and is refused a forged POST", func(t *testing.T) {
		bob := chromium(t, exe)
		if err := browserLogin(bob, ts.url, "bob", "bob-pw"); err != nil {
			t.Fatalf("bob logs in: %v", err)
		}
		if err := within(bob, uiWait, chromedp.Navigate(ts.url+"/ui/apps/shop/shop"), chromedp.WaitVisible(`#phase`)); err != nil {
			t.Fatal(err)
		}
		shots.take(t, bob, "5-app-without-rights")
		forms, err := chromedp.Run(bob, chromedp.Evaluate[int](`document.querySelectorAll("main form").length`))
		if err != nil || forms != 0 {
			t.Fatalf("bob's shop page has %d forms, %v", forms, err)
		}
		// His own session's token, from the logout form: still not his namespace.
		code, text, err := postFrom(bob, "/ui/apps/shop/shop/rollback", `"csrf=" + encodeURIComponent(document.querySelector("form.logout input[name=csrf]").value)`)
		if err != nil || code != 403 || !strings.Contains(text, "bob may not deploy in namespace &#34;shop&#34;") {
			t.Fatalf("bob's forged rollback: %d %q, %v", code, text, err)
		}
		if n := len(ts.deployer.Calls()); n != 2 {
			t.Fatalf("%d deploys after bob's forged rollback", n)
		}
	})
}
