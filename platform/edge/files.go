package edge

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// EnvEdgeDir is the environment variable the company's configuration reads
// the edge directory from ("${TSYS_CI_EDGE_DIR}/hosts.map"). Its global
// section sets it with presetenv, so `haproxy -c` can point it at a staged
// copy and check exactly what a reload would load.
const EnvEdgeDir = "TSYS_CI_EDGE_DIR"

// Write installs the files into dir, each one atomically (written beside
// it, synced, renamed), the fragment last.
func (f Files) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the edge directory: %w", err)
	}
	for _, file := range f.byName() {
		if err := writeAtomic(filepath.Join(dir, file.name), file.data); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("installing %s: %w", path, err)
	}
	return nil
}

// ReadFiles reads what is installed in dir; a missing file reads as empty,
// as on the first sync.
func ReadFiles(dir string) (Files, error) {
	var f Files
	for _, p := range []struct {
		name string
		dst  *[]byte
	}{{FileConfig, &f.Config}, {FileHostMap, &f.HostMap}, {FileCrtList, &f.CrtList}, {FileHosts, &f.Hosts}} {
		data, err := os.ReadFile(filepath.Join(dir, p.name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Files{}, fmt.Errorf("reading the installed edge files: %w", err)
		}
		*p.dst = data
	}
	return f, nil
}
