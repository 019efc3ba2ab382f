package addons

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// GlusterFS replica-3 volume on db1-3, mounted on every node at the
// `replicated` class's shared path (lab-facts: GlusterFS section).
//
// What the node containers must provide (the lab area's part):
//   - glusterfs-server and glusterfs-client in the node image;
//   - --device /dev/fuse and CAP_SYS_ADMIN on every node (the FUSE mount,
//     and setfattr trusted.* on the bricks);
//   - /var/lib/glusterd (peer and volume state) and BrickRoot (the brick) on
//     db1-3 kept and lost together: both in the container's writable layer
//     (they survive docker stop/start, die with docker rm), or both on named
//     volumes removed together with the node's other volumes. A brick kept
//     without its glusterd state makes the next `volume create` fail with
//     "... is already part of a volume";
//   - the node's boot script running BootScriptPath, if present, before the
//     kubelet (see BootScript).

// Defaults of the replicated volume.
const (
	GlusterVolume = "replicated"
	// BrickRoot is the named volume's mount point on db1-3; the brick is a
	// directory inside it, so an unmounted volume never silently becomes a
	// brick on the container's root filesystem.
	BrickRoot = "/srv/gluster"
	// PingTimeoutSeconds is network.ping-timeout. The default, 42 s, stalls
	// every write for 60-64 s when a server freezes or is cut off (measured
	// here: detection takes 1-2 x ping-timeout). 5 s gave 5-10 s, but this
	// 2-core machine is shared by parallel builds (load averages near 20 were
	// seen), and a server wrongly declared dead costs a reconnect and a heal of
	// everything written meanwhile. 10 s bounds a write stall to 10-20 s while
	// staying far above any scheduling delay seen on this machine.
	PingTimeoutSeconds = 10
	// HealTimeoutSeconds is cluster.heal-timeout, how often the self-heal
	// daemon looks for work on its own (default 600 s: after a node froze and
	// came back, nothing healed for 10 minutes). Heal also triggers it at once.
	HealTimeoutSeconds = 30
)

// Gluster describes the volume and where it is mounted.
type Gluster struct {
	Volume string
	// Servers are the three brick hosts (db1-3), in order; all three names
	// appear in every mount's volfile server list.
	Servers []Node
	// Clients are the nodes that mount the volume (all six).
	Clients []Node
	// MountPath is the same path on every client: local-path-provisioner's
	// sharedFileSystemPath for the `replicated` class.
	MountPath string
}

// NewGluster lays the volume over the cluster's control-plane nodes and
// mounts it on every node at mountPath.
func NewGluster(nodes []Node, mountPath string) (Gluster, error) {
	g := Gluster{Volume: GlusterVolume, Servers: controlPlane(nodes), Clients: nodes, MountPath: mountPath}
	if len(g.Servers) != 3 {
		return g, fmt.Errorf("a replica-3 GlusterFS volume needs exactly 3 control-plane nodes, the lab has %d", len(g.Servers))
	}
	for _, n := range nodes {
		if !n.Address.IsValid() || n.Name == "" {
			return g, fmt.Errorf("node %q has no name or address", n.Name)
		}
	}
	if !strings.HasPrefix(mountPath, "/") || strings.Count(mountPath, "/") < 2 {
		return g, fmt.Errorf("mount path %q must be absolute and not directly under /", mountPath)
	}
	return g, nil
}

// Brick is a server's brick path.
func (g Gluster) Brick(server Node) string {
	return server.Address.String() + ":" + BrickRoot + "/" + g.Volume + "/brick"
}

func gluster(args ...string) []string {
	return append([]string{"gluster", "--mode=script"}, args...)
}

// StartGlusterdCmd starts glusterd in a node unless it runs (it daemonizes).
func StartGlusterdCmd() []string {
	return []string{"sh", "-c", "pgrep -x glusterd >/dev/null || glusterd --log-level=WARNING"}
}

// PeerProbeCmd adds a server to db1's trusted pool (idempotent in GlusterFS).
func PeerProbeCmd(server Node) []string { return gluster("peer", "probe", server.Address.String()) }

// PeerStatusCmd lists the other servers and their state.
func PeerStatusCmd() []string { return gluster("peer", "status") }

