package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tsys-group/tsys-ci/registry"
)

// Default places of the results, relative to the workspace.
const (
	DefaultBuildResult = ".tsys-ci/build.json"
	DefaultPushResult  = ".tsys-ci/push.json"
	DefaultLayout      = ".tsys-ci/image"
)

// BuildResult is what tsys-ci build writes and tsys-ci push reads.
type BuildResult struct {
	Digest string            `json:"digest"`
	Layout string            `json:"layout"`
	Labels map[string]string `json:"labels"`
	// Contents and Build are what `push --sign` makes the SBOM and the
	// provenance from; a result from an older tsys-ci has neither, and
	// push then attaches none.
	Contents *registry.Contents `json:"contents,omitempty"`
	Build    *BuildRecord       `json:"build,omitempty"`
}

// BuildRecord is how the image was built: from what, where and with which
// parameters.
type BuildRecord struct {
	Source      string `json:"source,omitempty"` // repository URL
	Commit      string `json:"commit,omitempty"`
	Branch      string `json:"branch,omitempty"`
	Job         string `json:"job,omitempty"`
	BuildNumber string `json:"buildNumber,omitempty"`
	JenkinsURL  string `json:"jenkinsURL,omitempty"`
	BuildURL    string `json:"buildURL,omitempty"`
	// Tool is the tsys-ci that built it ("tsys-ci v1.2.3").
	Tool       string          `json:"tool,omitempty"`
	Parameters BuildParameters `json:"parameters"`
}

// BuildParameters are the build's inputs as given (flags, or their
// defaults), the "external parameters" of its provenance.
type BuildParameters struct {
	Context    string   `json:"context"`
	Base       string   `json:"base"`
	Platform   string   `json:"platform"`
	Workdir    string   `json:"workdir"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	User       string   `json:"user,omitempty"`
	Ports      []string `json:"ports,omitempty"`
	Labels     []string `json:"labels,omitempty"`
	BuildTime  string   `json:"buildTime,omitempty"` // RFC 3339, the image's creation time
}

// PushResult is what tsys-ci push writes and tsys-ci promote reads.
type PushResult struct {
	Image  string   `json:"image"` // HOST/PROJECT/NAME@sha256:...
	Digest string   `json:"digest"`
	Tags   []string `json:"tags"`
	Signed bool     `json:"signed"`
	// Attested lists the predicate types of the attestations attached
	// (the SBOM's and the provenance's), when signed.
	Attested []string `json:"attested,omitempty"`
}

// WriteJSON writes v as indented JSON to path, creating its folder, through
// a temporary file so a reader never sees half a result.
func WriteJSON(path string, v any) error { return writeJSONFile(path, v, 0o644) }

// ReadBuildResult reads a build result; what says which step wanted it.
func ReadBuildResult(path string) (BuildResult, error) {
	var r BuildResult
	if err := readJSON(path, &r, "run 'tsys-ci build' first, or pass --from"); err != nil {
		return r, err
	}
	if r.Digest == "" || r.Layout == "" {
		return r, fmt.Errorf("reading %s: no digest or layout in it; run 'tsys-ci build' again", path)
	}
	return r, nil
}

// ReadPushResult reads a push result.
func ReadPushResult(path string) (PushResult, error) {
	var r PushResult
	if err := readJSON(path, &r, "run 'tsys-ci push' first"); err != nil {
		return r, err
	}
	if r.Image == "" || r.Digest == "" {
		return r, fmt.Errorf("reading %s: no image or digest in it; run 'tsys-ci push' again", path)
	}
	return r, nil
}

func readJSON(path string, v any, hint string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading %s: it does not exist; %s", path, hint)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading %s: not valid JSON (%v); %s", path, err, hint)
	}
	return nil
}

// WriteSecret writes v as JSON to path readable by its owner only, from the
// first byte on (a robot account's login, for Jenkins' credentials store).
func WriteSecret(path string, v any) error { return writeJSONFile(path, v, 0o600) }

// WriteSecretText writes text and a newline to path readable by its owner
// only (a webhook secret, for tsys-ci serve).
func WriteSecretText(path, text string) error {
	return writeFile(path, []byte(text+"\n"), 0o600)
}

// ReadSecretText reads a file WriteSecretText wrote, without the newline;
// "" when it does not exist.
func ReadSecretText(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// writeJSONFile writes v as indented JSON to path with mode perm, creating
// its folder, through a temporary file renamed over path. A stale temporary
// file is removed first: os.WriteFile keeps an existing file's mode, which
// could leave a secret readable by others.
func writeJSONFile(path string, v any, perm os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return writeFile(path, append(b, '\n'), perm)
}

// writeFile writes data to path with mode perm, creating its folder,
// through a new temporary file in the same folder renamed over path. The
// temporary file is created exclusively (O_EXCL, mode 0600 from the first
// byte) under a random name: nothing planted in the folder (a symlink, a
// file readable by others) is opened or followed.
func writeFile(path string, b []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		done = true
		return fmt.Errorf("writing %s: %w", path, err)
	}
	done = true
	return nil
}
