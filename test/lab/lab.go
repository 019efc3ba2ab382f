// Package lab runs production's shape on one machine: a real Kubernetes
// 1.34 cluster of six node containers (db1-db3: etcd, API server,
// controller-manager, scheduler and kubelet; www1-www3: kubelet and
// kube-proxy) on the Docker network tsys-lab, with an HAProxy over the three
// API servers as the stable API address.
//
// Up makes it (idempotently), Down removes it, StopNode and StartNode kill
// or freeze a node and bring it back, Exec runs a command on a node, and
// ImportImage and Apply are the hooks the add-ons (CoreDNS, MetalLB,
// storage, registry) use. The design and the timings are in docs/lab.md.
package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tsys-group/tsys-ci/test/testenv"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// StateDirEnv overrides where the lab keeps its state (default <repo>/.lab).
const StateDirEnv = "TSYS_CI_LAB_DIR"

// Options say where the lab lives and where progress goes.
type Options struct {
	// StateDir holds keys, configs, logs and the kubeconfig (default
	// $TSYS_CI_LAB_DIR, else .lab in the repository).
	StateDir string
	// RepoRoot is the tsys-ci repository (default: found above the working
	// directory).
	RepoRoot string
	// Progress receives one line per step (default os.Stderr).
	Progress io.Writer
	// CacheDir is where node images are cached (default ~/.cache/tsys-ci,
	// or $TSYS_CI_CACHE).
	CacheDir string
}

// Lab is a handle on the lab's state folder; the cluster itself is in Docker.
type Lab struct {
	root, state, cache string
	progress           io.Writer
	mu                 sync.Mutex
	kubectl            string // Kubectl's answer, once found
}

// Open returns a handle without changing anything.
func Open(opts Options) (*Lab, error) {
	l := &Lab{root: opts.RepoRoot, state: opts.StateDir, cache: opts.CacheDir, progress: opts.Progress}
	if l.progress == nil {
		l.progress = os.Stderr
	}
	if l.root == "" {
		r, err := testenv.RepoRoot()
		if err != nil {
			return nil, err
		}
		l.root = r
	}
	if l.state == "" {
		l.state = os.Getenv(StateDirEnv)
	}
	if l.state == "" {
		// Docker's names are machine-wide, so there is one lab per machine:
		// a lab already made from another checkout is used, not fought.
		if other := runningLabState(); other != "" {
			l.state = other
		} else {
			l.state = filepath.Join(l.root, ".lab")
		}
	}
	if l.cache == "" {
		l.cache = os.Getenv("TSYS_CI_CACHE")
	}
	if l.cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("finding the cache folder: %w (set TSYS_CI_CACHE)", err)
		}
		l.cache = filepath.Join(home, ".cache", "tsys-ci")
	}
	var err error
	if l.state, err = filepath.Abs(l.state); err != nil {
		return nil, err
	}
	return l, nil
}

// runningLabState is the state folder of a lab already in Docker, if its
// folder is still there.
func runningLabState() string {
	out, err := exec.Command("docker", "ps", "-a", "--filter", "label="+labelLab,
		"--format", `{{.Label "`+labelState+`"}}`).Output()
	if err != nil {
		return ""
	}
	for _, dir := range strings.Fields(string(out)) {
		if _, err := os.Stat(filepath.Join(dir, "kubeconfig")); err == nil {
			return dir
		}
	}
	return ""
}

// RepoRoot is the tsys-ci repository the lab was opened in.
func (l *Lab) RepoRoot() string { return l.root }

// StateDir is the folder holding the lab's keys, configs and logs.
func (l *Lab) StateDir() string { return l.state }

// Kubeconfig is the path of the admin kubeconfig (server: the stable API
// address).
func (l *Lab) Kubeconfig() string { return filepath.Join(l.state, "kubeconfig") }

// RESTConfig reads the admin kubeconfig.
func (l *Lab) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", l.Kubeconfig())
	if err != nil {
		return nil, fmt.Errorf("reading the lab kubeconfig %s: %w (is the lab up? make lab-up)", l.Kubeconfig(), err)
	}
	return cfg, nil
}

// LogDir is where a step's or a node's logs go on the host.
func (l *Lab) LogDir() string { return filepath.Join(l.state, "logs") }

func (l *Lab) logf(format string, args ...any) {
	fmt.Fprintf(l.progress, "[lab %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Lock takes the machine-wide lab lock: one Up, Down or add-on install at a
// time, since every checkout on the machine shares the one lab. It waits,
// saying so.
func (l *Lab) Lock() (unlock func(), err error) {
	dir := filepath.Join(l.cache, "lab")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		l.logf("another lab up/down is running on this machine; waiting for it")
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
	}
	return func() { f.Close() }, nil
}

// step runs one named step, printing its start and its duration; a failure
// names the step and its log.
func (l *Lab) step(name, logName string, fn func(log io.Writer) error) error {
	if err := os.MkdirAll(l.LogDir(), 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(l.LogDir(), logName+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "=== %s %s\n", time.Now().Format(time.RFC3339), name)
	start := time.Now()
	l.logf("%s ...", name)
	if err := fn(f); err != nil {
		fmt.Fprintf(f, "FAILED: %v\n", err)
		return fmt.Errorf("lab step %q failed: %w\n  log: %s", name, err, logPath)
	}
	l.logf("%s: done in %s", name, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// run runs a program with its output appended to log; the error carries the
// last lines of that output.
func run(ctx context.Context, log io.Writer, name string, args ...string) error {
	_, err := runOut(ctx, log, nil, name, args...)
	return err
}

// runOut runs a program and returns its stdout; stderr (and stdout) also go
// to log.
func runOut(ctx context.Context, log io.Writer, stdin io.Reader, name string, args ...string) ([]byte, error) {
	if log == nil {
		log = io.Discard
	}
	fmt.Fprintf(log, "$ %s %s\n", name, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, log)
	cmd.Stderr = io.MultiWriter(&errb, log)
	cmd.Stdin = stdin
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = strings.TrimSpace(out.String())
		}
		if len(msg) > 800 {
			msg = "..." + msg[len(msg)-800:]
		}
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return out.Bytes(), nil
}