// BrickDirCmd creates the brick directory inside the named volume.
func (g Gluster) BrickDirCmd() []string {
	return []string{"mkdir", "-p", BrickRoot + "/" + g.Volume + "/brick"}
}

// VolumeInfoCmd shows the volume; it fails when the volume does not exist.
func (g Gluster) VolumeInfoCmd() []string { return gluster("volume", "info", g.Volume) }

// CreateCmd creates the replica-3 volume. `force` is needed because GlusterFS
// refuses a brick it believes is on the root filesystem, and inside a
// container it cannot tell the named volume from the container's own layer.
func (g Gluster) CreateCmd() []string {
	args := []string{"volume", "create", g.Volume, "replica", "3", "transport", "tcp"}
	for _, s := range g.Servers {
		args = append(args, g.Brick(s))
	}
	return gluster(append(args, "force")...)
}

// SetCmds tune the volume (reasons at the constants).
func (g Gluster) SetCmds() [][]string {
	return [][]string{
		gluster("volume", "set", g.Volume, "network.ping-timeout", strconv.Itoa(PingTimeoutSeconds)),
		gluster("volume", "set", g.Volume, "cluster.heal-timeout", strconv.Itoa(HealTimeoutSeconds)),
		// Writes need 2 of 3 bricks: a lone brick never takes writes the other
		// two miss (split brain). This is GlusterFS' default for replica 3,
		// set so it is visible here.
		gluster("volume", "set", g.Volume, "cluster.quorum-type", "auto"),
	}
}

// StartCmd starts the volume; with force it also restarts any brick process
// that is down on a started volume (used after a server returns).
func (g Gluster) StartCmd(force bool) []string {
	args := []string{"volume", "start", g.Volume}
	if force {
		args = append(args, "force")
	}
	return gluster(args...)
}

// HealCmd starts a heal of every file that needs one.
func (g Gluster) HealCmd() []string { return gluster("volume", "heal", g.Volume) }

// HealInfoCmd lists, per brick, its state and the entries still to heal.
func (g Gluster) HealInfoCmd() []string { return gluster("volume", "heal", g.Volume, "info") }

// mountScript mounts the volume unless a working mount is there. A mount
// that /proc/mounts lists but whose stat fails is stale: its FUSE client is
// gone or cut off, and every access answers ENOTCONN ("Transport endpoint is
// not connected"). It is lazily unmounted (umount -l: the kernel detaches it
// even while pods hold files in it) and made again, then checked with stat.
// A stale mount point fails `mountpoint` and `mkdir -p` too, so the check
// reads /proc/mounts instead. stat is bounded by timeout: a client waiting on
// a frozen server hangs rather than fails. Arguments: $1 primary server, $2
// backup servers (colon-separated), $3 volume, $4 mount path.
const mountScript = `set -e
n=0
while grep -qsF " $4 fuse.glusterfs " /proc/mounts; do
	if timeout 30 stat "$4" >/dev/null 2>&1 && timeout 30 stat -f "$4" >/dev/null 2>&1; then exit 0; fi
	echo "stale GlusterFS mount at $4: $(timeout 5 stat "$4" 2>&1 | tail -n 1); unmounting it (lazy)" >&2
	umount -l "$4"
	n=$((n+1))
	if [ "$n" -ge 5 ]; then echo "$4 is still mounted after $n lazy unmounts" >&2; exit 1; fi
done
mkdir -p "$4"
mount -t glusterfs -o backup-volfile-servers="$2" "$1:/$3" "$4"
if ! err=$(timeout 30 stat "$4" 2>&1 >/dev/null); then echo "mounted $1:/$3 at $4 but stat fails: $err" >&2; exit 1; fi`

// checkMountScript prints one line about the mount at $1: "ok", "missing"
// (not a GlusterFS mount) or "stale: " and the error stat gave.
const checkMountScript = `if ! grep -qsF " $1 fuse.glusterfs " /proc/mounts; then echo missing; exit 0; fi
if err=$(timeout 30 stat "$1" 2>&1 >/dev/null) && err=$(timeout 30 stat -f "$1" 2>&1 >/dev/null); then echo ok; exit 0; fi
[ -n "$err" ] || err="stat did not answer within 30 s"
echo "stale: $err"`

