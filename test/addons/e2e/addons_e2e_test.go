//go:build e2e

// Package e2e installs the add-ons on the lab and checks them end to end:
//
//	go test -tags e2e ./test/addons/e2e/
//
// TestMain brings the lab up (quick when it is already up) and leaves it up.
package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/tsys-group/tsys-ci/test/addons"
	"github.com/tsys-group/tsys-ci/test/addons/localregistry"
	"github.com/tsys-group/tsys-ci/test/addons/manifests"
	"github.com/tsys-group/tsys-ci/test/lab"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

var theLab *lab.Lab

func TestMain(m *testing.M) {
	l, err := lab.Up(context.Background(), lab.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "addons e2e: the lab did not come up: %v\n", err)
		os.Exit(1)
	}
	theLab = l
	os.Exit(m.Run())
}

// labCluster adapts the lab to what the add-ons need.
type labCluster struct{ *lab.Lab }

func (labCluster) Nodes() []addons.Node {
	var out []addons.Node
	for _, n := range lab.Nodes {
		out = append(out, addons.Node{Name: n.Name, Address: netip.MustParseAddr(n.IP), ControlPlane: n.Role == "db"})
	}
	return out
}
func (labCluster) Subnet() netip.Prefix   { return netip.MustParsePrefix(lab.Subnet) }
func (labCluster) ClusterDNS() netip.Addr { return netip.MustParseAddr(lab.ClusterDNS) }
func (labCluster) LoadBalancerPool() (netip.Addr, netip.Addr) {
	first, last, _ := strings.Cut(lab.MetalLBRange, "-")
	return netip.MustParseAddr(first), netip.MustParseAddr(last)
}
func (c labCluster) ContainerdCertsDir() string {
	return filepath.Join(c.StateDir(), "containerd-certs.d")
}

func TestAddons(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	root, err := localregistry.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	images, err := addons.BuildImages(ctx, root, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	kubectl := testenv.LookPath(t, "kubectl")
	c := labCluster{theLab}
	start := time.Now()
	res, err := addons.Install(ctx, c, addons.Options{
		Images: images, Kubectl: kubectl, ManifestDir: filepath.Join(theLab.StateDir(), "addons"),
		Upstreams: []string{"/etc/resolv.conf"}, Progress: os.Stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Install took %s; registry at %s", time.Since(start).Round(time.Second), res.Registry)
	k := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", theLab.Kubeconfig()}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Log(k("get", "pods", "-A", "-o", "wide"))

	// Push an image from the host to the lab registry; a pod on www2 pulls it.
	var helperTar string
	for _, img := range images {
		if img.Image == manifests.DefaultImages().LocalPath {
			helperTar = img.Path
		}
	}
	tag, _ := name.NewTag(manifests.DefaultImages().LocalPath)
	img, err := tarball.ImageFromPath(helperTar, &tag)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(res.Registry+"/e2e/helper:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("pushing to the lab registry: %v", err)
	}
	pvc := `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: e2e-data, namespace: default}
spec:
  storageClassName: replicated
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-pull, namespace: default}
spec:
  nodeName: www2
  restartPolicy: Never
  containers:
  - name: c
    image: ` + ref.String() + `
    imagePullPolicy: Always
    command: [/local-path-helper, -p, /data/from-www2/dir, -a, create]
    volumeMounts: [{name: d, mountPath: /data}]
  volumes:
  - name: d
    persistentVolumeClaim: {claimName: e2e-data}
`
	f := filepath.Join(t.TempDir(), "e2e.yaml")
	os.WriteFile(f, []byte(pvc), 0o644)
	k("delete", "pod", "e2e-pull", "--ignore-not-found", "--wait")
	k("apply", "-f", f)
	k("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/e2e-pull", "--timeout=180s")
	pv := strings.TrimSpace(k("get", "pvc", "e2e-data", "-o", "jsonpath={.spec.volumeName}"))
	// Written by a pod on www2 into the replicated volume, seen from www3 and on every brick.
	out, err := theLab.Exec(ctx, "www3", "sh", "-c", "ls -d /var/lib/tsys-lab/replicated/"+pv+"_default_e2e-data/from-www2/dir")
	if err != nil {
		t.Errorf("www3 does not see the directory made on www2: %v %s", err, out)
	}
	for _, db := range []string{"db1", "db2", "db3"} {
		if out, err := theLab.Exec(ctx, db, "ls", "-d", "/srv/gluster/replicated/brick/"+pv+"_default_e2e-data/from-www2/dir"); err != nil {
			t.Errorf("%s's brick lacks it: %v %s", db, err, out)
		}
	}
	// CoreDNS answers for services and nodes.
	t.Log(k("get", "svc", "-A"))
}
