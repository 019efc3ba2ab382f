// Package manifests renders the lab's cluster add-ons (CoreDNS, MetalLB,
// local-path-provisioner with the `replicated` class, the OCI registry) from
// the YAML templates next to this file.
//
// The templates are plain Kubernetes YAML with a few parameters (the lab's
// subnet, the image names, the shared path), so they read like what they
// install and `kubectl apply -f` takes the rendered files as they are.
package manifests

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"text/template"
)

//go:embed *.yaml
var templates embed.FS

// Versions of the add-ons; scripts/addon-images.sh builds exactly these
// (a unit test compares the two).
const (
	CoreDNSVersion   = "v1.15.0"
	MetalLBVersion   = "v0.13.12"
	LocalPathVersion = "v0.0.30"
	RegistryVersion  = "v3.1.2"
)

// ImagePrefix is where every add-on image is named; nothing is pulled from
// it: the images are imported into each node's containerd.
const ImagePrefix = "lab.local/tsys/"

// Images names the add-on images the manifests run.
type Images struct {
	CoreDNS           string
	MetalLBController string
	MetalLBSpeaker    string
	LocalPath         string
	Registry          string
}

// DefaultImages are the names scripts/addon-images.sh gives its images.
func DefaultImages() Images {
	return Images{
		CoreDNS:           ImagePrefix + "coredns:" + CoreDNSVersion,
		MetalLBController: ImagePrefix + "metallb-controller:" + MetalLBVersion,
		MetalLBSpeaker:    ImagePrefix + "metallb-speaker:" + MetalLBVersion,
		LocalPath:         ImagePrefix + "local-path-provisioner:" + LocalPathVersion,
		Registry:          ImagePrefix + "registry:" + RegistryVersion,
	}
}

// All lists the images, for importing them into every node.
func (i Images) All() []string {
	return []string{i.CoreDNS, i.MetalLBController, i.MetalLBSpeaker, i.LocalPath, i.Registry}
}

// Host is a name CoreDNS answers for (the lab's nodes, so pods can reach
// them by name as in production).
type Host struct {
	Name string
	IP   netip.Addr
}

// Params are what differs between labs.
type Params struct {
	// Subnet is the lab's Docker network; the MetalLB pool is carved from it.
	Subnet netip.Prefix
	// PoolFirst and PoolLast bound the MetalLB pool; zero means UpperRange(Subnet).
	PoolFirst, PoolLast netip.Addr
	// RegistryIP is the registry Service's fixed address; zero means PoolFirst.
	RegistryIP netip.Addr
	// ClusterDNS is the kube-dns Service's ClusterIP: the kubelets' clusterDNS.
	ClusterDNS netip.Addr
	// ClusterDomain defaults to cluster.local.
	ClusterDomain string
	// Hosts are extra names CoreDNS answers (the nodes).
	Hosts []Host
	// Upstreams are resolvers CoreDNS forwards other names to; none in the lab
	// (no internet; Docker's 127.0.0.11 is not reachable from a pod).
	Upstreams []string
	// LocalPath is the node directory of the `local-path` class.
	LocalPath string
	// SharedPath is where the GlusterFS volume is mounted on every node, the
	// `replicated` class's sharedFileSystemPath.
	SharedPath string
	// Images default to DefaultImages().
	Images Images
}

// Defaults for Params.
const (
	DefaultClusterDomain = "cluster.local"
	DefaultLocalPath     = "/var/lib/tsys-lab/local-path"
	DefaultSharedPath    = "/var/lib/tsys-lab/replicated"
)

// File is one rendered manifest, applied in the order Render returns them.
type File struct {
	Name string
	Data []byte
}

// order is the apply order: MetalLB's pool needs its CRDs (applied by
// addons.Install between metallb.yaml and metallb-pool.yaml), the registry
// needs the `replicated` class and a pool address.
var order = []string{"coredns.yaml", "metallb.yaml", "metallb-pool.yaml", "local-path.yaml", "registry.yaml"}

// UpperRange is the lab's default MetalLB pool: the upper quarter of the
// subnet without its broadcast address (for a /24: .192-.254). Node
// containers take fixed low addresses and Docker's IPAM must be kept below it.
func UpperRange(subnet netip.Prefix) (first, last netip.Addr, err error) {
	if !subnet.IsValid() || !subnet.Addr().Is4() {
		return first, last, fmt.Errorf("lab subnet %v: want an IPv4 prefix such as 172.30.0.0/24", subnet)
	}
	bits := subnet.Bits()
	if bits > 28 {
		return first, last, fmt.Errorf("lab subnet %v is too small for a load-balancer pool; use /28 or larger", subnet)
	}
	base := subnet.Masked().Addr().As4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	size := uint32(1) << (32 - bits)
	lo := n + size - size/4
	hi := n + size - 2
	return u32Addr(lo), u32Addr(hi), nil
}