// CheckMountCmd prints the state of the volume's mount on a client (see
// ParseMountCheck).
func (g Gluster) CheckMountCmd() []string {
	return []string{"sh", "-c", checkMountScript, "sh", g.MountPath}
}

// MountState is what a client's mount of the volume looks like.
type MountState string

// The states CheckMountCmd reports.
const (
	MountOK      MountState = "ok"
	MountMissing MountState = "missing"
	// MountStale: listed as mounted, but stat fails (ENOTCONN when the FUSE
	// client died or lost every server) or hangs.
	MountStale MountState = "stale"
)

// ParseMountCheck reads CheckMountCmd's output: the state and, when stale,
// the error stat gave.
func ParseMountCheck(out string) (MountState, string, error) {
	line := strings.TrimSpace(out)
	switch {
	case line == string(MountOK):
		return MountOK, "", nil
	case line == string(MountMissing):
		return MountMissing, "", nil
	case strings.HasPrefix(line, string(MountStale)+":"):
		detail := strings.TrimSpace(strings.TrimPrefix(line, string(MountStale)+":"))
		return MountStale, strings.Join(strings.Fields(detail), " "), nil
	}
	return "", "", fmt.Errorf("unexpected mount check output %q (want ok, missing or stale: ERROR)", firstLine(out))
}

// MountRepair records a client whose mount was not working and was made again.
type MountRepair struct {
	Node  string
	State MountState // MountMissing or MountStale, before the repair
	// Detail is stat's error for a stale mount.
	Detail string
}

func (r MountRepair) String() string {
	if r.State == MountStale {
		return fmt.Sprintf("%s: stale (%s), unmounted lazily and mounted again", r.Node, r.Detail)
	}
	return fmt.Sprintf("%s: %s, mounted", r.Node, r.State)
}

// RepairMounts checks the volume's mount on every client and makes it again
// where it is missing or stale, then checks it once more. It returns what it
// repaired. A pod started before the repair still holds the stale mount
// under its volume (its bind mount points into the old one); a pod started
// after sees the new one.
func RepairMounts(ctx context.Context, c Cluster, g Gluster, progress io.Writer) ([]MountRepair, error) {
	var repairs []MountRepair
	for i, n := range g.Clients {
		st, detail, err := checkMount(ctx, c, g, n.Name)
		if err != nil {
			return repairs, err
		}
		if st == MountOK {
			continue
		}
		r := MountRepair{Node: n.Name, State: st, Detail: detail}
		if out, err := c.Exec(ctx, n.Name, g.MountCmd(i)...); err != nil {
			return repairs, fmt.Errorf("mounting GlusterFS volume %s at %s on %s (was %s %s; needs glusterfs-client and /dev/fuse in the node): %w (%s)",
				g.Volume, g.MountPath, n.Name, st, detail, err, strings.TrimSpace(string(out)))
		}
		st, detail, err = checkMount(ctx, c, g, n.Name)
		if err != nil {
			return repairs, err
		}
		if st != MountOK {
			return repairs, fmt.Errorf("GlusterFS mount at %s on %s is %s %s right after mounting it again; see /var/log/glusterfs/ on %s",
				g.MountPath, n.Name, st, detail, n.Name)
		}
		fmt.Fprintf(progress, "GlusterFS mount on %s\n", r)
		repairs = append(repairs, r)
	}
	return repairs, nil
}

func checkMount(ctx context.Context, c Cluster, g Gluster, node string) (MountState, string, error) {
	out, err := c.Exec(ctx, node, g.CheckMountCmd()...)
	if err != nil {
		return "", "", fmt.Errorf("checking the GlusterFS mount at %s on %s: %w (%s)", g.MountPath, node, err, firstLine(string(out)))
	}
	st, detail, err := ParseMountCheck(string(out))
	if err != nil {
		return "", "", fmt.Errorf("checking the GlusterFS mount at %s on %s: %w", g.MountPath, node, err)
	}
	return st, detail, nil
}

