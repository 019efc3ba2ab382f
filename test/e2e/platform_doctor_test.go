//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/platform/doctor"
)

// TestPlatformDoctorOnLab reads the lab with tsys-ci platform doctor. With
// the add-ons installed (the platform's own setup: CoreDNS, MetalLB, the
// replicated class) it must find no critical single point of failure. On a
// bare lab the only critical finding allowed is the missing replicated
// storage the add-ons bring; anything else (fewer servers, NotReady nodes,
// a crash-looping speaker) fails. Warnings are logged.
func TestPlatformDoctorOnLab(t *testing.T) {
	cfg, err := theLab.RESTConfig()
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
	snap, err := doctor.CollectSnapshot(ctx, cs, dyn)
	if err != nil {
		t.Fatalf("reading the lab: %v", err)
	}
	report := doctor.NewReport(doctor.Analyze(snap, doctor.Options{ReplicatedClasses: []string{"replicated"}}))
	t.Logf("doctor read %d nodes and %d pods in %s", len(snap.Nodes), len(snap.Pods), time.Since(start).Round(time.Millisecond))
	var out bytes.Buffer
	if err := report.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("doctor on the lab:\n%s", out.String())

	_, err = cs.StorageV1().StorageClasses().Get(ctx, "replicated", metav1.GetOptions{})
	addons := err == nil
	if !addons {
		t.Logf("the add-ons are not installed (no storage class \"replicated\"): only the missing replicated storage may be critical")
	}
	for _, f := range report.Findings {
		if f.Severity != doctor.SeverityCritical {
			continue
		}
		if !addons && f.Check == doctor.CheckStorageClass && f.Object == "cluster" {
			continue
		}
		if othersApp(f) {
			t.Logf("critical, about an app another test runs now (not the platform's setup): %s: %s", f.Object, f.Problem)
			continue
		}
		t.Errorf("critical: %s: %s", f.Object, f.Problem)
	}
}

// labNamespaces hold the lab's own setup (add-ons, promote pool).
var labNamespaces = map[string]bool{"default": true, "kube-system": true, "metallb-system": true,
	"local-path-storage": true, "lab-registry": true, "tsys-ci-system": true}

// othersApp reports whether a finding is about an app that another test
// runs in the shared lab at this moment (a canary halfway through a
// promote, a test's one-replica Deployment): an app-level check on an
// object outside the lab's own namespaces and the platform- ones of
// TestPlatformApplyOnLab. Doctor is right to flag it, but it is not the
// platform's setup, so the lab tests log it instead of failing.
func othersApp(f doctor.Finding) bool {
	if f.Check == doctor.CheckNodeConcentration {
		// "N single points of failure run only on NODE: kind/ns/name, ...":
		// critical only through a member, and about others' apps when any
		// member is one (that member's own finding is judged on its own).
		_, list, _ := strings.Cut(f.Problem, ": ")
		for _, w := range strings.Split(list, ", ") {
			if othersApp(doctor.Finding{Check: doctor.CheckWorkload, Object: w}) {
				return true
			}
		}
		return false
	}
	switch f.Check {
	case doctor.CheckWorkload, doctor.CheckServe, doctor.CheckVolumeClass:
	default:
		return false
	}
	parts := strings.Split(f.Object, "/") // kind/namespace/name
	if len(parts) != 3 {
		return false
	}
	return !labNamespaces[parts[1]] && !strings.HasPrefix(parts[1], "platform-")
}
