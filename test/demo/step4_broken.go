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
	ld := startLoad(ctx, d.wbAddr+"/api/boards/"+d.board, 2, 100*time.Millisecond)
	out, took, err := d.promote(ctx, "whiteboard", "whiteboard", d.whiteboardSpec(), d.wb[2], "")
	if _, werr := waitServed(ctx, d.wbAddr+"/api/boards/"+d.board, 3*time.Minute); werr != nil {
		ld.stop()
		return fmt.Errorf("after the broken promote (%v): %w", err, werr)
	}
	time.Sleep(time.Second) // a few good answers after the return, so the outage has its end
	st := ld.stop()
	switch code := exitCode(err); {
	case err == nil:
		return fmt.Errorf("promote of the broken version succeeded; it must fail its probes:\n%s", indent(out))
	case code != 3:
		return fmt.Errorf("promote of the broken version failed with exit code %d, want 3 (probes failed, rolled back): %w", code, err)
	}
	d.say("tsys-ci promote whiteboard v3-broken exited 3 after %s (probes failed, rolled back on its own):\n%s", round(took), lastLines(out, 4))
	d.number(4, "broken promote: fail + automatic rollback", round(took).String()+", exit 3")
	d.say("WHITEBOARD during the broken promote and its rollback: %d of %d reads failed; unavailable for %s (recreate: the good pod stops first)",
		st.Failed, st.Total, round(st.Outage))
	d.sayErrors(st)
	d.number(4, "whiteboard unavailable (broken version + rollback)", fmt.Sprintf("%s (%d/%d reads failed)", round(st.Outage), st.Failed, st.Total))
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
	d.say("so for the whiteboard, traffic did leave the good version: recreate stops it before the new one starts; an app with two copies keeps serving the old version while the new one fails (blue/green, step 3)")
	d.res.BoardBefore = after
	return nil
}
