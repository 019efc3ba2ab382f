package addons_test

import (
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/addons"
	"github.com/tsys-group/tsys-ci/test/testenv"

	"github.com/tsys-group/tsys-ci/test/addons/localregistry"
	"github.com/tsys-group/tsys-ci/test/addons/manifests"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The lab registry's config.yml, as its manifest renders it, runs the real
// registry and answers the two probes its Deployment uses.
func TestLabRegistryConfigServes(t *testing.T) {
	files, err := manifests.Render(manifests.Params{Subnet: netip.MustParsePrefix("172.30.0.0/24"), ClusterDNS: netip.MustParseAddr("10.96.0.10")})
	if err != nil {
		t.Fatal(err)
	}
	var config string
	for _, f := range files {
		if f.Name != "registry.yaml" {
			continue
		}
		for _, doc := range strings.Split(string(f.Data), "\n---\n") {
			var cm corev1.ConfigMap
			if yaml.Unmarshal([]byte(doc), &cm) == nil && cm.Kind == "ConfigMap" && cm.Name == "registry-config" {
				config = cm.Data["config.yml"]
			}
		}
	}
	if config == "" {
		t.Fatal("no registry-config ConfigMap with config.yml in registry.yaml")
	}
	bin := localregistry.BinaryForTest(t)
	r, err := localregistry.StartWithConfig(t.Context(), bin, t.TempDir(), config, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, u := range []string{"http://" + r.Addr + "/v2/", "http://" + r.DebugAddr + "/debug/health"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s; log:\n%s", u, resp.Status, r.Log())
		}
	}
}

func TestWaitRegistry(t *testing.T) {
	r := localregistry.ForTest(t)
	if err := addons.WaitRegistry(t.Context(), r.Addr, 10*time.Second); err != nil {
		t.Errorf("a running registry: %v", err)
	}
	// A port where nothing listens: the error names the registry and what to check.
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) // nothing listens there now
	err := addons.WaitRegistry(t.Context(), addr, time.Second)
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "MetalLB") {
		t.Errorf("no registry: %v", err)
	}
}
