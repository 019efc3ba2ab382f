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
