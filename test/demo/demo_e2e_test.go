//go:build e2e

package demo_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/demo"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// TestDemo runs make demo's seven steps on the lab (brought up if needed, left
// up) with two headless Chromium sessions on the whiteboard's page through
// its MetalLB address (browser_e2e_test.go), and checks the board after the
// node failure: byte for byte what was read before it, every stroke the API
// acknowledged and the two the browser drew in it as they were.
//
//	go test -tags e2e -v -timeout 30m ./test/demo/
//
// The drill freezes nodes of the one lab of the machine: run it alone
// (make test runs it in its own stage after the e2e stage). It waits up to
// 20 minutes for running test/e2e binaries to end, and fails (not skips) if
// it could not run. It then logs in to the dashboard the demo started, in
// Chromium, and stops it. Screenshots: $TSYS_CI_TEST_OUT/demo, else
// test/out/demo.
func TestDemo(t *testing.T) {
	testenv.LookPath(t, "docker")
	b := newBrowsers(t, testenv.LookPath(t, "chromium"))
	res, err := demo.Run(t.Context(), demo.Options{Out: t.Output(), DrillWait: 20 * time.Minute,
		BeforeDrill: b.drawBefore, AfterDrill: b.checkAfter})
	if res != nil && res.RepoRoot != "" {
		// make demo leaves the dashboard running for a person; a test does not.
		t.Cleanup(func() {
			if err := demo.StopDashboard(res.RepoRoot); err != nil {
				t.Errorf("stopping the demo's dashboard: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	if !res.DrillRan {
		t.Fatal("the node drill did not run (e2e tests held the lab); the board after a failure was not checked")
	}
	if len(res.BoardBefore) == 0 || !bytes.Equal(res.BoardBefore, res.BoardAfter) {
		t.Fatalf("the board after the failover differs from before it:\nbefore %s\nafter  %s", res.BoardBefore, res.BoardAfter)
	}
	var board struct {
		Strokes []demo.Stroke `json:"strokes"`
	}
	if err := json.Unmarshal(res.BoardAfter, &board); err != nil {
		t.Fatalf("the board after the failover is not JSON: %v: %s", err, res.BoardAfter)
	}
	want := append(append([]demo.Stroke{}, res.Acked...), b.drawn...)
	if len(board.Strokes) != len(want) {
		t.Fatalf("the board has %d strokes after the failover; %d were acknowledged through the API and %d drawn in the browser",
			len(board.Strokes), len(res.Acked), len(b.drawn))
	}
	for i, s := range want {
		w, _ := json.Marshal(s)
		got, _ := json.Marshal(board.Strokes[i])
		if !bytes.Equal(w, got) {
			t.Errorf("stroke %d after the failover is %s; before it, it was %s", i, got, w)
		}
	}
	if res.Dashboard.URL == "" {
		t.Fatal("the demo left no dashboard running")
	}
	if err := b.dashboard(t.Context(), res.Dashboard, res.Dashboard.Serving); err != nil {
		t.Error(err)
	}
	for _, r := range res.MountRepairs {
		t.Logf("GlusterFS mount repaired after the drill: %s", r)
	}
	t.Logf("board %s: %d strokes (%d by the API, %d in Chromium), %d bytes, identical after the failover; %d GlusterFS mounts repaired",
		res.BoardURL, len(want), len(res.Acked), len(b.drawn), len(res.BoardAfter), len(res.MountRepairs))
	for _, n := range res.Numbers {
		t.Logf("number: step %s: %s: %s", n.Step, n.What, n.Value)
	}
}