// MountCmd mounts the volume on the i-th client. The primary volfile server
// rotates over db1-3 so no single server is every client's first choice, and
// backup-volfile-servers names the other two: a new mount naming a dead
// primary then succeeds in seconds instead of failing after 42 s.
func (g Gluster) MountCmd(i int) []string {
	primary := g.Servers[i%len(g.Servers)]
	var backups []string
	for j := 1; j < len(g.Servers); j++ {
		backups = append(backups, g.Servers[(i+j)%len(g.Servers)].Address.String())
	}
	return []string{"sh", "-c", mountScript, "sh", primary.Address.String(), strings.Join(backups, ":"), g.Volume, g.MountPath}
}

// BootScriptPath is where Install leaves each node's GlusterFS boot hook.
// The node's boot script runs it, if present, before starting the kubelet:
//
//	[ -x /etc/tsys-lab/gluster-boot.sh ] && /etc/tsys-lab/gluster-boot.sh
//
// so a node that comes back never starts pods on a `replicated` volume whose
// GlusterFS mount is missing (the hostPath would be a plain local folder).
const BootScriptPath = "/etc/tsys-lab/gluster-boot.sh"

// BootScript is the i-th client's boot hook: glusterd on a server, then the
// mount, retried for up to a minute (the other servers may be booting too).
// It exits non-zero if the volume could not be mounted, for the boot log.
func (g Gluster) BootScript(i int) string {
	cmd := g.MountCmd(i)
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Written by test/addons (GlusterFS at boot, before the kubelet).\n")
	for _, s := range g.Servers {
		if s.Name == g.Clients[i].Name {
			b.WriteString(StartGlusterdCmd()[2] + "\n")
		}
	}
	fmt.Fprintf(&b, "mount_volume() {\n%s\n}\n", mountScript)
	fmt.Fprintf(&b, "for _ in $(seq 1 60); do\n\t( mount_volume %s %s %s %s ) 2>/dev/null && exit 0\n\tsleep 1\ndone\n", cmd[4], cmd[5], cmd[6], cmd[7])
	fmt.Fprintf(&b, "echo \"gluster-boot: could not mount %s:/%s at %s within 60 s\" >&2\nexit 1\n", cmd[4], cmd[6], cmd[7])
	return b.String()
}

// BootScriptCmd writes the i-th client's boot hook into its node.
func (g Gluster) BootScriptCmd(i int) []string {
	return []string{"sh", "-c", `mkdir -p "$(dirname "$1")" && printf '%s' "$2" > "$1" && chmod 755 "$1"`, "sh", BootScriptPath, g.BootScript(i)}
}

// ConnectedPeers counts "Peer in Cluster (Connected)" in `gluster peer status`.
func ConnectedPeers(out string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "State: Peer in Cluster (Connected)" {
			n++
		}
	}
	return n
}

// VolumeStatus returns the "Status:" of `gluster volume info` (Created,
// Started, Stopped), or "" if the output has none.
func VolumeStatus(out string) string {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Status: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// HealState is what `gluster volume heal VOL info` says.
type HealState struct {
	// Bricks lists every brick; Connected those reachable.
	Bricks, Connected int
	// Pending sums the entries still to heal over the connected bricks.
	Pending int
}

// Healed reports whether all want bricks are up and nothing is left to heal.
func (h HealState) Healed(want int) bool {
	return h.Bricks == want && h.Connected == want && h.Pending == 0
}

// ParseHealInfo reads `gluster volume heal VOL info`: blocks of
// "Brick HOST:PATH", "Status: ...", "Number of entries: N|-".
func ParseHealInfo(out string) (HealState, error) {
	var h HealState
	sc := bufio.NewScanner(strings.NewReader(out))
	inBrick, connected, hasStatus, hasCount := false, false, false, false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "Brick "):
			if inBrick && connected && !hasCount {
				return h, fmt.Errorf("brick %d is connected but has no entry count", h.Bricks)
			}
			h.Bricks++
			inBrick, connected, hasStatus, hasCount = true, false, false, false
		case strings.HasPrefix(line, "Status: ") && inBrick:
			if hasStatus {
				return h, fmt.Errorf("brick %d has two Status lines", h.Bricks)
			}
			hasStatus = true
			connected = strings.TrimPrefix(line, "Status: ") == "Connected"
			if connected {
				h.Connected++
			}
		case strings.HasPrefix(line, "Number of entries: ") && inBrick:
			if hasCount {
				return h, fmt.Errorf("brick %d has two entry counts", h.Bricks)
			}
			hasCount = true
			v := strings.TrimPrefix(line, "Number of entries: ")
			if v == "-" {
				if connected {
					return h, fmt.Errorf("brick %d is connected but lists no entry count", h.Bricks)
				}
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return h, fmt.Errorf("brick %d: entry count %q is not a number", h.Bricks, v)
			}
			if connected {
				h.Pending += n
			}
		}
	}
	if err := sc.Err(); err != nil {
		return h, err
	}
	if inBrick && connected && !hasCount {
		return h, fmt.Errorf("brick %d is connected but has no entry count", h.Bricks)
	}
	if h.Bricks == 0 {
		return h, fmt.Errorf("no brick in heal info output %q", firstLine(out))
	}
	return h, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if len(line) > 200 {
		line = line[:200]
	}
	return line
}

