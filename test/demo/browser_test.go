package demo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tsys-group/tsys-ci/test/demo"
)

// browsers are two headless Chromium sessions (own profiles: two people on
// two machines) on the whiteboard deployed by the demo, reached from the
// host through its MetalLB address.
type browsers struct {
	t      *testing.T
	exe    string
	dir    string // screenshots
	prefix string // of the screenshots' names
	a, b   context.Context
	before int           // strokes on the page before session A drew
	drawn  []demo.Stroke // what A drew, as the server sent it back
}

func newBrowsers(t *testing.T, exe string) *browsers {
	dir := os.Getenv("TSYS_CI_TEST_OUT")
	if dir == "" {
		dir = filepath.Join("..", "out") // test/out: git-ignored
	}
	dir, err := filepath.Abs(filepath.Join(dir, "demo"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("making the screenshot folder: %v", err)
	}
	return &browsers{t: t, exe: exe, dir: dir}
}

// session starts one Chromium; it lives until the test ends.
func (b *browsers) session() context.Context {
	alloc, cancel := chromedp.NewExecAllocator(context.WithoutCancel(b.t.Context()),
		chromedp.ExecPath(b.exe),
		chromedp.UserDataDir(b.t.TempDir()),
		chromedp.WindowSize(1300, 850),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
	)
	b.t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(alloc)
	b.t.Cleanup(cancel2)
	return ctx
}

func (b *browsers) screenshot(ctx context.Context, name string) error {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		return fmt.Errorf("screenshot %s: %w", name, err)
	}
	path := filepath.Join(b.dir, b.prefix+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return err
	}
	b.t.Logf("screenshot %s (%d bytes)", path, len(png))
	return nil
}

// line draws with the mouse from (x0,y0) to (x1,y1) in board coordinates.
// The headless window's viewport is shorter than the 700-pixel board: keep
// y below about 500, or the events land outside the page.
func line(ctx context.Context, x0, y0, x1, y1 float64) error {
	origin, err := chromedp.Run(ctx, chromedp.Evaluate[[2]float64](`(() => { const c = document.getElementById("board"), r = c.getBoundingClientRect(); return [r.left + c.clientLeft, r.top + c.clientTop]; })()`))
	if err != nil {
		return err
	}
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.Evaluate[chromedp.Void](`document.getElementById("tool").value = "line"`),
		chromedp.MouseEvent(chromedp.MousePressed, origin[0]+x0, origin[1]+y0, chromedp.ButtonLeft),
	}
	for i := 1; i <= 10; i++ {
		f := float64(i) / 10
		steps = append(steps, chromedp.MouseEvent(chromedp.MouseMoved, origin[0]+x0+f*(x1-x0), origin[1]+y0+f*(y1-y0), chromedp.ButtonLeft))
	}
	steps = append(steps, chromedp.MouseEvent(chromedp.MouseReleased, origin[0]+x1, origin[1]+y1, chromedp.ButtonLeft))
	return chromedp.Do(ctx, steps...)
}

// text places a text by clicking the board at (x,y).
func text(ctx context.Context, s string, x, y float64) error {
	origin, err := chromedp.Run(ctx, chromedp.Evaluate[[2]float64](`(() => { const c = document.getElementById("board"), r = c.getBoundingClientRect(); return [r.left + c.clientLeft, r.top + c.clientTop]; })()`))
	if err != nil {
		return err
	}
	js, _ := json.Marshal(s)
	return chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.getElementById("tool").value = "text"; document.getElementById("text").value = `+string(js)),
		chromedp.MouseClickXY(origin[0]+x, origin[1]+y))
}

// waitPage polls a condition on the page (a JS expression) for up to d.
func waitPage(ctx context.Context, cond string, d time.Duration) error {
	return chromedp.Do(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(d)))
}

func pageStrokes(ctx context.Context) string {
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.state + " " + wb.connects + " connects, strokes " + JSON.stringify(wb.strokes().map(s => s.seq + ":" + s.kind + (s.points ? "@" + s.points.slice(0, 2) : "@" + s.x + "," + s.y)))`))
	if err != nil {
		return err.Error()
	}
	return s
}

const textBefore = "drawn in Chromium before the failover"

