package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run(append([]string{"tsys-ci"}, args...))
	return out.String(), err
}

func TestPlatformRenderWritesFiles(t *testing.T) {
	dir := t.TempDir()
	out, err := runApp(t, "platform", "render", "-f", "../../templates/platform/platform.yaml", "-o", dir)
	if err != nil {
		t.Fatalf("platform render: %v\n%s", err, out)
	}
	for _, p := range []string{"hosts/db1/config.yaml", "hosts/www1/config.yaml", "values/longhorn.yaml", "manifests/metallb-pools.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("render did not write %s: %v", p, err)
		}
	}
}

func TestPlatformRenderBadFileExits2(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "platform.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: tsys-ci.io/v1\nkind: Platform\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := runApp(t, "platform", "render", "-f", bad, "-o", t.TempDir())
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "hosts") {
		t.Fatalf("got %v (exit %d), want exit 2 naming the hosts field", err, exitCode(err))
	}
}
