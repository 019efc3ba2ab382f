package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Syncer installs a Model on the HAProxy host it runs on and makes the
// running HAProxy serve it: through the runtime API when only server
// addresses, ports or weights changed, through a validated graceful reload
// otherwise.
type Syncer struct {
	// Dir holds the installed edge files; HAProxy loads Dir/edge.cfg with
	// its own -f, after the company's configuration.
	Dir string
	// HAProxy is the haproxy program used for `haproxy -c`.
	HAProxy string
	// Configs are the company's configuration files, in the order HAProxy
	// loads them, without the fragment.
	Configs []string
	Runtime Runtime
	Options Options
	Log     *slog.Logger
	// ReloadTimeout bounds the wait for new workers after a reload.
	ReloadTimeout time.Duration
}

// Action says how a sync changed the running HAProxy.
type Action string

// The ways a sync can end.
const (
	ActionNone    Action = "none"    // already in sync: nothing was written or changed
	ActionRuntime Action = "runtime" // server addresses or weights changed through the runtime API, no reload
	ActionReload  Action = "reload"  // new files validated, installed and loaded by a graceful reload
)

// Result reports one sync.
type Result struct {
	Action  Action
	Changes []string // one line per change, for logs
	// MissingCerts are routed host names with no certificate file yet: the
	// crt-list leaves them out (they get the default certificate) until the
	// certificate tooling writes them.
	MissingCerts []string
}

// ErrInvalidConfig marks a configuration `haproxy -c` refused; nothing was
// installed and HAProxy keeps running what it ran.
var ErrInvalidConfig = errors.New("the new HAProxy configuration does not validate")

// Sync makes the running HAProxy serve m.
func (s *Syncer) Sync(ctx context.Context, m *Model) (Result, error) {
	unlock, err := s.lock()
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	desired, missing, err := s.renderForInstall(m)
	if err != nil {
		return Result{}, err
	}
	installed, err := ReadFiles(s.Dir)
	if err != nil {
		return Result{}, err
	}
	running, err := s.Runtime.ServersState(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("reading what HAProxy runs: %w", err)
	}
	want := wantedServers(m)
	var res Result
	if sameStructure(desired, installed) && sameServerSet(want, running) {
		res, err = s.syncRuntime(ctx, desired, installed, want, running)
	} else {
		res, err = s.syncReload(ctx, desired, installed, want)
	}
	res.MissingCerts = missing
	return res, err
}

// renderForInstall renders m, leaving out of the crt-list the hosts whose
// certificate file does not exist yet: HAProxy refuses a crt-list naming a
// missing file, and one new app without a certificate must not block the
// others. Only a file that does not exist counts as missing: any other
// error (no access to --cert-dir, --cert-dir not a directory) is the
// operator's to fix, and would otherwise pass for "waiting for a
// certificate".
func (s *Syncer) renderForInstall(m *Model) (Files, []string, error) {
	f := Render(m, s.Options)
	var crt bytes.Buffer
	var missing []string
	for _, line := range strings.SplitAfter(string(f.CrtList), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && !strings.HasPrefix(fields[0], "#") {
			_, err := os.Stat(fields[0])
			if errors.Is(err, fs.ErrNotExist) {
				missing = append(missing, fields[len(fields)-1])
				continue
			}
			if err != nil {
				return Files{}, nil, fmt.Errorf("checking the certificate of %s: %w; sync needs to read --cert-dir %s (haproxy -c loads every certificate)",
					fields[len(fields)-1], err, s.Options.CertDir)
			}
		}
		crt.WriteString(line)
	}
	f.CrtList = crt.Bytes()
	return f, missing, nil
}

func sameStructure(a, b Files) bool {
	return Skeleton(a.Config) == Skeleton(b.Config) && bytes.Equal(a.HostMap, b.HostMap) &&
		bytes.Equal(a.CrtList, b.CrtList) && bytes.Equal(a.Hosts, b.Hosts)
}

// wantedServers is where every server of m must send traffic, and with
// which weight: a version's percent for a pool's top-level server, 1
// (HAProxy's default, which the fragment leaves unsaid) for the others.
func wantedServers(m *Model) map[string]ServerState {
	want := map[string]ServerState{}
	for _, b := range m.Backends {
		for _, srv := range b.Servers {
			want[b.Name+"/"+srv.Name] = ServerState{Addr: srv.Addr, Port: srv.Port, Weight: 1}
		}
		for _, p := range b.Pools {
			want[b.Name+"/"+p.Color] = ServerState{Weight: p.Weight}
			for _, srv := range p.Servers {
				want[p.Name+"/"+srv.Name] = ServerState{Addr: srv.Addr, Port: srv.Port, Weight: 1}
			}
		}
	}
	return want
}

