package addons

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/addons/manifests"
)

func TestParseImageList(t *testing.T) {
	out := "lab.local/tsys/coredns:v1.15.0\t/root/.cache/tsys-ci/addons/coredns-v1.15.0-abc/image.tar\n" +
		"lab.local/tsys/registry:v3.1.2\t/root/.cache/tsys-ci/addons/registry-v3.1.2-def/image.tar\n"
	images, err := ParseImageList(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 2 || images[1].Image != "lab.local/tsys/registry:v3.1.2" || images[1].Dir() != "/root/.cache/tsys-ci/addons/registry-v3.1.2-def" {
		t.Errorf("parsed %+v", images)
	}
	for _, bad := range []string{"", "img /abs/path", "img\trelative/path", "a\t/x\na\t/y", "a b\t/x"} {
		if got, err := ParseImageList(bad); err == nil {
			t.Errorf("ParseImageList(%q) = %v, want an error", bad, got)
		}
	}
}

func FuzzParseImageList(f *testing.F) {
	f.Add("lab.local/tsys/coredns:v1.15.0\t/c/image.tar\n")
	f.Fuzz(func(t *testing.T, s string) {
		images, err := ParseImageList(s)
		if err != nil {
			return
		}
		for _, img := range images {
			if img.Image == "" || !filepath.IsAbs(img.Path) {
				t.Errorf("ParseImageList(%q) accepted %+v", s, img)
			}
		}
	})
}

func TestFindNamesWhatIsMissing(t *testing.T) {
	_, err := find([]ImageTarball{{Image: "a", Path: "/a"}}, "b")
	if err == nil || !strings.Contains(err.Error(), "b was not built") || !strings.Contains(err.Error(), "addon-images.sh") {
		t.Errorf("find of a missing image: %v", err)
	}
}

func TestRegistryHostsCmd(t *testing.T) {
	cmd := RegistryHostsCmd("172.30.0.192:5000")
	if cmd[4] != "/etc/containerd/certs.d/172.30.0.192:5000" {
		t.Errorf("hosts.toml directory %q", cmd[4])
	}
	want := "server = \"http://172.30.0.192:5000\"\n\n[host.\"http://172.30.0.192:5000\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n  skip_verify = true\n"
	if cmd[5] != want {
		t.Errorf("hosts.toml:\n%s\nwant:\n%s", cmd[5], want)
	}
}

func TestCRDsEstablishedArgs(t *testing.T) {
	args := CRDsEstablishedArgs([]string{"/c/crds/metallb.io_ipaddresspools.yaml", "/c/crds/metallb.io_l2advertisements.yaml"}, 2*time.Minute)
	want := []string{"wait", "--for=condition=Established", "--timeout=2m0s", "crd/ipaddresspools.metallb.io", "crd/l2advertisements.metallb.io"}
	if !slices.Equal(args, want) {
		t.Errorf("got %q\nwant %q", args, want)
	}
}

// Install stops before touching any node when an image is missing or the
// MetalLB CRDs are not next to the controller's image.
func TestInstallChecksImagesFirst(t *testing.T) {
	c := &scriptedCluster{}
	if _, err := Install(t.Context(), c, Options{}); err == nil || !strings.Contains(err.Error(), "was not built") {
		t.Errorf("Install without images: %v", err)
	}
	dir := t.TempDir()
	var images []ImageTarball
	for _, img := range manifests.DefaultImages().All() {
		images = append(images, ImageTarball{Image: img, Path: filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(img), "image.tar")})
	}
	if _, err := Install(t.Context(), c, Options{Images: images}); err == nil || !strings.Contains(err.Error(), "MetalLB CRDs") {
		t.Errorf("Install without CRDs: %v", err)
	}
	if len(c.ran) != 0 {
		t.Errorf("Install ran commands on nodes before its checks passed: %q", c.ran)
	}
	_ = os.Remove(dir)
}

func TestParamsFromCluster(t *testing.T) {
	p := Params(&scriptedCluster{}, Options{})
	files, err := manifests.Render(p)
	if err != nil {
		t.Fatal(err)
	}
	var corefile string
	for _, f := range files {
		if f.Name == "coredns.yaml" {
			corefile = string(f.Data)
		}
	}
	for _, n := range labNodes() {
		if !strings.Contains(corefile, n.Address.String()+" "+n.Name) {
			t.Errorf("CoreDNS does not answer for node %s (%s)", n.Name, n.Address)
		}
	}
}

// poolCluster is a lab that reserves its own MetalLB range (lab.MetalLBRange).
type poolCluster struct{ scriptedCluster }

func (p *poolCluster) Subnet() netip.Prefix { return netip.MustParsePrefix("10.213.0.0/24") }
func (p *poolCluster) LoadBalancerPool() (netip.Addr, netip.Addr) {
	return netip.MustParseAddr("10.213.0.200"), netip.MustParseAddr("10.213.0.250")
}

func TestParamsUseTheLabsPoolAndUpstreams(t *testing.T) {
	p := Params(&poolCluster{}, Options{Upstreams: []string{"/etc/resolv.conf"}})
	files, err := manifests.Render(p)
	if err != nil {
		t.Fatal(err)
	}
	all := ""
	for _, f := range files {
		all += string(f.Data)
	}
	for _, want := range []string{"- 10.213.0.200-10.213.0.250", `metallb.universe.tf/loadBalancerIPs: "10.213.0.200"`, "forward . /etc/resolv.conf {"} {
		if !strings.Contains(all, want) {
			t.Errorf("rendered manifests lack %q", want)
		}
	}
}
