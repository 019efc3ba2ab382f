package demo

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// promote runs tsys-ci promote with the demo's public key and returns its
// output and how long it took; a promote that failed its probes comes back
// as an error whose exitCode is 3.
func (d *Demo) promote(ctx context.Context, app, ns, spec string, img image, strategy string) (string, time.Duration, error) {
	_, pub, err := d.ensureKeys()
	if err != nil {
		return "", 0, err
	}
	// Flags before the app's name: the CLI stops reading flags at it.
	args := []string{"promote", "--spec", spec, "--image", img.Ref, "--verify-key", pub, "--revision", img.Version}
	if strategy != "" {
		args = append(args, "--strategy", strategy)
	}
	args = append(args, app)
	if err := d.ensureNamespace(ctx, ns); err != nil {
		return "", 0, err
	}
	t := time.Now()
	out, err := d.run(ctx, d.tsysci, args...)
	return out, time.Since(t), err
}

// lastLines is the end of a command's output, for the narration.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return indent(strings.Join(lines, "\n"))
}

// ensureNamespace creates the app's namespace: promote deploys into one that
// exists (the platform team makes them; in the demo, the demo does).
func (d *Demo) ensureNamespace(ctx context.Context, ns string) error {
	c, err := d.lab.Client()
	if err != nil {
		return err
	}
	_, err = c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s for the demo: %w", ns, err)
	}
	return nil
}
