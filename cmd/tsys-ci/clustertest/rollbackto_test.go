package clustertest

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/test/apiserver"
	"github.com/tsys-group/tsys-ci/test/podstandin"
)

// TestRollbackToFromTheCLI: 'tsys-ci promote APP --rollback --to N' as a
// person types it after reading 'tsys-ci status': the numbered version
// comes back; --to without --rollback is refused as bad input.
func TestRollbackToFromTheCLI(t *testing.T) {
	cs := apiserver.Client(t)
	ns := apiserver.Namespace(t, cs, "cli-rollback-to")
	podstandin.Start(t, cs, ns)
	spec := filepath.Join(t.TempDir(), "tsys-ci.yaml")
	write(t, spec, "name: shop\nnamespace: "+ns+"\nreplicas: 2\nports: [{name: http, containerPort: 8080}]\n"+
		"strategy: {type: blueGreen, blueGreen: {scaleDownDelay: 1s}}\n")
	images := []string{"reg.example/shop/shop@sha256:" + strings.Repeat("a1", 32), "reg.example/shop/shop@sha256:" + strings.Repeat("b2", 32), "reg.example/shop/shop@sha256:" + strings.Repeat("c3", 32)}
	for _, img := range images {
		if out, code := run(t, nil, "promote", "shop", "--kubeconfig", kubeconfig, "--spec", spec, "--image", img, "--allow-unsigned"); code != 0 {
			t.Fatalf("promote %s: exit %d\n%s", img, code, out)
		}
	}
	status := func() string {
		t.Helper()
		out, stderr, code := runOut(t, nil, "status", "shop", "--kubeconfig", kubeconfig, "--spec", spec)
		if code != 0 {
			t.Fatalf("status: exit %d\n%s", code, stderr)
		}
		return out
	}
	if s := status(); !strings.Contains(s, "[3] ") || !strings.Contains(s, images[0]) {
		t.Fatalf("status does not number the history:\n%s", s)
	}
	if out, code := run(t, nil, "promote", "shop", "--kubeconfig", kubeconfig, "--spec", spec, "--rollback", "--to", "3"); code != 0 {
		t.Fatalf("--rollback --to 3: exit %d\n%s", code, out)
	}
	if s := status(); !strings.Contains(s, "serving "+images[0]) {
		t.Fatalf("after --to 3 the app does not serve %s:\n%s", images[0], s)
	}
	if out, code := run(t, nil, "promote", "shop", "--kubeconfig", kubeconfig, "--spec", spec, "--to", "2"); code != 2 || !strings.Contains(out, "pass it with --rollback") {
		t.Fatalf("--to without --rollback: exit %d\n%s", code, out)
	}
	if out, code := run(t, nil, "promote", "shop", "--kubeconfig", kubeconfig, "--spec", spec, "--rollback", "--to", "sha256:"+strings.Repeat("00", 32)); code != 2 || !strings.Contains(out, "no recorded version has that image") {
		t.Fatalf("--to an unknown digest: exit %d\n%s", code, out)
	}
}
