package addons

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func labNodes() []Node {
	var nodes []Node
	for i, name := range []string{"db1", "db2", "db3", "www1", "www2", "www3"} {
		nodes = append(nodes, Node{Name: name, Address: netip.AddrFrom4([4]byte{172, 30, 0, byte(11 + i)}), ControlPlane: i < 3})
	}
	return nodes
}

func labGluster(t *testing.T) Gluster {
	t.Helper()
	g, err := NewGluster(labNodes(), "/var/lib/tsys-lab/replicated")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGlusterCreateCmd(t *testing.T) {
	g := labGluster(t)
	want := "gluster --mode=script volume create replicated replica 3 transport tcp " +
		"172.30.0.11:/srv/gluster/replicated/brick 172.30.0.12:/srv/gluster/replicated/brick 172.30.0.13:/srv/gluster/replicated/brick force"
	if got := strings.Join(g.CreateCmd(), " "); got != want {
		t.Errorf("create:\n got %s\nwant %s", got, want)
	}
	var sets []string
	for _, c := range g.SetCmds() {
		sets = append(sets, strings.Join(c[4:], " "))
	}
	for _, want := range []string{"replicated network.ping-timeout 10", "replicated cluster.heal-timeout 30", "replicated cluster.quorum-type auto"} {
		if !slices.Contains(sets, want) {
			t.Errorf("volume set commands %q lack %q", sets, want)
		}
	}
	if got := strings.Join(g.StartCmd(true), " "); got != "gluster --mode=script volume start replicated force" {
		t.Errorf("start force: %s", got)
	}
}

func TestNewGlusterNeedsThreeServers(t *testing.T) {
	nodes := labNodes()
	nodes[2].ControlPlane = false
	if _, err := NewGluster(nodes, "/var/lib/tsys-lab/replicated"); err == nil || !strings.Contains(err.Error(), "exactly 3") {
		t.Errorf("two servers accepted: %v", err)
	}
	if _, err := NewGluster(labNodes(), "/replicated"); err == nil {
		t.Error("a mount path directly under / was accepted")
	}
}

// Every client names all three servers, its primary rotating, so a new mount
// works with any one server down and no server is everyone's first choice.
func TestGlusterMountCmdRotatesServers(t *testing.T) {
	g := labGluster(t)
	primaries := map[string]int{}
	for i := range g.Clients {
		cmd := g.MountCmd(i)
		if cmd[0] != "sh" || cmd[2] != mountScript {
			t.Fatalf("mount command %q does not run the mount script", cmd)
		}
		primary, backups, vol, path := cmd[4], cmd[5], cmd[6], cmd[7]
		all := append([]string{primary}, strings.Split(backups, ":")...)
		slices.Sort(all)
		if !slices.Equal(all, []string{"172.30.0.11", "172.30.0.12", "172.30.0.13"}) {
			t.Errorf("client %d names servers %v, want all three once", i, all)
		}
		if vol != "replicated" || path != "/var/lib/tsys-lab/replicated" {
			t.Errorf("client %d mounts %s at %s", i, vol, path)
		}
		primaries[primary]++
	}
	for s, n := range primaries {
		if n != 2 {
			t.Errorf("server %s is primary for %d clients, want 2 each (%v)", s, n, primaries)
		}
	}
	if !strings.Contains(mountScript, `backup-volfile-servers="$2"`) {
		t.Error("mount script does not pass backup-volfile-servers")
	}
}

const healInfoHealthy = `Brick 172.30.0.11:/srv/gluster/replicated/brick
Status: Connected
Number of entries: 0

Brick 172.30.0.12:/srv/gluster/replicated/brick
Status: Connected
Number of entries: 0

Brick 172.30.0.13:/srv/gluster/replicated/brick
Status: Connected
Number of entries: 0
`

const healInfoOneDown = `Brick 172.30.0.11:/srv/gluster/replicated/brick
/pvc-1_default_data/file
/
Status: Connected
Number of entries: 2

Brick 172.30.0.12:/srv/gluster/replicated/brick
Status: Transport endpoint is not connected
Number of entries: -

Brick 172.30.0.13:/srv/gluster/replicated/brick
/pvc-1_default_data/file
Status: Connected
Number of entries: 1
`

func TestParseHealInfo(t *testing.T) {
	h, err := ParseHealInfo(healInfoHealthy)
	if err != nil || h != (HealState{Bricks: 3, Connected: 3}) || !h.Healed(3) {
		t.Errorf("healthy: %+v %v", h, err)
	}
	h, err = ParseHealInfo(healInfoOneDown)
	if err != nil || h != (HealState{Bricks: 3, Connected: 2, Pending: 3}) || h.Healed(3) {
		t.Errorf("one down: %+v %v", h, err)
	}
	for _, bad := range []string{
		"Volume replicated does not exist\n",
		"Brick a:/b\nStatus: Connected\nNumber of entries: x\n",
		"Brick a:/b\nStatus: Connected\nNumber of entries: -\n",
		"Brick a:/b\nStatus: Connected\n",
		"Brick a:/b\nStatus: Connected\nStatus: Connected\nNumber of entries: 0\n",
	} {
		if h, err := ParseHealInfo(bad); err == nil {
			t.Errorf("ParseHealInfo(%q) = %+v, want an error", bad, h)
		}
	}
}

func FuzzParseHealInfo(f *testing.F) {
	f.Add(healInfoHealthy)
	f.Add(healInfoOneDown)
	f.Add("Brick x\nNumber of entries: 99999999999999999999\n")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHealInfo(s)
		if err != nil {
			return
		}
		if h.Connected > h.Bricks || h.Pending < 0 || h.Bricks == 0 {
			t.Errorf("ParseHealInfo(%q) = %+v", s, h)
		}
	})
}