// drawBefore (the demo's BeforeDrill): both sessions open the board; A
// draws a line and a text with the mouse; B shows both, painted; both are
// photographed.
func (b *browsers) drawBefore(ctx context.Context, url string) error {
	b.a, b.b = b.session(), b.session()
	for name, s := range map[string]context.Context{"A": b.a, "B": b.b} {
		if err := chromedp.Do(s, chromedp.Navigate(url)); err != nil {
			return fmt.Errorf("session %s opening %s: %w", name, url, err)
		}
		if err := waitPage(s, `document.body.dataset.state === "live"`, time.Minute); err != nil {
			return fmt.Errorf("session %s: the page at %s never went live: %w (%s)", name, url, err, pageStrokes(s))
		}
	}
	n, err := chromedp.Run(b.b, chromedp.Evaluate[int](`wb.strokes().length`))
	if err != nil {
		return err
	}
	b.before = n
	if err := line(b.a, 700, 100, 1150, 200); err != nil {
		return fmt.Errorf("session A drawing: %w", err)
	}
	if err := text(b.a, textBefore, 700, 260); err != nil {
		return fmt.Errorf("session A placing a text: %w", err)
	}
	seen := fmt.Sprintf(`wb.strokes().length === %d && wb.strokes()[%d].text === %q &&
		document.getElementById("board").getContext("2d").getImageData(700, 100, 1, 1).data[3] > 0`, n+2, n+1, textBefore)
	if err := waitPage(b.b, seen, 30*time.Second); err != nil {
		return fmt.Errorf("session B did not show what A drew: %w (%s)", err, pageStrokes(b.b))
	}
	js, err := chromedp.Run(b.b, chromedp.Evaluate[string](fmt.Sprintf(`JSON.stringify(wb.strokes().slice(%d))`, n)))
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(js), &b.drawn); err != nil {
		return fmt.Errorf("decoding the strokes on page B %s: %w", js, err)
	}
	if len(b.drawn) != 2 || b.drawn[0].Kind != "line" || b.drawn[0].Points[0] != 700 || b.drawn[0].Points[1] != 100 {
		return fmt.Errorf("page B shows %s; want A's line from (700,100) and its text", js)
	}
	b.t.Logf("session B shows the line and the text session A drew (strokes %d and %d)", b.drawn[0].Seq, b.drawn[1].Seq)
	for name, s := range map[string]context.Context{"a": b.a, "b": b.b} {
		if err := b.screenshot(s, "before-failover-session-"+name); err != nil {
			return err
		}
	}
	return nil
}

// checkAfter (the demo's AfterDrill): the board is served again from
// another node. Both pages, still open, notice their server is gone (the
// page's heartbeat), reconnect to the new copy and show every stroke; a
// line B draws now appears in A; both are photographed.
func (b *browsers) checkAfter(ctx context.Context, _ string) error {
	start := time.Now()
	want := b.before + 2
	for name, s := range map[string]context.Context{"A": b.a, "B": b.b} {
		back := fmt.Sprintf(`document.body.dataset.state === "live" && wb.connects >= 2 && wb.strokes().length === %d`, want)
		if err := waitPage(s, back, 2*time.Minute); err != nil {
			return fmt.Errorf("session %s did not reconnect to the board after the failover: %w (%s)", name, err, pageStrokes(s))
		}
		b.t.Logf("session %s live again on a new connection %s after the board was served again", name, time.Since(start).Round(100*time.Millisecond))
	}
	if err := line(b.b, 700, 400, 1150, 480); err != nil {
		return fmt.Errorf("session B drawing after the failover: %w", err)
	}
	seen := fmt.Sprintf(`wb.strokes().length === %d && wb.strokes()[%d].points[1] === 400 &&
		document.getElementById("board").getContext("2d").getImageData(700, 400, 1, 1).data[3] > 0`, want+1, want)
	if err := waitPage(b.a, seen, 30*time.Second); err != nil {
		return fmt.Errorf("session A did not show the line B drew after the failover: %w (%s)", err, pageStrokes(b.a))
	}
	b.t.Logf("session A shows the line session B drew after the failover")
	for name, s := range map[string]context.Context{"a": b.a, "b": b.b} {
		if err := b.screenshot(s, "after-failover-session-"+name); err != nil {
			return err
		}
	}
	return nil
}
