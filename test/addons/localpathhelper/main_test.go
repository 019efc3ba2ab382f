package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The helper does what local-path-provisioner's default setup/teardown
// scripts do (mkdir -m 0777 -p; rm -rf), with the provisioner's arguments.
func TestCreateAndDelete(t *testing.T) {
	base := t.TempDir()
	vol := filepath.Join(base, "pvc-1_default_data")
	if err := run([]string{"-p", vol, "-s", "1073741824", "-m", "Filesystem", "-a", "create"}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(vol)
	if err != nil || !st.IsDir() || st.Mode().Perm() != 0o777 {
		t.Fatalf("after create: %v %v", st, err)
	}
	if err := os.WriteFile(filepath.Join(vol, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Create is idempotent: a retried helper pod must not fail.
	if err := run([]string{"-p", vol, "-a", "create"}); err != nil {
		t.Errorf("second create: %v", err)
	}
	if err := run([]string{"-p", vol, "-s", "0", "-m", "Filesystem", "-a", "delete"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vol); !os.IsNotExist(err) {
		t.Errorf("after delete: %v", err)
	}
	if _, err := os.Stat(base); err != nil {
		t.Errorf("delete removed the parent too: %v", err)
	}
}

func TestRefuses(t *testing.T) {
	base := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-p", "/", "-a", "delete"}, "refusing"},
		{[]string{"-p", "/var", "-a", "delete"}, "refusing"},
		{[]string{"-p", "relative/dir", "-a", "create"}, "refusing"},
		{[]string{"-p", filepath.Join(base, "v"), "-m", "Block", "-a", "create"}, "not supported"},
		{[]string{"-p", filepath.Join(base, "v"), "-a", "resize"}, "unknown action"},
	} {
		err := run(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run(%q) = %v, want an error containing %q", c.args, err, c.want)
		}
	}
}

// Under the shared path the helper refuses to work unless it is a FUSE
// mount: a node without its GlusterFS mount must not make local "replicated"
// volumes.
func TestRequiresFUSEUnderSharedPath(t *testing.T) {
	shared := t.TempDir() // a tmpfs or disk, never FUSE
	t.Setenv(RequireFUSEEnv, shared)
	vol := filepath.Join(shared, "pvc-1_default_data")
	err := run([]string{"-p", vol, "-a", "create"})
	if err == nil || !strings.Contains(err.Error(), "not a FUSE (GlusterFS) mount") {
		t.Fatalf("create under a non-FUSE shared path: %v", err)
	}
	if _, err := os.Stat(vol); !os.IsNotExist(err) {
		t.Errorf("the refused volume directory exists: %v", err)
	}
	// Outside the shared path (the local-path class) it works as before.
	other := filepath.Join(t.TempDir(), "pvc-2_default_data")
	if err := run([]string{"-p", other, "-a", "create"}); err != nil {
		t.Errorf("create outside the shared path: %v", err)
	}
}