func TestConnectedPeersAndVolumeStatus(t *testing.T) {
	peers := `Number of Peers: 2

Hostname: 172.30.0.12
Uuid: 5f8b2c36-8a4e-4c53-9a55-0a7a1d0c9f11
State: Peer in Cluster (Connected)

Hostname: 172.30.0.13
Uuid: 8c1d7b0e-53f3-4d0a-bb2e-6f0b9e3c2a44
State: Peer in Cluster (Disconnected)
`
	if n := ConnectedPeers(peers); n != 1 {
		t.Errorf("ConnectedPeers = %d, want 1", n)
	}
	info := "\nVolume Name: replicated\nType: Replicate\nVolume ID: 1\nStatus: Created\nSnapshot Count: 0\n"
	if s := VolumeStatus(info); s != "Created" {
		t.Errorf("VolumeStatus = %q, want Created", s)
	}
	if s := VolumeStatus("Volume replicated does not exist"); s != "" {
		t.Errorf("VolumeStatus of a missing volume = %q", s)
	}
}

func FuzzGlusterOutputs(f *testing.F) {
	f.Add("State: Peer in Cluster (Connected)\nStatus: Started\n")
	f.Add("stale: " + staleStat + "\n")
	f.Fuzz(func(t *testing.T, s string) {
		if st, _, err := ParseMountCheck(s); err == nil && st != MountOK && st != MountMissing && st != MountStale {
			t.Errorf("ParseMountCheck(%q) = %q without an error", s, st)
		}
		if n := ConnectedPeers(s); n < 0 || n > strings.Count(s, "Connected") {
			t.Errorf("ConnectedPeers(%q) = %d", s, n)
		}
		if st := VolumeStatus(s); st != "" && !strings.Contains(s, st) {
			t.Errorf("VolumeStatus(%q) = %q, not in the input", s, st)
		}
	})
}

// scriptedCluster answers gluster commands as a lab whose volume state is
// given, recording what ran where. It checks the order and idempotence of
// SetupGluster's commands; the commands themselves run for real only on the lab.
type scriptedCluster struct {
	mu        sync.Mutex
	volume    string // "", "Created", "Started"
	ran       []string
	failMount string
	certsDir  string
	// mounts is each node's mount check answer ("missing" when unset);
	// a mount makes it "ok", or stillStale's answer on that node.
	mounts     map[string]string
	stillStale string
}

func (s *scriptedCluster) Nodes() []Node              { return labNodes() }
func (s *scriptedCluster) Subnet() netip.Prefix       { return netip.MustParsePrefix("172.30.0.0/24") }
func (s *scriptedCluster) ClusterDNS() netip.Addr     { return netip.MustParseAddr("10.96.0.10") }
func (s *scriptedCluster) ContainerdCertsDir() string { return s.certsDir }
func (s *scriptedCluster) Kubeconfig() string         { return "/nonexistent/kubeconfig" }
func (s *scriptedCluster) LoadBalancerPool() (netip.Addr, netip.Addr) {
	return netip.Addr{}, netip.Addr{}
}
func (s *scriptedCluster) Apply(context.Context, string) ([]byte, error) {
	return nil, fmt.Errorf("not in this test")
}
func (s *scriptedCluster) ImportImage(_ context.Context, tar string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ran = append(s.ran, "import "+tar)
	return nil
}