// SetupGluster makes the volume and mounts it everywhere. Every step is
// idempotent: running it on a lab where it ran before changes nothing.
func SetupGluster(ctx context.Context, c Cluster, g Gluster, progress io.Writer) error {
	first := g.Servers[0]
	for _, s := range g.Servers {
		if _, err := c.Exec(ctx, s.Name, StartGlusterdCmd()...); err != nil {
			return fmt.Errorf("starting glusterd on %s (the node image needs glusterfs-server): %w", s.Name, err)
		}
	}
	for _, s := range g.Servers {
		// glusterd answers its CLI a moment after it starts.
		if err := waitFor(ctx, time.Minute, "glusterd on "+s.Name+" to answer", func() (bool, error) {
			_, err := c.Exec(ctx, s.Name, PeerStatusCmd()...)
			return err == nil, nil
		}); err != nil {
			return err
		}
	}
	for _, s := range g.Servers[1:] {
		if out, err := c.Exec(ctx, first.Name, PeerProbeCmd(s)...); err != nil {
			return fmt.Errorf("gluster peer probe %s from %s: %w (%s)", s.Address, first.Name, err, firstLine(string(out)))
		}
	}
	want := len(g.Servers) - 1
	if err := waitFor(ctx, time.Minute, fmt.Sprintf("%d GlusterFS peers connected on %s", want, first.Name), func() (bool, error) {
		out, err := c.Exec(ctx, first.Name, PeerStatusCmd()...)
		return err == nil && ConnectedPeers(string(out)) == want, nil
	}); err != nil {
		return err
	}
	for _, s := range g.Servers {
		if _, err := c.Exec(ctx, s.Name, g.BrickDirCmd()...); err != nil {
			return fmt.Errorf("creating the brick directory on %s: %w", s.Name, err)
		}
	}
	out, err := c.Exec(ctx, first.Name, g.VolumeInfoCmd()...)
	if err != nil {
		fmt.Fprintf(progress, "creating GlusterFS volume %s (replica 3 over %s)\n", g.Volume, serverNames(g.Servers))
		if out, err := c.Exec(ctx, first.Name, g.CreateCmd()...); err != nil {
			return fmt.Errorf("creating GlusterFS volume %s on %s: %w (%s)", g.Volume, first.Name, err, firstLine(string(out)))
		}
		out, err = c.Exec(ctx, first.Name, g.VolumeInfoCmd()...)
		if err != nil {
			return fmt.Errorf("GlusterFS volume %s missing right after creating it: %w", g.Volume, err)
		}
	}
	for _, cmd := range g.SetCmds() {
		if out, err := c.Exec(ctx, first.Name, cmd...); err != nil {
			return fmt.Errorf("%s on %s: %w (%s)", strings.Join(cmd, " "), first.Name, err, firstLine(string(out)))
		}
	}
	if VolumeStatus(string(out)) != "Started" {
		if out, err := c.Exec(ctx, first.Name, g.StartCmd(false)...); err != nil {
			return fmt.Errorf("starting GlusterFS volume %s: %w (%s)", g.Volume, err, firstLine(string(out)))
		}
	}
	if err := waitHealed(ctx, c, g, first.Name, 2*time.Minute); err != nil {
		return err
	}
	return MountAll(ctx, c, g, progress)
}

