package lab

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A failing step says which step failed and where its log is, and the log
// holds what the step wrote and the error.
func TestStepFailureNamesStepAndLog(t *testing.T) {
	dir := t.TempDir()
	var progress bytes.Buffer
	l, err := Open(Options{StateDir: dir, RepoRoot: dir, CacheDir: dir, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	err = l.step("making widgets", "widgets", func(log io.Writer) error {
		io.WriteString(log, "widget 1 of 2 made\n")
		return errors.New("out of widget stock")
	})
	if err == nil {
		t.Fatal("step error was dropped")
	}
	logPath := filepath.Join(dir, "logs", "widgets.log")
	for _, want := range []string{`"making widgets"`, "out of widget stock", logPath} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "widget 1 of 2 made") || !strings.Contains(string(b), "FAILED: out of widget stock") {
		t.Errorf("log holds %q", b)
	}
	if !strings.Contains(progress.String(), "making widgets ...") {
		t.Errorf("no progress line: %q", progress.String())
	}
}

// Add-on archives all named image.tar in their own cache folders are kept
// under different names, so none overwrites another for the next boot.
func TestImportName(t *testing.T) {
	a := importName("/c/addons/coredns-v1.15.0-4f30/image.tar")
	b := importName("/c/addons/registry-v3.1.2-6e9a/image.tar")
	if a == b {
		t.Fatalf("both archives kept as %s", a)
	}
	if a != "coredns-v1.15.0-4f30-image.tar" {
		t.Errorf("importName = %s, want coredns-v1.15.0-4f30-image.tar", a)
	}
}
