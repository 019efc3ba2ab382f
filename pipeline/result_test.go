package pipeline

import (
	"os"
	"path/filepath"
	"testing"
)

// A secret is owner-only even where an earlier, interrupted write left a
// world-readable temporary file behind (os.WriteFile keeps its mode).
func TestWriteSecretIsOwnerOnlyDespiteAStaleTemporaryFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "robot.json")
	if err := os.WriteFile(path+".tmp", []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSecret(path, map[string]string{"password": "s3cret"}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, st.Mode().Perm())
	}
	if err := WriteJSON(filepath.Join(filepath.Dir(path), "push.json"), map[string]string{"image": "x"}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(filepath.Dir(path), "push.json")); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("push.json: %v, %v; want a 0644 file", st, err)
	}
}

// Issue 17 finding 12: the secret goes through a temporary file created
// exclusively under a random name; a symlink planted at the old fixed
// name (path.tmp) is neither followed nor removed, and nothing is left
// behind.
func TestWriteSecretIgnoresAPlantedTemporaryName(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "robot.json")
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, path+".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := WriteSecret(path, map[string]string{"password": "s3cret"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatalf("the symlink's target was written: %q", b)
	}
	if l, err := os.Readlink(path + ".tmp"); err != nil || l != victim {
		t.Fatalf("the planted symlink was touched: %q %v", l, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Fatalf("%d entries in the folder, want robot.json, robot.json.tmp, victim: %v", len(entries), entries)
	}
	if st, err := os.Lstat(path); err != nil || st.Mode().Perm() != 0o600 || !st.Mode().IsRegular() {
		t.Fatalf("%s: %v %v", path, st, err)
	}
}
