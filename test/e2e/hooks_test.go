//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/test/lab"
)

// The add-ons' hooks work: an image archive imported with ImportImage runs
// on every www node from a manifest applied with Apply, with no registry.
func TestImportImageAndApply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := client(t)
	ns := namespace(t, c, "e2e-hooks-")

	// A new name for the sandbox image, saved as a docker archive.
	src := strings.TrimPrefix(lab.PauseImage(), "docker.io/")
	ref := "tsys-lab/hooktest:" + strings.ReplaceAll(t.Name(), "/", "-")
	if out, err := exec.CommandContext(ctx, "docker", "tag", src, ref).CombinedOutput(); err != nil {
		t.Fatalf("docker tag: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", ref).Run() })
	archive := filepath.Join(t.TempDir(), "lab-hooktest.tar")
	if out, err := exec.CommandContext(ctx, "docker", "save", "-o", archive, ref).CombinedOutput(); err != nil {
		t.Fatalf("docker save: %v: %s", err, out)
	}
	if err := theLab.ImportImage(ctx, archive); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = theLab.ForgetImage(archive) })

	manifest := filepath.Join(t.TempDir(), "ds.yaml")
	if err := os.WriteFile(manifest, []byte(`apiVersion: apps/v1
kind: DaemonSet
metadata: {name: hooktest, namespace: `+ns+`}
spec:
  selector: {matchLabels: {app: hooktest}}
  template:
    metadata: {labels: {app: hooktest}}
    spec:
      containers:
      - {name: c, image: docker.io/`+ref+`, imagePullPolicy: Never}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := theLab.Apply(ctx, manifest); err != nil {
		t.Fatalf("apply: %v: %s", err, out)
	}
	// Three www nodes (the db nodes are tainted), each running the pod.
	var last string
	for {
		ds, err := c.AppsV1().DaemonSets(ns).Get(ctx, "hooktest", metav1.GetOptions{})
		if err == nil {
			if ds.Status.DesiredNumberScheduled == 3 && ds.Status.NumberReady == 3 {
				return
			}
			last = fmt.Sprintf("%+v", ds.Status)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("DaemonSet not ready on the three www nodes; last: %s", last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