// MountAll leaves the boot hook (BootScriptPath) that mounts the volume at
// each boot on every client, and mounts it now wherever it is missing or
// stale (RepairMounts).
func MountAll(ctx context.Context, c Cluster, g Gluster, progress io.Writer) error {
	for i, n := range g.Clients {
		if out, err := c.Exec(ctx, n.Name, g.BootScriptCmd(i)...); err != nil {
			return fmt.Errorf("writing %s on %s: %w (%s)", BootScriptPath, n.Name, err, firstLine(string(out)))
		}
	}
	if _, err := RepairMounts(ctx, c, g, progress); err != nil {
		return err
	}
	fmt.Fprintf(progress, "GlusterFS volume %s mounted at %s on %d nodes\n", g.Volume, g.MountPath, len(g.Clients))
	return nil
}

// Heal brings the volume back to three healthy copies after a server
// returned (stopped, paused or cut off before): it starts glusterd where it
// is missing, restarts missing brick processes, triggers the self-heal at
// once instead of waiting for the daemon's next crawl, waits until nothing is
// left to heal, then checks the mount on every client and makes it again
// where it went stale (RepairMounts), returning those repairs.
func Heal(ctx context.Context, c Cluster, g Gluster, timeout time.Duration, progress io.Writer) ([]MountRepair, error) {
	for _, s := range g.Servers {
		if _, err := c.Exec(ctx, s.Name, StartGlusterdCmd()...); err != nil {
			return nil, fmt.Errorf("starting glusterd on %s: %w", s.Name, err)
		}
	}
	// Any server can run the volume commands; use the first that answers.
	var admin string
	if err := waitFor(ctx, time.Minute, "a GlusterFS server to answer", func() (bool, error) {
		for _, s := range g.Servers {
			if _, err := c.Exec(ctx, s.Name, PeerStatusCmd()...); err == nil {
				admin = s.Name
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return nil, err
	}
	if out, err := c.Exec(ctx, admin, g.StartCmd(true)...); err != nil {
		return nil, fmt.Errorf("restarting GlusterFS bricks of %s: %w (%s)", g.Volume, err, firstLine(string(out)))
	}
	start := time.Now()
	if err := waitFor(ctx, timeout, "all bricks of "+g.Volume+" connected", func() (bool, error) {
		out, err := c.Exec(ctx, admin, g.HealInfoCmd()...)
		if err != nil {
			return false, nil
		}
		h, err := ParseHealInfo(string(out))
		return err == nil && h.Connected == len(g.Servers), nil
	}); err != nil {
		return nil, err
	}
	// The returned server's self-heal daemon starts a moment after its brick:
	// until then the heal launch fails ("Glusterd Syncop Mgmt brick op 'Heal'
	// failed"), so it is retried.
	var healOut []byte
	if err := waitFor(ctx, timeout, "the self-heal daemons to start a heal of "+g.Volume, func() (bool, error) {
		out, err := c.Exec(ctx, admin, g.HealCmd()...)
		healOut = out
		return err == nil, nil
	}); err != nil {
		return nil, fmt.Errorf("%w; last answer: %s", err, strings.TrimSpace(string(healOut)))
	}
	if err := waitHealed(ctx, c, g, admin, timeout); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "GlusterFS volume %s healed in %s\n", g.Volume, time.Since(start).Round(100*time.Millisecond))
	return RepairMounts(ctx, c, g, progress)
}

func waitHealed(ctx context.Context, c Cluster, g Gluster, admin string, timeout time.Duration) error {
	var last string
	err := waitFor(ctx, timeout, "GlusterFS volume "+g.Volume+" healthy with nothing to heal", func() (bool, error) {
		out, err := c.Exec(ctx, admin, g.HealInfoCmd()...)
		last = string(out)
		if err != nil {
			return false, nil
		}
		h, err := ParseHealInfo(last)
		return err == nil && h.Healed(len(g.Servers)), nil
	})
	if err != nil {
		return fmt.Errorf("%w; last `gluster volume heal %s info`: %s", err, g.Volume, strings.TrimSpace(last))
	}
	return nil
}

func serverNames(nodes []Node) string {
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	return strings.Join(names, ", ")
}

// waitFor polls cond every 500 ms until it is true, it errs, ctx ends or
// timeout passes; the error names what was awaited.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: gave up after %s", what, timeout)
		case <-tick.C:
		}
	}
}