func u32Addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// withDefaults fills unset fields and checks the rest.
func (p Params) withDefaults() (Params, error) {
	if p.PoolFirst.IsValid() != p.PoolLast.IsValid() {
		return p, fmt.Errorf("MetalLB pool: set both PoolFirst and PoolLast or neither")
	}
	if !p.PoolFirst.IsValid() {
		first, last, err := UpperRange(p.Subnet)
		if err != nil {
			return p, err
		}
		p.PoolFirst, p.PoolLast = first, last
	}
	if p.Subnet.IsValid() && (!p.Subnet.Contains(p.PoolFirst) || !p.Subnet.Contains(p.PoolLast)) {
		return p, fmt.Errorf("MetalLB pool %v-%v is not inside the lab subnet %v", p.PoolFirst, p.PoolLast, p.Subnet)
	}
	if p.PoolLast.Less(p.PoolFirst) {
		return p, fmt.Errorf("MetalLB pool %v-%v ends before it starts", p.PoolFirst, p.PoolLast)
	}
	if !p.RegistryIP.IsValid() {
		p.RegistryIP = p.PoolFirst
	}
	if p.RegistryIP.Less(p.PoolFirst) || p.PoolLast.Less(p.RegistryIP) {
		return p, fmt.Errorf("registry address %v is outside the MetalLB pool %v-%v", p.RegistryIP, p.PoolFirst, p.PoolLast)
	}
	if !p.ClusterDNS.IsValid() {
		return p, fmt.Errorf("ClusterDNS is not set: give the kube-dns ClusterIP the kubelets use as clusterDNS")
	}
	if p.ClusterDomain == "" {
		p.ClusterDomain = DefaultClusterDomain
	}
	if p.LocalPath == "" {
		p.LocalPath = DefaultLocalPath
	}
	if p.SharedPath == "" {
		p.SharedPath = DefaultSharedPath
	}
	for _, path := range []string{p.LocalPath, p.SharedPath} {
		if !strings.HasPrefix(path, "/") || strings.Count(path, "/") < 2 {
			return p, fmt.Errorf("storage path %q must be absolute and not directly under /", path)
		}
	}
	if strings.HasPrefix(p.LocalPath+"/", p.SharedPath+"/") || strings.HasPrefix(p.SharedPath+"/", p.LocalPath+"/") {
		return p, fmt.Errorf("LocalPath %q and SharedPath %q must not contain each other", p.LocalPath, p.SharedPath)
	}
	if p.Images == (Images{}) {
		p.Images = DefaultImages()
	}
	return p, nil
}

// LocalPathConfig is local-path-provisioner's config.json: one entry per
// StorageClass, `local-path` on each node's own disk and `replicated` on the
// shared GlusterFS mount.
type LocalPathConfig struct {
	StorageClassConfigs map[string]LocalPathClassConfig `json:"storageClassConfigs"`
	SetupCommand        string                          `json:"setupCommand"`
	TeardownCommand     string                          `json:"teardownCommand"`
}

// LocalPathClassConfig is one class's entry in LocalPathConfig.
type LocalPathClassConfig struct {
	NodePathMap          []LocalPathNodePaths `json:"nodePathMap,omitempty"`
	SharedFileSystemPath string               `json:"sharedFileSystemPath,omitempty"`
}

// LocalPathNodePaths maps a node (or DEFAULT_PATH_FOR_NON_LISTED_NODES) to its directories.
type LocalPathNodePaths struct {
	Node  string   `json:"node"`
	Paths []string `json:"paths"`
}

// HelperBinary is the static helper in the provisioner's image that creates
// and removes volume directories (test/addons/build/localpath/helper).
const HelperBinary = "/local-path-helper"

func localPathConfig(p Params) LocalPathConfig {
	return LocalPathConfig{
		StorageClassConfigs: map[string]LocalPathClassConfig{
			"local-path": {NodePathMap: []LocalPathNodePaths{{Node: "DEFAULT_PATH_FOR_NON_LISTED_NODES", Paths: []string{p.LocalPath}}}},
			"replicated": {SharedFileSystemPath: p.SharedPath},
		},
		SetupCommand:    HelperBinary,
		TeardownCommand: HelperBinary,
	}
}

// Render returns the add-ons' manifests for p, in apply order.
func Render(p Params) ([]File, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("rendering lab add-on manifests: %w", err)
	}
	cfg, err := json.MarshalIndent(localPathConfig(p), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding local-path config: %w", err)
	}
	data := struct {
		Params
		LocalPathConfigJSON string
	}{p, string(cfg)}
	funcs := template.FuncMap{"indent": func(n int, s string) string {
		pad := strings.Repeat(" ", n)
		return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
	}}
	var files []File
	for _, name := range order {
		tpl, err := template.New(name).Funcs(funcs).Option("missingkey=error").ParseFS(templates, name)
		if err != nil {
			return nil, fmt.Errorf("parsing template %s: %w", name, err)
		}
		var buf bytes.Buffer
		if err := tpl.Execute(&buf, data); err != nil {
			return nil, fmt.Errorf("rendering %s: %w", name, err)
		}
		files = append(files, File{Name: name, Data: buf.Bytes()})
	}
	return files, nil
}