func (s *scriptedCluster) Exec(_ context.Context, node string, args ...string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := strings.Join(args, " ")
	if args[0] == "sh" && len(args) > 4 {
		line = "sh " + strings.Join(args[4:], " ")
	}
	s.ran = append(s.ran, node+": "+line)
	switch {
	case strings.HasPrefix(line, "gluster --mode=script peer status"):
		return []byte("Number of Peers: 2\nState: Peer in Cluster (Connected)\nState: Peer in Cluster (Connected)\n"), nil
	case strings.HasPrefix(line, "gluster --mode=script volume info"):
		if s.volume == "" {
			return []byte("Volume replicated does not exist"), fmt.Errorf("exit status 1")
		}
		return []byte("Volume Name: replicated\nStatus: " + s.volume + "\n"), nil
	case strings.HasPrefix(line, "gluster --mode=script volume create"):
		s.volume = "Created"
	case strings.HasPrefix(line, "gluster --mode=script volume start"):
		s.volume = "Started"
	case strings.HasPrefix(line, "gluster --mode=script volume heal replicated info"):
		return []byte(healInfoHealthy), nil
	case strings.HasPrefix(line, "sh 172.") && node == s.failMount:
		return []byte("mount: unknown filesystem type 'glusterfs'"), fmt.Errorf("exit status 32")
	case strings.HasPrefix(line, "sh 172."):
		if s.mounts == nil {
			s.mounts = map[string]string{}
		}
		s.mounts[node] = "ok"
		if node == s.stillStale {
			s.mounts[node] = "stale: stat did not answer within 30 s"
		}
	case line == "sh /var/lib/tsys-lab/replicated":
		if m, ok := s.mounts[node]; ok {
			return []byte(m + "\n"), nil
		}
		return []byte("missing\n"), nil
	}
	return nil, nil
}

func (s *scriptedCluster) count(prefix string) int {
	n := 0
	for _, r := range s.ran {
		if strings.Contains(r, prefix) {
			n++
		}
	}
	return n
}

func TestSetupGlusterIdempotent(t *testing.T) {
	c := &scriptedCluster{}
	g := labGluster(t)
	if err := SetupGluster(t.Context(), c, g, io.Discard); err != nil {
		t.Fatal(err)
	}
	if c.count("volume create") != 1 || c.count("volume start") != 1 || c.count("peer probe") != 2 {
		t.Errorf("first setup ran:\n%s", strings.Join(c.ran, "\n"))
	}
	if n := c.count(": sh 172.30.0.1"); n != 6 {
		t.Errorf("%d mounts, want one per node:\n%s", n, strings.Join(c.ran, "\n"))
	}
	c.ran = nil
	if err := SetupGluster(t.Context(), c, g, io.Discard); err != nil {
		t.Fatal(err)
	}
	if c.count("volume create") != 0 || c.count("volume start") != 0 {
		t.Errorf("second setup re-created or re-started the volume:\n%s", strings.Join(c.ran, "\n"))
	}
	if n := c.count(": sh 172.30.0.1"); n != 0 {
		t.Errorf("the second setup mounted again %d times although every mount works:\n%s", n, strings.Join(c.ran, "\n"))
	}
	c.failMount = "www2"
	delete(c.mounts, "www2") // lost its mount
	err := SetupGluster(t.Context(), c, g, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "www2") || !strings.Contains(err.Error(), "unknown filesystem type") {
		t.Errorf("a failed mount on www2 gave %v; want the node and mount's message", err)
	}
}

func TestHealRestartsBricksAndTriggersHeal(t *testing.T) {
	c := &scriptedCluster{volume: "Started"}
	g := labGluster(t)
	if _, err := Heal(t.Context(), c, g, 5*time.Second, io.Discard); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range c.ran {
		for _, key := range []string{"volume start replicated force", "volume heal replicated info", "volume heal replicated"} {
			if strings.HasSuffix(r, key) {
				order = append(order, key)
				break
			}
		}
	}
	if len(order) < 3 || order[0] != "volume start replicated force" || !slices.Contains(order, "volume heal replicated") {
		t.Errorf("heal ran %q; want bricks restarted, then heal triggered and awaited", order)
	}
}

const staleStat = "stat: cannot statx '/var/lib/tsys-lab/replicated': Transport endpoint is not connected"

