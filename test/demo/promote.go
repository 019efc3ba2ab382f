package demo

import (
	"context"
	"strings"
	"time"
)

// promote runs tsys-ci promote with the demo's public key and returns its
// output and how long it took; a promote that failed its probes comes back
// as an error whose exitCode is 3.
func (d *Demo) promote(ctx context.Context, app, spec string, img image, strategy string) (string, time.Duration, error) {
	_, pub, err := d.ensureKeys()
	if err != nil {
		return "", 0, err
	}
	args := []string{"promote", app, "--spec", spec, "--image", img.Ref, "--verify-key", pub, "--revision", img.Version}
	if strategy != "" {
		args = append(args, "--strategy", strategy)
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
