package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServeUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	short := filepath.Join(dir, "short")
	os.WriteFile(secret, []byte("Bearer 0123456789abcdef0123\n"), 0o600)
	os.WriteFile(short, []byte("abc"), 0o600)
	cfg := "../../pipeline/testdata/serve/serve.yaml"
	for _, tc := range []struct {
		args  []string
		words string
	}{
		{[]string{"--config", cfg, "--allow-unsigned", "--no-cluster"}, "--webhook-secret-file is required"},
		{[]string{"--config", cfg, "--webhook-secret-file", short, "--no-cluster"}, "at least 16"},
		{[]string{"--config", cfg, "--webhook-secret-file", secret}, "--verify-key cosign.pub, or --allow-unsigned"},
		{[]string{"--config", cfg, "--webhook-secret-file", secret, "--verify-key", "k.pub", "--allow-unsigned"}, "not both"},
		{[]string{"--webhook-secret-file", secret, "--no-cluster"}, "one of --config"},
		{[]string{"--config", filepath.Join(dir, "none.yaml"), "--webhook-secret-file", secret, "--no-cluster"}, "reading serve config"},
	} {
		app := newApp()
		var out bytes.Buffer
		app.Writer, app.ErrWriter = &out, &out
		err := app.Run(append([]string{"tsys-ci", "serve", "--listen", "127.0.0.1:0"}, tc.args...))
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), tc.words) {
			t.Errorf("serve %v: %v (exit %d), want exit 2 saying %q", tc.args, err, exitCode(err), tc.words)
		}
	}
}