// sameServerSet reports whether HAProxy runs exactly the edge's servers
// (by name): otherwise it runs another fragment than the installed one and
// only a reload brings it in line.
func sameServerSet(want, running map[string]ServerState) bool {
	n := 0
	for key := range running {
		if !strings.HasPrefix(key, "tsys-ci.") {
			continue
		}
		if _, ok := want[key]; !ok {
			return false
		}
		n++
	}
	return n == len(want)
}

// syncRuntime applies weights, then addresses, through the runtime API:
// weights first because promote waits for them. Each change is checked
// with HAProxy's answer, and all of them at the end with "show servers
// state"; then the files are rewritten, so a later reload or restart
// keeps what HAProxy runs.
func (s *Syncer) syncRuntime(ctx context.Context, desired, installed Files, want, running map[string]ServerState) (Result, error) {
	res := Result{Action: ActionNone}
	keys := slices.Sorted(maps.Keys(want))
	for _, key := range keys {
		to, from := want[key], running[key]
		if to.Weight == from.Weight {
			continue
		}
		backend, server, _ := strings.Cut(key, "/")
		if err := s.Runtime.SetServerWeight(ctx, backend, server, to.Weight); err != nil {
			return res, fmt.Errorf("changing the weight of server %s at run time: %w", key, err)
		}
		res.Action = ActionRuntime
		res.Changes = append(res.Changes, fmt.Sprintf("server %s: weight %d -> %d (runtime API, no reload)", key, from.Weight, to.Weight))
	}
	for _, key := range keys {
		to, from := want[key], running[key]
		if to.Addr == from.Addr && to.Port == from.Port {
			continue
		}
		backend, server, _ := strings.Cut(key, "/")
		if err := s.Runtime.SetServerAddr(ctx, backend, server, to); err != nil {
			return res, fmt.Errorf("changing server %s at run time: %w", key, err)
		}
		res.Action = ActionRuntime
		res.Changes = append(res.Changes, fmt.Sprintf("server %s: %s:%d -> %s:%d (runtime API, no reload)", key, from.Addr, from.Port, to.Addr, to.Port))
	}
	if res.Action == ActionRuntime {
		now, err := s.Runtime.ServersState(ctx)
		if err != nil {
			return res, fmt.Errorf("checking the runtime changes: %w", err)
		}
		for _, key := range keys {
			if now[key] != want[key] {
				return res, fmt.Errorf("HAProxy took the runtime changes but 'show servers state' shows server %s as %+v, not %+v; run tsys-ci edge sync again, and check that no one else changes HAProxy's servers", key, now[key], want[key])
			}
		}
	}
	if res.Action == ActionNone && bytes.Equal(desired.Config, installed.Config) {
		return res, nil
	}
	// The files follow, so the next reload or restart keeps the addresses.
	if err := desired.Write(s.Dir); err != nil {
		return res, err
	}
	if res.Action == ActionNone {
		res.Action = ActionRuntime
		res.Changes = append(res.Changes, "installed files brought in line with what HAProxy already runs")
	}
	return res, nil
}

func (s *Syncer) syncReload(ctx context.Context, desired, installed Files, want map[string]ServerState) (Result, error) {
	res := Result{Action: ActionReload, Changes: describeChanges(installed, desired)}
	if err := s.validate(ctx, desired); err != nil {
		return Result{Action: ActionNone}, err
	}
	before, err := s.Runtime.Procs(ctx)
	if err != nil {
		return Result{Action: ActionNone}, fmt.Errorf("before reloading: %w", err)
	}
	if err := desired.Write(s.Dir); err != nil {
		return Result{Action: ActionNone}, err
	}
	if err := s.reload(ctx, before, want); err != nil {
		// Keep the disk telling the truth about what runs.
		if rerr := installed.Write(s.Dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("restoring the previous files: %w", rerr))
		}
		return Result{Action: ActionNone}, err
	}
	return res, nil
}

