package lab

import (
	"bufio"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Debian suite and packages of the node image, with why:
//
//	containerd runc                 the container runtime the kubelet drives
//	containernetworking-plugins     bridge, host-local, portmap for pod networking
//	iptables conntrack              kube-proxy
//	ca-certificates procps iproute2 tini iputils-ping  basics: TLS roots, ps, ip, PID 1, ping
//	haproxy                         the API load balancer (lab-apilb runs this image)
//	glusterfs-server glusterfs-client  the replicated storage (add-ons)
const debianSuite = "bookworm"

var nodePackages = []string{
	"containerd", "runc", "containernetworking-plugins", "iptables", "conntrack",
	"ca-certificates", "procps", "iproute2", "tini", "iputils-ping",
	"haproxy", "glusterfs-server", "glusterfs-client",
}

//go:embed files/pause.c
var pauseSource []byte

// imageKey hashes everything a node image is made from.
func nodeImageKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "suite=%s\npackages=%s\nrecipe=2\n", debianSuite, strings.Join(nodePackages, ","))
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// NodeImage is the node image's Docker name.
func NodeImage() string { return "tsys-lab/node:" + nodeImageKey() }

func pauseKey() string {
	h := sha256.Sum256(pauseSource)
	return hex.EncodeToString(h[:])[:12]
}

// PauseImage is the sandbox image's name as containerd knows it.
func PauseImage() string { return "docker.io/tsys-lab/pause:" + pauseKey() }

// debianMirror reads the machine's Debian mirror from its apt sources: it is
// the machine's, never written into the repository.
func debianMirror() (string, error) {
	for _, p := range []string{"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if m := parseMirror(string(data)); m != "" {
			return m, nil
		}
	}
	return "", errors.New("no Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list")
}

// parseMirror finds the first non-security archive in apt sources, in the
// deb822 form (URIs: ...) or the one-line form (deb URL suite ...).
func parseMirror(sources string) string {
	sc := bufio.NewScanner(strings.NewReader(sources))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 2 && fields[0] == "URIs:":
			for _, u := range fields[1:] {
				if !strings.Contains(u, "security") && strings.Contains(u, "://") {
					return u
				}
			}
		case len(fields) >= 3 && fields[0] == "deb" && strings.Contains(fields[1], "://") && !strings.Contains(fields[1], "security"):
			return fields[1]
		}
	}
	return ""
}

// ensureNodeImage makes the node image: from Docker if present, else from
// the cached root filesystem tarball, else by debootstrap (minutes).
func (l *Lab) ensureNodeImage(ctx context.Context, log io.Writer) error {
	img := NodeImage()
	if imageExists(ctx, img) {
		fmt.Fprintf(log, "%s present\n", img)
		return nil
	}
	dir := filepath.Join(l.cache, "lab", "node-"+nodeImageKey())
	tarPath := filepath.Join(dir, "rootfs.tar")
	if _, err := os.Stat(tarPath); err != nil {
		if err := l.debootstrap(ctx, log, dir, tarPath); err != nil {
			return err
		}
	} else {
		l.logf("  importing the cached root filesystem %s", tarPath)
	}
	f, err := os.Open(tarPath)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = runOut(ctx, log, f, "docker", "import",
		"--change", `ENTRYPOINT ["/usr/bin/tini", "-g", "--"]`,
		"--change", `CMD ["/lab/common/boot.sh"]`,
		"-", img)
	return err
}

func (l *Lab) debootstrap(ctx context.Context, log io.Writer, dir, tarPath string) error {
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return errors.New("debootstrap is not installed: run scripts/deps.sh")
	}
	mirror, err := debianMirror()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rootfs, err := os.MkdirTemp(dir, "rootfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(rootfs)
	l.logf("  debootstrap %s from %s (a few minutes; log: %s)", debianSuite, mirror, filepath.Join(l.LogDir(), "node-image.log"))
	if err := run(ctx, log, "debootstrap", "--variant=minbase",
		"--include="+strings.Join(nodePackages, ","), debianSuite, rootfs, mirror); err != nil {
		return err
	}
	// Trim what a node never uses, and leave no machine id: each node makes
	// its own at first boot.
	for _, p := range []string{"var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale"} {
		if err := os.RemoveAll(filepath.Join(rootfs, p)); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc/machine-id"), nil, 0o444); err != nil {
		return err
	}
	for _, d := range []string{"lab", "opt/k8s/bin", "var/lib/etcd", "etc/cni/net.d", "etc/containerd/certs.d"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return err
		}
	}
	tmp := tarPath + ".tmp"
	if err := run(ctx, log, "tar", "-C", rootfs, "--numeric-owner", "-cf", tmp, "."); err != nil {
		return err
	}
	return os.Rename(tmp, tarPath)
}

// ensurePauseImage builds the sandbox image (a static C binary FROM scratch)
// and saves it where every node imports it at boot.
func (l *Lab) ensurePauseImage(ctx context.Context, log io.Writer) error {
	out := filepath.Join(l.state, "images", "pause.tar")
	keyFile := out + ".key"
	if b, err := os.ReadFile(keyFile); err == nil && string(b) == pauseKey() {
		fmt.Fprintf(log, "%s present\n", out)
		return nil
	}
	ref := strings.TrimPrefix(PauseImage(), "docker.io/")
	if !imageExists(ctx, ref) {
		if _, err := exec.LookPath("gcc"); err != nil {
			return errors.New("gcc is not installed (the sandbox image is a static C binary): run scripts/deps.sh")
		}
		dir, err := os.MkdirTemp("", "lab-pause-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if err := os.WriteFile(filepath.Join(dir, "pause.c"), pauseSource, 0o644); err != nil {
			return err
		}
		if err := run(ctx, log, "gcc", "-static", "-Os", "-s", "-o", filepath.Join(dir, "pause"), filepath.Join(dir, "pause.c")); err != nil {
			return err
		}
		df := "FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT [\"/pause\"]\n"
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
			return err
		}
		if err := run(ctx, log, "docker", "build", "-q", "-t", ref, dir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := run(ctx, log, "docker", "save", "-o", out, ref); err != nil {
		return err
	}
	return os.WriteFile(keyFile, []byte(pauseKey()), 0o644)
}

func imageExists(ctx context.Context, ref string) bool {
	return exec.CommandContext(ctx, "docker", "image", "inspect", ref).Run() == nil
}