// After a drill, Heal checks the mount on every node and makes the stale
// one again (and only it), then checks it again.
func TestHealRepairsStaleMounts(t *testing.T) {
	c := &scriptedCluster{volume: "Started", mounts: map[string]string{}}
	g := labGluster(t)
	for _, n := range g.Clients {
		c.mounts[n.Name] = "ok"
	}
	c.mounts["www2"] = "stale: " + staleStat
	var progress strings.Builder
	repairs, err := Heal(t.Context(), c, g, 5*time.Second, &progress)
	if err != nil {
		t.Fatal(err)
	}
	want := []MountRepair{{Node: "www2", State: MountStale, Detail: staleStat}}
	if !slices.Equal(repairs, want) {
		t.Fatalf("repairs %+v, want %+v", repairs, want)
	}
	if n := c.count(": sh 172.30.0.1"); n != 1 {
		t.Errorf("%d mounts, want one (www2):\n%s", n, strings.Join(c.ran, "\n"))
	}
	if !strings.Contains(progress.String(), "www2: stale (") || !strings.Contains(progress.String(), "Transport endpoint is not connected") {
		t.Errorf("progress does not name the repair: %q", progress.String())
	}
	if n := c.count(": sh /var/lib/tsys-lab/replicated"); n != len(g.Clients)+1 {
		t.Errorf("%d mount checks, want one per node and one after the repair", n)
	}

	// A mount that is still stale after mounting again is an error naming the node.
	c = &scriptedCluster{volume: "Started", mounts: map[string]string{"db3": "stale: " + staleStat}, stillStale: "db3"}
	for _, n := range g.Clients[3:] {
		c.mounts[n.Name] = "ok"
	}
	_, err = RepairMounts(t.Context(), c, g, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "on db3 is stale") {
		t.Fatalf("a mount still stale after the repair gave %v", err)
	}
}

func TestParseMountCheck(t *testing.T) {
	for _, tc := range []struct {
		out    string
		state  MountState
		detail string
	}{
		{"ok\n", MountOK, ""},
		{"missing\n", MountMissing, ""},
		{"stale: " + staleStat + "\n", MountStale, staleStat},
		{"stale: stat did not answer within 30 s", MountStale, "stat did not answer within 30 s"},
		{"stale: line one\nline two\n", MountStale, "line one line two"},
	} {
		st, detail, err := ParseMountCheck(tc.out)
		if err != nil || st != tc.state || detail != tc.detail {
			t.Errorf("ParseMountCheck(%q) = %q, %q, %v; want %q, %q", tc.out, st, detail, err, tc.state, tc.detail)
		}
	}
	for _, bad := range []string{"", "okay", "sh: 1: grep: not found", "Stale: x"} {
		if st, _, err := ParseMountCheck(bad); err == nil {
			t.Errorf("ParseMountCheck(%q) = %q, want an error", bad, st)
		}
	}
}

// The mount scripts are valid sh.
func TestMountScriptsParse(t *testing.T) {
	for name, script := range map[string]string{"mount": mountScript, "check": checkMountScript} {
		sh := exec.Command("sh", "-n")
		sh.Stdin = strings.NewReader(script)
		if out, err := sh.CombinedOutput(); err != nil {
			t.Errorf("%s script: sh -n: %v\n%s", name, err, out)
		}
	}
}

func TestBootScript(t *testing.T) {
	g := labGluster(t)
	db2, www3 := g.BootScript(1), g.BootScript(5)
	if !strings.Contains(db2, "pgrep -x glusterd >/dev/null || glusterd") || strings.Contains(www3, "glusterd --log") {
		t.Errorf("glusterd must start on servers only:\ndb2:\n%s\nwww3:\n%s", db2, www3)
	}
	for _, want := range []string{"mount_volume 172.30.0.13 172.30.0.11:172.30.0.12 replicated /var/lib/tsys-lab/replicated", "exit 1", mountScript} {
		if !strings.Contains(www3, want) {
			t.Errorf("www3's boot script lacks %q:\n%s", want, www3)
		}
	}
	cmd := g.BootScriptCmd(5)
	if cmd[4] != BootScriptPath || cmd[5] != www3 {
		t.Errorf("boot script command %q", cmd[:5])
	}
	// The script is valid sh.
	sh := exec.Command("sh", "-n")
	sh.Stdin = strings.NewReader(db2)
	if out, err := sh.CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s", err, out)
	}
}

func TestRegistryHostsOnTheHost(t *testing.T) {
	c := &scriptedCluster{certsDir: t.TempDir()}
	if err := configureRegistryAccess(t.Context(), c, "10.213.0.200:5000"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(c.certsDir, "10.213.0.200:5000", "hosts.toml"))
	if err != nil || string(b) != RegistryHostsToml("10.213.0.200:5000") {
		t.Errorf("hosts.toml %q (%v)", b, err)
	}
	if len(c.ran) != 0 {
		t.Errorf("wrote into nodes although the cluster shares a certs.d folder: %q", c.ran)
	}
}
