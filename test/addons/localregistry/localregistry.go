// Package localregistry runs the real distribution registry (v3, the `registry`
// binary scripts/addon-images.sh builds for the lab) on loopback with its
// storage in a temporary directory, for tests that need a registry but not
// the lab: pushes, pulls, digests, signatures against the real registry API.
package localregistry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tsys-group/tsys-ci/test/testenv"
)

// Registry is one running registry process.
type Registry struct {
	// Addr is host:port, e.g. 127.0.0.1:41234; images are Addr/REPO:TAG.
	Addr string
	// DebugAddr serves /debug/health and /metrics.
	DebugAddr string
	// Dir holds config.yml and data/ (the blobs).
	Dir string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // the process' exit, valid after done is closed
	log  *testenv.SyncBuffer
}

// Config is the registry configuration Start uses. Whatever the
// configuration, the listen addresses and the storage directory are set by
// Start through the registry's REGISTRY_* environment overrides.
const Config = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: /nonexistent
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
  debug:
    addr: 127.0.0.1:0
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`

// Start runs binary (a distribution `registry`) with Config on free loopback
// ports, storing in dir (which must exist), and returns once it answers
// GET /v2/ with 200. Its log goes to logw as well as into errors. Close it.
func Start(ctx context.Context, binary, dir string, logw io.Writer) (*Registry, error) {
	return StartWithConfig(ctx, binary, dir, Config, logw)
}

// StartWithConfig is Start with another configuration (e.g. the lab's own
// config.yml, to check it serves); addresses and storage are still Start's.
func StartWithConfig(ctx context.Context, binary, dir, config string, logw io.Writer) (*Registry, error) {
	var lastErr error
	// A free port can be taken between choosing and binding it: try again.
	for range 3 {
		r, err := start(ctx, binary, dir, config, logw)
		if err == nil {
			return r, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, binary, dir, config string, logw io.Writer) (*Registry, error) {
	free, err := testenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	debugFree, err := testenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	addr, debugAddr := free.String(), debugFree.String()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, fmt.Errorf("making registry storage %s: %w", data, err)
	}
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		return nil, fmt.Errorf("writing %s: %w", cfg, err)
	}
	if logw == nil {
		logw = io.Discard
	}
	r := &Registry{Addr: addr, DebugAddr: debugAddr, Dir: dir, done: make(chan struct{}), log: &testenv.SyncBuffer{}}
	// Not CommandContext: the process lives until Close, not until ctx ends.
	r.cmd = exec.Command(binary, "serve", cfg)
	r.cmd.Env = append(os.Environ(),
		"OTEL_TRACES_EXPORTER=none",
		"REGISTRY_HTTP_ADDR="+addr,
		"REGISTRY_HTTP_DEBUG_ADDR="+debugAddr,
		"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="+data)
	r.cmd.Stdout = io.MultiWriter(logw, r.log)
	r.cmd.Stderr = r.cmd.Stdout
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the registry %s: %w", binary, err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	if err := r.waitReady(ctx, 30*time.Second); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Registry) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Addr+"/v2/", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-r.done:
			return fmt.Errorf("the registry on %s exited before answering (%v); its log:\n%s", r.Addr, r.err, r.log.String())
		case <-ctx.Done():
			return fmt.Errorf("the registry on %s did not answer GET /v2/ with 200 within %s; its log:\n%s", r.Addr, timeout, r.log.String())
		case <-tick.C:
		}
	}
}

// Log returns what the registry has logged so far.
func (r *Registry) Log() string { return r.log.String() }

// Close stops the registry (SIGTERM, then SIGKILL after 5 s) and waits for it.
// The storage directory stays: it belongs to the caller.
func (r *Registry) Close() error {
	select {
	case <-r.done:
		return nil
	default:
	}
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	var exit *exec.ExitError
	if r.err != nil && !errors.As(r.err, &exit) {
		return fmt.Errorf("stopping the registry on %s: %w", r.Addr, r.err)
	}
	return nil
}
