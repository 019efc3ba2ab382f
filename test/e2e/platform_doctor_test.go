//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/platform"
	"github.com/tsys-group/tsys-ci/test/lab"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// TestPlatformDoctorOnLab reads the running lab (make lab-up, with its
// add-ons) and expects no critical single point of failure: the platform's
// own setup must leave none. Warnings are logged, not failed: the lab runs
// one MetalLB controller and one local-path-provisioner, as production may.
func TestPlatformDoctorOnLab(t *testing.T) {
	l, err := lab.Open(lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l.Kubeconfig()); err != nil {
		testenv.Missing(t, "the lab is not up ("+l.Kubeconfig()+" missing); run make lab-up")
	}
	cfg, err := l.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	snap, err := platform.CollectSnapshot(ctx, cs, dyn)
	if err != nil {
		t.Fatalf("reading the lab: %v", err)
	}
	report := platform.NewDoctorReport(platform.Analyze(snap, platform.DoctorOptions{ReplicatedClasses: []string{"replicated"}}))
	t.Logf("doctor read %d nodes, %d pods in %s", len(snap.Nodes), len(snap.Pods), time.Since(start).Round(time.Millisecond))
	var out bytes.Buffer
	if err := report.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("doctor on the lab:\n%s", out.String())
	for _, f := range report.Findings {
		if f.Severity == platform.SeverityCritical {
			t.Errorf("critical: %s: %s", f.Object, f.Problem)
		}
	}
}
