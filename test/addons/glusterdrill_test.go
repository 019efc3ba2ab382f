//go:build glusterdrill

package addons

// A drill of the GlusterFS part on real GlusterFS in node containers, before
// the lab's Go API exists: SetupGluster, a write on one node read on another,
// a server stopped and started again, Heal, and the missed write present on
// the returned brick. Run by hand with an image that has glusterfs-server,
// glusterfs-client, procps and util-linux (the lab's node image does):
//
//	TSYS_GLUSTER_DRILL_IMAGE=tsys-lab/node:TAG go test -tags glusterdrill -run TestGlusterDrill -v ./test/addons/
//
// It makes docker containers, volumes and a network named labaddons-gdrill-*
// and removes them at the end.

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/testenv"
)

const drillPrefix = "labaddons-gdrill-"

type dockerCluster struct{ nodes []Node }

func (d *dockerCluster) Nodes() []Node              { return d.nodes }
func (d *dockerCluster) Subnet() netip.Prefix       { return netip.MustParsePrefix("172.31.251.0/24") }
func (d *dockerCluster) ClusterDNS() netip.Addr     { return netip.MustParseAddr("10.96.0.10") }
func (d *dockerCluster) ContainerdCertsDir() string { return "" }
func (d *dockerCluster) Kubeconfig() string         { return "" }
func (d *dockerCluster) LoadBalancerPool() (netip.Addr, netip.Addr) {
	return netip.Addr{}, netip.Addr{}
}
func (d *dockerCluster) ImportImage(context.Context, string) error {
	return fmt.Errorf("not in the drill")
}
func (d *dockerCluster) Apply(context.Context, string) ([]byte, error) {
	return nil, fmt.Errorf("not in the drill")
}

func (d *dockerCluster) Exec(ctx context.Context, node string, args ...string) ([]byte, error) {
	return docker(ctx, append([]string{"exec", drillPrefix + node}, args...)...)
}

