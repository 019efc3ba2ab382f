//go:build e2e

package demo_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tsys-group/tsys-ci/test/demo"
)

// dashboard logs in to the dashboard the demo left running, as a person in
// a browser does, opens the whiteboard's page, and photographs both pages:
// the page must name the version serving and the history the demo made.
func (b *browsers) dashboard(ctx context.Context, db demo.Dashboard, serving string) error {
	s := b.session()
	// Start Chromium on s: the first Run's context owns the browser, and
	// the waits below run on shorter-lived ones.
	if err := chromedp.Do(s); err != nil {
		return fmt.Errorf("starting Chromium: %w", err)
	}
	wait := func(steps ...chromedp.Action[chromedp.Void]) error {
		ctx, cancel := context.WithTimeout(s, time.Minute)
		defer cancel()
		return chromedp.Do(ctx, steps...)
	}
	if err := wait(
		chromedp.Navigate(db.URL),
		chromedp.WaitVisible(`input[name="login"]`),
		chromedp.SendKeys(`input[name="login"]`, db.User),
		chromedp.SendKeys(`input[name="password"]`, db.Password),
		chromedp.Click(`form.login button`),
		chromedp.WaitVisible(`a[href="/ui/apps/whiteboard/whiteboard"]`),
	); err != nil {
		return fmt.Errorf("logging in to the dashboard at %s: %w", db.URL, err)
	}
	if err := b.screenshot(s, "dashboard-apps"); err != nil {
		return err
	}
	if err := wait(chromedp.Click(`a[href="/ui/apps/whiteboard/whiteboard"]`), chromedp.WaitVisible(`#phase`)); err != nil {
		return fmt.Errorf("opening the whiteboard's page on the dashboard: %w", err)
	}
	text, err := chromedp.Run(s, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		return err
	}
	if !strings.Contains(text, serving) {
		return fmt.Errorf("the dashboard's whiteboard page does not name the version serving, %s:\n%s", serving, text)
	}
	return b.screenshot(s, "dashboard-whiteboard")
}
