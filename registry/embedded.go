package registry

import (
	"path/filepath"
	"regexp"
	"strings"

	"github.com/tsys-group/tsys-ci/pipeline"
)

// EmbeddedAddr is where `tsys-ci registry serve` listens by default, and so
// where build and push go when no registry is configured: a newcomer can run
// the whole pipeline with nothing else set up.
const EmbeddedAddr = "127.0.0.1:5055"

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// DefaultRepository is the repository used when none is configured: the
// embedded registry, project "library", named after the Jenkins job (or the
// folder the pipeline runs in).
func DefaultRepository(labels map[string]string, wd string) string {
	n := labels[pipeline.LabelJob]
	if n == "" && wd != "" {
		n = filepath.Base(wd)
	}
	n = strings.Trim(nonName.ReplaceAllString(strings.ToLower(n), "-"), "-")
	if n == "" {
		n = "app"
	}
	return EmbeddedAddr + "/library/" + n
}