func docker(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.Bytes(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.Bytes(), nil
}

func TestGlusterDrill(t *testing.T) {
	testenv.LookPath(t, "docker")
	image := os.Getenv("TSYS_GLUSTER_DRILL_IMAGE")
	if image == "" {
		testenv.Missing(t, "TSYS_GLUSTER_DRILL_IMAGE names no node image with GlusterFS")
	}
	ctx := t.Context()
	bg := context.WithoutCancel(ctx)
	c := &dockerCluster{}
	for i, name := range []string{"db1", "db2", "db3", "www1"} {
		c.nodes = append(c.nodes, Node{Name: name, Address: netip.AddrFrom4([4]byte{172, 31, 251, byte(11 + i)}), ControlPlane: i < 3})
	}
	cleanup := func() {
		for _, n := range c.nodes {
			docker(bg, "rm", "-f", drillPrefix+n.Name)
			docker(bg, "volume", "rm", drillPrefix+n.Name+"-glusterd", drillPrefix+n.Name+"-bricks")
		}
		docker(bg, "network", "rm", drillPrefix+"net")
	}
	cleanup()
	t.Cleanup(cleanup)
	if _, err := docker(ctx, "network", "create", "--subnet", "172.31.251.0/24", drillPrefix+"net"); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		args := []string{"run", "-d", "--name", drillPrefix + n.Name, "--hostname", n.Name,
			"--network", drillPrefix + "net", "--ip", n.Address.String(),
			"--cap-add=ALL", "--cap-drop=SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
			"--security-opt", "apparmor=unconfined", "--device", "/dev/fuse"}
		if n.ControlPlane {
			args = append(args, "-v", drillPrefix+n.Name+"-glusterd:/var/lib/glusterd", "-v", drillPrefix+n.Name+"-bricks:"+BrickRoot)
		}
		args = append(args, image, "sleep", "infinity")
		if _, err := docker(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	g, err := NewGluster(c.nodes, "/var/lib/tsys-lab/replicated")
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	start := time.Now()
	if err := SetupGluster(ctx, c, g, &progress); err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	t.Logf("SetupGluster (4 nodes, fresh) took %s", time.Since(start).Round(100*time.Millisecond))
	start = time.Now()
	if err := SetupGluster(ctx, c, g, &progress); err != nil {
		t.Fatalf("second SetupGluster: %v", err)
	}
	t.Logf("SetupGluster again (nothing to do) took %s", time.Since(start).Round(100*time.Millisecond))
	info, err := c.Exec(ctx, "db1", g.VolumeInfoCmd()...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"network.ping-timeout: 10", "cluster.heal-timeout: 30", "cluster.quorum-type: auto", "Number of Bricks: 1 x 3 = 3"} {
		if !strings.Contains(string(info), want) {
			t.Errorf("volume info lacks %q:\n%s", want, info)
		}
	}

	write := func(node, file, text string) {
		t.Helper()
		if _, err := c.Exec(ctx, node, "sh", "-c", `printf %s "$2" > "$1"`, "sh", g.MountPath+"/"+file, text); err != nil {
			t.Fatal(err)
		}
	}
	read := func(node, path string) string {
		t.Helper()
		out, err := c.Exec(ctx, node, "cat", path)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	write("www1", "one", "written on www1")
	if got := read("db2", g.MountPath+"/one"); got != "written on www1" {
		t.Fatalf("db2 reads %q through its mount", got)
	}

	// db2 stops (docker stop: its sockets close, so peers notice at once), a
	// write lands on two bricks, db2 starts again with its volumes.
	if _, err := docker(ctx, "stop", "-t", "1", drillPrefix+"db2"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	write("www1", "two", "written while db2 was down")
	t.Logf("write with db2 down took %s", time.Since(start).Round(10*time.Millisecond))
	if _, err := docker(ctx, "start", drillPrefix+"db2"); err != nil {
		t.Fatal(err)
	}
	// What the node's boot script does before its kubelet: the hook Install left.
	start = time.Now()
	if out, err := c.Exec(ctx, "db2", BootScriptPath); err != nil {
		t.Fatalf("boot hook on db2: %v\n%s", err, out)
	}
	if _, err := c.Exec(ctx, "db2", "mountpoint", "-q", g.MountPath); err != nil {
		t.Fatalf("db2 has no GlusterFS mount after its boot hook: %v", err)
	}
	t.Logf("boot hook on db2 (glusterd + mount) took %s", time.Since(start).Round(100*time.Millisecond))
	start = time.Now()
	if _, err := Heal(ctx, c, g, 3*time.Minute, &progress); err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	t.Logf("Heal after db2 returned took %s", time.Since(start).Round(100*time.Millisecond))
	brick := BrickRoot + "/" + g.Volume + "/brick/two"
	for _, s := range g.Servers {
		if got := read(s.Name, brick); got != "written while db2 was down" {
			t.Errorf("%s brick holds %q", s.Name, got)
		}
	}
	if got := read("db2", g.MountPath+"/two"); got != "written while db2 was down" {
		t.Errorf("db2's remount reads %q", got)
	}

	// The local-path helper makes volumes only where GlusterFS is mounted.
	helper := t.TempDir() + "/local-path-helper"
	build := exec.CommandContext(ctx, "go", "build", "-o", helper, "./localpathhelper")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the helper: %v\n%s", err, out)
	}
	if _, err := docker(ctx, "cp", helper, drillPrefix+"www1:/local-path-helper"); err != nil {
		t.Fatal(err)
	}
	env := "LOCAL_PATH_HELPER_REQUIRE_FUSE_UNDER=" + g.MountPath
	vol := g.MountPath + "/pvc-drill_default_data"
	if _, err := docker(ctx, "exec", "-e", env, drillPrefix+"www1", "/local-path-helper", "-p", vol, "-a", "create"); err != nil {
		t.Errorf("helper create on the mounted volume: %v", err)
	}
	if _, err := c.Exec(ctx, "db3", "test", "-d", BrickRoot+"/"+g.Volume+"/brick/pvc-drill_default_data"); err != nil {
		t.Errorf("the volume made on www1 is not on db3's brick: %v", err)
	}
	if _, err := c.Exec(ctx, "www1", "umount", g.MountPath); err != nil {
		t.Fatal(err)
	}
	_, err = docker(ctx, "exec", "-e", env, drillPrefix+"www1", "/local-path-helper", "-p", g.MountPath+"/pvc-local_default_data", "-a", "create")
	if err == nil || !strings.Contains(err.Error(), "not a FUSE (GlusterFS) mount") {
		t.Errorf("helper create with GlusterFS unmounted: %v", err)
	}
	t.Logf("progress:\n%s", progress.String())
}
