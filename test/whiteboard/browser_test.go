package whiteboard

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tsys-group/tsys-ci/test/testenv"
)

// screenshotDir is test/out/whiteboard (git-ignored).
var screenshotDir = filepath.Join("..", "out", "whiteboard")

// browser starts a headless Chromium with a fresh profile: each one is a
// separate session, as two people on two machines would be.
func browser(t *testing.T, ctx context.Context, exe string) context.Context {
	t.Helper()
	alloc, cancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1300, 850),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	t.Cleanup(cancel)
	bctx, bcancel := chromedp.NewContext(alloc)
	t.Cleanup(bcancel)
	return bctx
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 gives PNG, below it JPEG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(screenshotDir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", path, len(png))
}

// TestBrowserDrawSeenByOtherSession draws a line and places a text with the
// mouse in one Chromium, and waits until both appear, drawn on the canvas,
// in a second Chromium with its own profile; the API then has them too.
func TestBrowserDrawSeenByOtherSession(t *testing.T) {
	exe := testenv.LookPath(t, "chromium")
	_, ts := startServer(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a, b := browser(t, ctx, exe), browser(t, ctx, exe)
	url := ts.URL + "/b/browser"
	live := chromedp.Poll[chromedp.Void](`document.body.dataset.state === "live"`, chromedp.WithPollingTimeout(30*time.Second))
	for _, c := range []context.Context{a, b} {
		if err := chromedp.Do(c, chromedp.Navigate(url), live); err != nil {
			t.Fatalf("opening %s: %v", url, err)
		}
	}
	version, err := chromedp.Run(b, chromedp.Evaluate[string](`document.getElementById("version").textContent`))
	if err != nil || version != "test-1" {
		t.Fatalf("version on the page: %q %v", version, err)
	}
	screenshot(t, a, "session-a-before")
	screenshot(t, b, "session-b-before")

	origin, err := chromedp.Run(a, chromedp.Evaluate[[2]float64](`(() => { const c = document.getElementById("board"), r = c.getBoundingClientRect(); return [r.left + c.clientLeft, r.top + c.clientTop]; })()`))
	if err != nil {
		t.Fatal(err)
	}
	at := func(x, y float64) (float64, float64) { return origin[0] + x, origin[1] + y }
	x0, y0 := at(100, 100)
	steps := []chromedp.Action[chromedp.Void]{chromedp.MouseEvent(chromedp.MousePressed, x0, y0, chromedp.ButtonLeft)}
	for i := 1; i <= 10; i++ {
		x, y := at(100+float64(i)*40, 100+float64(i)*20)
		steps = append(steps, chromedp.MouseEvent(chromedp.MouseMoved, x, y, chromedp.ButtonLeft))
	}
	xe, ye := at(500, 300)
	steps = append(steps, chromedp.MouseEvent(chromedp.MouseReleased, xe, ye, chromedp.ButtonLeft))
	steps = append(steps,
		chromedp.Evaluate[chromedp.Void](`document.getElementById("tool").value = "text"; document.getElementById("text").value = "hello from A"`),
		chromedp.MouseClickXY(at(600, 400)),
	)
	if err := chromedp.Do(a, steps...); err != nil {
		t.Fatalf("drawing in session A: %v", err)
	}

	// Session B sees both strokes, and the line's first point is painted.
	seen := chromedp.Poll[chromedp.Void](`wb.strokes().length === 2 && wb.strokes()[1].text === "hello from A" &&
		document.getElementById("board").getContext("2d").getImageData(100, 100, 1, 1).data[3] > 0`,
		chromedp.WithPollingTimeout(30*time.Second))
	if err := chromedp.Do(b, seen); err != nil {
		got, _ := chromedp.Run(b, chromedp.Evaluate[string](`JSON.stringify(wb.strokes())`))
		t.Fatalf("session B did not show A's strokes: %v; it has %s", err, got)
	}
	screenshot(t, a, "session-a-after")
	screenshot(t, b, "session-b-after")

	_, body := get(t, ts.URL+"/api/boards/browser")
	var board Board
	if err := json.Unmarshal(body, &board); err != nil {
		t.Fatal(err)
	}
	if len(board.Strokes) != 2 || board.Strokes[0].Kind != KindLine || len(board.Strokes[0].Points) < 6 ||
		board.Strokes[0].Points[0] != 100 || board.Strokes[0].Points[1] != 100 || board.Strokes[1].Text != "hello from A" {
		t.Fatalf("board in the API: %s", body)
	}
}
