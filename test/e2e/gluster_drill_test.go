//go:build e2e && glusterdrill

package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/addons"
	"github.com/tsys-group/tsys-ci/test/lab"
	"github.com/tsys-group/tsys-ci/test/labaddons"
)

// TestStorageDrillMounts looks for stale GlusterFS mounts after storage
// drills like the demo's: in each round db2 and one www node (www1, www2,
// www3 in turn) stop at once, by freeze and then by kill, stay down 25 s (past
// two GlusterFS ping timeouts and the node grace period) while a file is
// written through a live node's mount, come back; then every node's mount
// is checked before and after addons.Heal. It reports what it saw and fails
// only if a mount stays broken or a write is lost. By hand, alone on the lab:
//
//	flock -x /work/lab.lock go test -tags 'e2e glusterdrill' -run TestStorageDrillMounts -v -timeout 30m ./test/e2e/
//
// TSYS_CI_DRILL_ROUNDS sets the rounds (default 3; each round is one freeze
// and one kill).
func TestStorageDrillMounts(t *testing.T) {
	rounds := 3
	if v := os.Getenv("TSYS_CI_DRILL_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("TSYS_CI_DRILL_ROUNDS=%q is not a positive number", v)
		}
		rounds = n
	}
	ctx := t.Context()
	c := labaddons.Cluster{Lab: theLab}
	g := theAddons.Addons.Gluster
	t.Cleanup(func() {
		for _, n := range lab.Nodes {
			theLab.StartNode(context.WithoutCancel(ctx), n.Name)
		}
	})
	staleBefore, repaired := 0, 0
	var summary []string
	for r := range rounds {
		for _, mode := range []lab.StopMode{lab.Freeze, lab.Kill} {
			www := fmt.Sprintf("www%d", r%3+1)
			writer := fmt.Sprintf("www%d", (r+1)%3+1)
			nodes := []string{"db2", www}
			if err := theLab.StopNodes(ctx, nodes, mode); err != nil {
				t.Fatalf("round %d: stopping %v (%s): %v", r+1, nodes, mode, err)
			}
			stopped := time.Now()
			name := fmt.Sprintf("drill-%d-%s-%d", r+1, mode, stopped.UnixNano())
			if out, err := theLab.Exec(ctx, writer, "sh", "-c", `echo "$2" > "$1"`, "sh", g.MountPath+"/"+name, name); err != nil {
				t.Errorf("round %d (%s): writing through %s's mount while %v were down: %v (%s)", r+1, mode, writer, nodes, err, out)
			}
			t.Cleanup(func() { theLab.Exec(context.WithoutCancel(ctx), writer, "rm", "-f", g.MountPath+"/"+name) })
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(25*time.Second - time.Since(stopped)):
			}
			started := time.Now()
			if err := theLab.StartNodes(ctx, nodes); err != nil {
				t.Fatalf("round %d: starting %v: %v", r+1, nodes, err)
			}
			if err := theLab.WaitNodesReadySince(ctx, started, 4*time.Minute, nodes...); err != nil {
				t.Fatalf("round %d: %v not Ready again: %v", r+1, nodes, err)
			}
			ready := time.Since(started)
			var states []string
			for _, n := range g.Clients {
				out, err := theLab.Exec(ctx, n.Name, g.CheckMountCmd()...)
				st, detail, perr := addons.ParseMountCheck(string(out))
				switch {
				case err != nil || perr != nil:
					states = append(states, fmt.Sprintf("%s: check failed: %v %v", n.Name, err, perr))
				case st != addons.MountOK:
					staleBefore++
					states = append(states, fmt.Sprintf("%s: %s %s", n.Name, st, detail))
				}
			}
			var log strings.Builder
			healStart := time.Now()
			repairs, err := addons.Heal(ctx, c, g, 5*time.Minute, &log)
			if err != nil {
				t.Fatalf("round %d (%s): heal: %v\n%s", r+1, mode, err, log.String())
			}
			repaired += len(repairs)
			got, err := theLab.Exec(ctx, www, "cat", g.MountPath+"/"+name)
			if err != nil || strings.TrimSpace(string(got)) != name {
				t.Errorf("round %d (%s): %s reads %q (%v) of the file written while it was down", r+1, mode, www, got, err)
			}
			line := fmt.Sprintf("round %d %-6s %v: Ready %s after start; before Heal: %s; Heal %s, repaired %d %v",
				r+1, mode, nodes, ready.Round(100*time.Millisecond),
				orNone(states), time.Since(healStart).Round(100*time.Millisecond), len(repairs), repairs)
			summary = append(summary, line)
			t.Log(line)
		}
	}
	t.Logf("%d drills: %d mounts not ok right after the nodes came back, %d repaired by Heal\n%s",
		2*rounds, staleBefore, repaired, strings.Join(summary, "\n"))
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "every mount ok"
	}
	return strings.Join(s, "; ")
}
