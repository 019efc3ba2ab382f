package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/test/lab"
)

// Namespaces are the demo's apps' namespaces (their specs' defaults).
var Namespaces = []string{"whiteboard", "demo-hello"}

// Down stops the dashboard's serve and slapd, removes the demo's apps from
// the lab and its folder .lab/demo; the lab itself stays (make lab-down
// removes it).
func Down(ctx context.Context, repoRoot string, out io.Writer) error {
	l, err := lab.Open(lab.Options{RepoRoot: repoRoot, Progress: io.Discard})
	if err != nil {
		return err
	}
	if _, err := os.Stat(l.Kubeconfig()); err == nil {
		c, err := l.Client()
		if err != nil {
			return err
		}
		for _, ns := range Namespaces {
			err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
			switch {
			case apierrors.IsNotFound(err):
				continue
			case err != nil:
				return fmt.Errorf("deleting namespace %s (is the lab up? make lab-status): %w", ns, err)
			}
			fmt.Fprintf(out, "deleting namespace %s ...\n", ns)
			deadline := time.Now().Add(3 * time.Minute)
			for {
				_, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("namespace %s still there after 3m (kubectl get ns %s -o yaml shows what holds it)", ns, ns)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Second):
				}
			}
		}
	} else {
		fmt.Fprintln(out, "no lab: no apps to remove")
	}
	dir := filepath.Join(l.RepoRoot(), ".lab", "demo")
	if err := stopDashboard(filepath.Join(dir, "dashboard")); err != nil {
		return fmt.Errorf("stopping the dashboard's serve and slapd: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	fmt.Fprintf(out, "removed %s; the lab stays up (make lab-down removes it)\n", dir)
	return nil
}
