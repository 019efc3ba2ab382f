package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/test/addons"
	"github.com/tsys-group/tsys-ci/test/lab"
	"github.com/tsys-group/tsys-ci/test/labaddons"
)

// dbNodeToFreeze is the storage node frozen with the whiteboard's node; two
// of three etcd members and GlusterFS bricks stay.
const dbNodeToFreeze = "db2"

// stepFailover freezes the whiteboard's www node and a db node at once (the
// lab's Freeze: cgroups frozen, container paused and disconnected: peers hear
// nothing), waits for the board to be served again from another node,
// compares it byte for byte, then brings both back and heals GlusterFS.
func (d *Demo) stepFailover(ctx context.Context) error {
	if d.o.SkipDrill {
		d.say("skipped (SkipDrill)")
		return nil
	}
	waited := time.Now()
	err := d.waitNoE2E(ctx)
	if w := time.Since(waited); w > time.Second {
		d.number(5, "waited for the e2e tests (shared lab)", round(w).String())
	}
	if err != nil {
		d.say("SKIPPED the node drill: %v", err)
		d.number(5, "node drill", "skipped: "+err.Error())
		return nil
	}
	d.stepAt = time.Now() // the step's times count from here, not from the wait
	if d.o.BeforeDrill != nil {
		if err := d.o.BeforeDrill(ctx, d.res.BoardURL); err != nil {
			return fmt.Errorf("before the drill: %w", err)
		}
		b, err := readBoard(ctx, d.wbAddr, d.board, d.res.Acked)
		if err != nil {
			return err
		}
		d.say("the board after the browser drew on it: %d bytes (was %d)", len(b), len(d.res.BoardBefore))
		d.res.BoardBefore = b
	}
	www, err := d.whiteboardNode(ctx)
	if err != nil {
		return err
	}
	frozen := []string{www, dbNodeToFreeze}
	d.say("the whiteboard runs on %s; freezing %s and %s at once", www, www, dbNodeToFreeze)
	t0 := time.Now()
	if err := d.lab.StopNodes(ctx, frozen, lab.Freeze); err != nil {
		return err
	}
	d.res.DrillRan = true
	// However this ends, the nodes come back and the storage heals.
	defer func() {
		if err := d.restore(context.WithoutCancel(ctx), frozen); err != nil {
			d.say("RESTORING FAILED: %v (bring them back: go run ./test/lab/cmd/lab start NODE)", err)
		}
	}()
	d.say("frozen in %s; now only timeouts tell the cluster (16s node grace + 15s toleration, then a new pod)", round(time.Since(t0)))
	after, err := waitServed(ctx, d.wbAddr+"/api/boards/"+d.board, 6*time.Minute)
	if err != nil {
		return fmt.Errorf("the whiteboard was not served again after freezing %v: %w", frozen, err)
	}
	back := time.Since(t0)
	where, err := d.waitWhiteboardNode(ctx)
	if err != nil {
		return err
	}
	d.say("the board is served again after %s, from %s", round(back), where)
	d.number(5, "whiteboard back after freezing "+strings.Join(frozen, "+"), round(back).String()+" (now on "+where+")")
	if err := checkBoard(after, d.board, d.res.Acked); err != nil {
		return err
	}
	d.res.BoardAfter = after
	if !bytes.Equal(d.res.BoardBefore, after) {
		return fmt.Errorf("the board differs after the failover:\nbefore %s\nafter  %s", d.res.BoardBefore, after)
	}
	d.say("the board is byte for byte what it was before the failure (%d bytes, %d strokes)", len(after), strokeCount(after))
	d.number(5, "board after failover", "identical, byte for byte")
	if d.o.AfterDrill != nil {
		if err := d.o.AfterDrill(ctx, d.res.BoardURL); err != nil {
			return fmt.Errorf("after the drill: %w", err)
		}
	}
	return nil
}

// restore starts the frozen nodes, waits for them Ready and heals GlusterFS.
func (d *Demo) restore(ctx context.Context, nodes []string) error {
	t := time.Now()
	if err := d.lab.StartNodes(ctx, nodes); err != nil {
		return err
	}
	if err := d.lab.WaitNodesReady(ctx, 4*time.Minute, nodes...); err != nil {
		return err
	}
	d.say("%s back and Ready in %s", strings.Join(nodes, " and "), round(time.Since(t)))
	t = time.Now()
	var log bytes.Buffer
	repairs, err := addons.Heal(ctx, labaddons.Cluster{Lab: d.lab}, d.addons.Addons.Gluster, 5*time.Minute, &log)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, indent(log.String()))
	}
	d.say("GlusterFS healed in %s; its mount checked (stat) on all %d nodes", round(time.Since(t)), len(d.addons.Addons.Gluster.Clients))
	d.res.MountRepairs = append(d.res.MountRepairs, repairs...)
	for _, r := range repairs {
		d.say("REPAIRED the GlusterFS mount on %s", r)
	}
	d.number(5, "stale GlusterFS mounts repaired after the drill", fmt.Sprint(len(repairs)))
	d.number(5, "nodes back + GlusterFS healed", round(time.Since(t)).String())
	return nil
}

// whiteboardNode is the node of the whiteboard's ready pod.
func (d *Demo) whiteboardNode(ctx context.Context) (string, error) {
	c, err := d.lab.Client()
	if err != nil {
		return "", err
	}
	pods, err := c.CoreV1().Pods("whiteboard").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=whiteboard"})
	if err != nil {
		return "", fmt.Errorf("listing the whiteboard's pods: %w", err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == "Ready" && c.Status == "True" {
				return p.Spec.NodeName, nil
			}
		}
	}
	return "", fmt.Errorf("no ready whiteboard pod in namespace whiteboard")
}

// waitWhiteboardNode asks for the node of the ready pod until the API (one
// of whose servers may have been frozen) answers it, for up to a minute.
func (d *Demo) waitWhiteboardNode(ctx context.Context) (string, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		n, err := d.whiteboardNode(ctx)
		if err == nil {
			return n, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("finding where the whiteboard runs now: %w", err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// waitNoE2E waits, up to DrillWait, until no e2e test (which freezes nodes
// of the same shared lab) runs.
func (d *Demo) waitNoE2E(ctx context.Context) error {
	deadline := time.Now().Add(d.o.DrillWait)
	said := false
	for {
		running := e2eRunning()
		if running == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("e2e tests still running after %s (%s); they freeze nodes of the same lab", d.o.DrillWait, running)
		}
		if !said {
			d.say("waiting (up to %s) for the running e2e tests to end: %s", d.o.DrillWait, running)
			said = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

// e2eRunning names the running lab test binaries (go test names a
// package's test binary PKG.test): test/e2e's freeze nodes of the same lab.
// A `go test ./test/e2e/` still compiling, or waiting for a lock under
// flock, is not running yet and is not counted: matching command lines
// made the drill wait for commands that were themselves waiting.
func e2eRunning() string {
	out, err := exec.Command("pgrep", "-x", "e2e.test").Output()
	if err == nil && len(bytes.TrimSpace(out)) > 0 {
		return "e2e.test running as pid " + strings.Join(strings.Fields(string(out)), ",")
	}
	return ""
}

// strokeCount is how many strokes a board's JSON holds (-1 if it is not one).
func strokeCount(board []byte) int {
	var b struct {
		Strokes []json.RawMessage `json:"strokes"`
	}
	if err := json.Unmarshal(board, &b); err != nil {
		return -1
	}
	return len(b.Strokes)
}