// validate has `haproxy -c` check the company's configuration with the new
// files, staged beside the installed ones, exactly as a reload would load
// them. The staged copy is removed either way.
func (s *Syncer) validate(ctx context.Context, f Files) error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("creating the edge directory: %w", err)
	}
	stage, err := os.MkdirTemp(s.Dir, ".staging-")
	if err != nil {
		return fmt.Errorf("staging the new edge files: %w", err)
	}
	defer os.RemoveAll(stage)
	if err := f.Write(stage); err != nil {
		return err
	}
	args := []string{"-c"}
	for _, c := range s.Configs {
		args = append(args, "-f", c)
	}
	args = append(args, "-f", filepath.Join(stage, FileConfig))
	cmd := exec.CommandContext(ctx, s.HAProxy, args...)
	cmd.Env = append(os.Environ(), EnvEdgeDir+"="+stage)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w; nothing was installed and HAProxy keeps serving its current configuration. %s %s said (%v):\n%s",
			ErrInvalidConfig, s.HAProxy, strings.Join(args, " "), err, alerts(out))
	}
	return nil
}

// alerts keeps HAProxy's ALERT lines (the reasons), or all of its output.
func alerts(out []byte) string {
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "[ALERT]") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	if len(keep) == 0 {
		return strings.TrimSpace(string(out))
	}
	return strings.Join(keep, "\n")
}

// reload asks the master to reload and waits until a new worker serves
// exactly the wanted servers. The old workers finish their connections.
func (s *Syncer) reload(ctx context.Context, before Procs, want map[string]ServerState) error {
	timeout := s.ReloadTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.Runtime.Reload(ctx); err != nil {
		return fmt.Errorf("reloading HAProxy: %w", err)
	}
	old := map[int]bool{}
	for _, w := range before.Workers {
		old[w.PID] = true
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("interrupted while waiting for HAProxy's new workers (last: %v): %w", last, context.Cause(ctx))
			}
			return fmt.Errorf("HAProxy did not come up with the new configuration within %s (last: %v); the old workers keep serving", timeout, last)
		case <-tick.C:
		}
		procs, err := s.Runtime.Procs(ctx)
		if err != nil {
			last = err // the master re-executes itself during a reload
			continue
		}
		if procs.Reloads <= before.Reloads {
			last = fmt.Errorf("master has not reloaded yet (reloads %d)", procs.Reloads)
			continue
		}
		if procs.FailedReloads > 0 {
			return fmt.Errorf("HAProxy's reload failed (show proc: %d failed) although haproxy -c passed; the old workers keep serving; see HAProxy's log", procs.FailedReloads)
		}
		if !slices.ContainsFunc(procs.Workers, func(w Worker) bool { return !old[w.PID] }) {
			last = errors.New("no new worker yet")
			continue
		}
		running, err := s.Runtime.ServersState(ctx)
		if err != nil {
			last = err
			continue
		}
		if !sameServerSet(want, running) || !sameState(want, running) {
			last = fmt.Errorf("the new worker does not serve the edge's servers (is HAProxy started with -f %s?)", filepath.Join(s.Dir, FileConfig))
			continue
		}
		return nil
	}
}

func sameState(want, running map[string]ServerState) bool {
	for k, v := range want {
		if running[k] != v {
			return false
		}
	}
	return true
}

// describeChanges lists, one line each, the sections and routes added or
// removed between two renderings.
func describeChanges(old, new Files) []string {
	var out []string
	diff := func(what string, a, b []byte, keep func(string) bool) {
		before, after := lineSet(a, keep), lineSet(b, keep)
		for _, l := range slices.Sorted(maps.Keys(after)) {
			if !before[l] {
				out = append(out, fmt.Sprintf("%s added: %s", what, l))
			}
		}
		for _, l := range slices.Sorted(maps.Keys(before)) {
			if !after[l] {
				out = append(out, fmt.Sprintf("%s removed: %s", what, l))
			}
		}
	}
	section := func(l string) bool { return strings.HasPrefix(l, "backend ") || strings.HasPrefix(l, "frontend ") }
	diff("section", old.Config, new.Config, section)
	noComment := func(l string) bool { return l != "" && !strings.HasPrefix(l, "#") }
	diff("route", old.HostMap, new.HostMap, noComment)
	diff("certificate", old.CrtList, new.CrtList, noComment)
	if len(out) == 0 {
		out = append(out, "fragment changed (server options or settings)")
	}
	return out
}

func lineSet(data []byte, keep func(string) bool) map[string]bool {
	set := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		if keep(l) {
			set[l] = true
		}
	}
	return set
}

// lock keeps two syncs on one host (a --watch and a manual run) from
// interleaving: an exclusive flock on DIR/.lock.
func (s *Syncer) lock() (func(), error) {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the edge directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking the edge directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}
