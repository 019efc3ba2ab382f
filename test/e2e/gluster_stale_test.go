//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/addons"
	"github.com/tsys-group/tsys-ci/test/labaddons"
)

// TestStaleGlusterMountRepaired makes a real stale GlusterFS FUSE mount on a
// lab node and has addons.RepairMounts find and repair it. It mounts the
// `replicated` volume a second time at a private path on www3 (the node's
// own mount, which pods use, is left alone), SIGKILLs that mount's client
// process, as a crash of the client would, and checks:
//   - the mount is then stale: listed in /proc/mounts, stat fails with
//     "Transport endpoint is not connected" (ENOTCONN);
//   - RepairMounts reports it stale with that error, lazily unmounts it and
//     mounts it again;
//   - a file written through the repaired mount is in the volume, read back
//     through www1's own mount of it.
//
// It stops no node: flock -s /work/lab.lock is enough.
func TestStaleGlusterMountRepaired(t *testing.T) {
	ctx := t.Context()
	const node, reader = "www3", "www1"
	c := labaddons.Cluster{Lab: theLab}
	lab := theAddons.Addons.Gluster
	private := "/var/lib/tsys-lab/e2e-stale-check"
	g := lab
	g.MountPath = private
	for _, n := range lab.Clients {
		if n.Name == node {
			g.Clients = []addons.Node{n}
		}
	}
	if len(g.Clients) != 1 {
		t.Fatalf("node %s is not a client of the GlusterFS volume (clients %v)", node, lab.Clients)
	}
	t.Cleanup(func() {
		bg := context.WithoutCancel(ctx)
		if out, err := theLab.Exec(bg, node, "sh", "-c", `while grep -qsF " $1 fuse.glusterfs " /proc/mounts; do umount -l "$1" || exit 1; done; rmdir "$1"`, "sh", private); err != nil {
			t.Errorf("removing the private mount %s on %s: %v (%s)", private, node, err, out)
		}
	})

	exec := func(n string, argv ...string) string {
		t.Helper()
		out, err := theLab.Exec(ctx, n, argv...)
		if err != nil {
			t.Fatalf("%s on %s: %v (%s)", strings.Join(argv, " "), n, err, out)
		}
		return string(out)
	}
	check := func() (addons.MountState, string) {
		t.Helper()
		st, detail, err := addons.ParseMountCheck(exec(node, g.CheckMountCmd()...))
		if err != nil {
			t.Fatal(err)
		}
		return st, detail
	}

	// Not mounted yet: RepairMounts mounts it.
	if st, _ := check(); st != addons.MountMissing {
		t.Fatalf("the private path %s on %s is %s before the test mounted it; want missing", private, node, st)
	}
	var log strings.Builder
	repairs, err := addons.RepairMounts(ctx, c, g, &log)
	if err != nil {
		t.Fatalf("mounting at %s: %v\n%s", private, err, log.String())
	}
	if len(repairs) != 1 || repairs[0].State != addons.MountMissing {
		t.Fatalf("first RepairMounts reported %+v; want %s missing, mounted", repairs, node)
	}

	// Kill this mount's FUSE client; the kernel keeps the mount, now stale.
	exec(node, "pkill", "-KILL", "-f", "-x", "/usr/sbin/glusterfs .* "+private)
	deadline := time.Now().Add(30 * time.Second)
	st, detail := check()
	for st != addons.MountStale && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond) // the killed client's exit takes a moment
		st, detail = check()
	}
	if st != addons.MountStale || !strings.Contains(detail, "Transport endpoint is not connected") {
		t.Fatalf("after SIGKILL of its client the mount is %s (%q); want stale with ENOTCONN", st, detail)
	}
	t.Logf("stale as expected: %s", detail)

	log.Reset()
	start := time.Now()
	repairs, err = addons.RepairMounts(ctx, c, g, &log)
	if err != nil {
		t.Fatalf("repairing the stale mount: %v\n%s", err, log.String())
	}
	took := time.Since(start)
	if len(repairs) != 1 || repairs[0].Node != node || repairs[0].State != addons.MountStale ||
		!strings.Contains(repairs[0].Detail, "Transport endpoint is not connected") {
		t.Fatalf("RepairMounts reported %+v; want %s stale with ENOTCONN", repairs, node)
	}
	if st, detail := check(); st != addons.MountOK {
		t.Fatalf("after the repair the mount is %s %s", st, detail)
	}
	if n := strings.Count(exec(node, "cat", "/proc/mounts"), " "+private+" fuse.glusterfs "); n != 1 {
		t.Errorf("%s is mounted %d times after the repair; want once (the stale one unmounted)", private, n)
	}
	t.Logf("repaired in %s: %s", took.Round(10*time.Millisecond), strings.TrimSpace(log.String()))

	// The repaired mount is the volume: a file written through it is read
	// through another node's own mount.
	name := fmt.Sprintf("e2e-stale-check-%d", time.Now().UnixNano())
	t.Cleanup(func() { theLab.Exec(context.WithoutCancel(ctx), reader, "rm", "-f", lab.MountPath+"/"+name) })
	exec(node, "sh", "-c", `echo "$2" > "$1"`, "sh", private+"/"+name, name)
	if got := strings.TrimSpace(exec(reader, "cat", lab.MountPath+"/"+name)); got != name {
		t.Fatalf("%s read %q through its own mount; %s wrote %q through the repaired one", reader, got, node, name)
	}
}
