package testenv

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Module is the tsys-ci module path, as go.mod declares it.
const Module = "github.com/tsys-group/tsys-ci"

// RepoRoot walks up from the working directory (a test runs in its
// package's folder) to the top of the tsys-ci checkout: the folder whose
// go.mod declares Module.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if declaresModule(filepath.Join(d, "go.mod")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no tsys-ci checkout (a go.mod of module %s) above %s: run inside the tsys-ci repository", Module, wd)
		}
	}
}

func declaresModule(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module")) == Module
		}
	}
	return false
}
