package demo

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// stepBroken promotes a whiteboard whose health checks fail on purpose
// (WHITEBOARD_FAIL_HEALTH=1 baked into the image): promote must exit 3 and
// put v2 back by itself, and the board must come back whole.
func (d *Demo) stepBroken(ctx context.Context) error {
	var err error
	env := append(append([]string{}, whiteboardEnv...), "WHITEBOARD_FAIL_HEALTH=1")
	if d.wb[2], err = d.buildPush(ctx, "whiteboard", "v3-broken", "./test/whiteboard/cmd/whiteboard", env...); err != nil {
		return err
	}
	d.say("built, pushed and signed whiteboard v3-broken (WHITEBOARD_FAIL_HEALTH=1): %s", d.wb[2].Ref)
	before, err := readBoard(ctx, d.wbAddr, d.board, d.res.Acked)
	if err != nil {
		return err
	}
	out, took, err := d.promote(ctx, "whiteboard", "whiteboard", d.whiteboardSpec(), d.wb[2], "")
	switch code := exitCode(err); {
	case err == nil:
		return fmt.Errorf("promote of the broken version succeeded; it must fail its probes:\n%s", indent(out))
	case code != 3:
		return fmt.Errorf("promote of the broken version failed with exit code %d, want 3 (probes failed, rolled back): %w", code, err)
	}
	d.say("tsys-ci promote whiteboard v3-broken exited 3 after %s (probes failed, rolled back on its own):\n%s", round(took), lastLines(out, 4))
	d.number(4, "broken promote: fail + automatic rollback", round(took).String()+", exit 3")
	t := time.Now()
	ver, err := waitServed(ctx, d.wbAddr+"/api/version", 3*time.Minute)
	if err != nil {
		return err
	}
	after, err := readBoard(ctx, d.wbAddr, d.board, d.res.Acked)
	if err != nil {
		return err
	}
	if !bytes.Equal(before, after) {
		return fmt.Errorf("the board changed across the failed promote:\nbefore %s\nafter  %s", before, after)
	}
	d.say("served again %s after promote returned, by version %s; the board is byte for byte what it was (%d bytes)", round(time.Since(t)), trimNL(ver), len(after))
	d.say("note: recreate stops the old pod before the new one starts, so the broken version did cost an outage; a two-copy app would keep serving the old version (step 3's blue/green)")
	d.res.BoardBefore = after
	return nil
}
