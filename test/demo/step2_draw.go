package demo

import (
	"context"
	"path/filepath"
	"time"
)

// whiteboardSpec is the whiteboard's own tsys-ci.yaml (one replica,
// ReadWriteOnce on the replicated class, strategy recreate).
func (d *Demo) whiteboardSpec() string {
	return filepath.Join(d.o.RepoRoot, "test", "whiteboard", "tsys-ci.yaml")
}

// strokesToDraw is how many strokes step 2 draws.
const strokesToDraw = 12

// stepPromoteAndDraw promotes v1 and draws a board of a spiral and a label
// through the same REST API the page uses, then reads it back.
func (d *Demo) stepPromoteAndDraw(ctx context.Context) error {
	out, took, err := d.promote(ctx, "whiteboard", "whiteboard", d.whiteboardSpec(), d.wb[0], "")
	if err != nil {
		return err
	}
	d.say("tsys-ci promote whiteboard (recreate) %s in %s:\n%s", d.wb[0].Version, round(took), lastLines(out, 3))
	d.number(2, "promote whiteboard v1 (recreate)", round(took).String())
	if d.wbAddr, err = d.serviceAddr(ctx, "whiteboard", "whiteboard"); err != nil {
		return err
	}
	if _, err := waitServed(ctx, d.wbAddr+"/readyz", 2*time.Minute); err != nil {
		return err
	}
	// One board per run, so a second run's numbers are its own.
	d.board = "demo-" + time.Now().UTC().Format("20060102-150405")
	d.res.BoardURL = d.wbAddr + "/b/" + d.board
	t := time.Now()
	colors := []string{"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e"}
	for i := 0; i < strokesToDraw; i++ {
		s := Stroke{Kind: "line", Color: colors[i%len(colors)], Width: 3}
		for j := 0; j < 20; j++ {
			r := float64(10 + 8*i + j)
			s.Points = append(s.Points, 400+r*float64(j%5-2), 300+r*float64((j+2)%5-2))
		}
		if i == strokesToDraw-1 {
			s = Stroke{Kind: "text", Color: "#000000", Width: 1, Text: "drawn by make demo", X: 40, Y: 40}
		}
		ack, err := draw(ctx, d.wbAddr, d.board, s)
		if err != nil {
			return err
		}
		d.res.Acked = append(d.res.Acked, ack)
	}
	perStroke := time.Since(t) / strokesToDraw
	d.say("drew %d strokes on board %s: each acknowledged after its fsync, %s per stroke from the host", strokesToDraw, d.board, round(perStroke))
	d.number(2, "acknowledged stroke (POST, fsync)", round(perStroke).String())
	b, err := readBoard(ctx, d.wbAddr, d.board, d.res.Acked)
	if err != nil {
		return err
	}
	d.say("read the board back: %d bytes, every acknowledged stroke in it as acknowledged", len(b))
	return nil
}
