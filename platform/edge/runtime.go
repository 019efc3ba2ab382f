package edge

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Runtime talks to a running HAProxy: its stats socket (runtime API of the
// worker: servers, addresses) and its master CLI socket (processes, reload).
// HAProxy must run in master-worker mode (-W -S MASTER_SOCKET) with a stats
// socket at level admin.
type Runtime struct {
	StatsSocket  string
	MasterSocket string
}

// command sends one command and returns the whole answer. The stats socket
// closes after one command; the master CLI is told to with "; quit".
func command(ctx context.Context, socket, cmd string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return "", err
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", err
	}
	out, err := io.ReadAll(conn)
	return string(out), err
}

func (r Runtime) stats(ctx context.Context, cmd string) (string, error) {
	out, err := command(ctx, r.StatsSocket, cmd)
	if err != nil {
		return "", fmt.Errorf("HAProxy stats socket %s, command %q: %w (is HAProxy running with 'stats socket %s level admin'?)", r.StatsSocket, cmd, err, r.StatsSocket)
	}
	return out, nil
}

func (r Runtime) master(ctx context.Context, cmd string) (string, error) {
	out, err := command(ctx, r.MasterSocket, cmd+"; quit")
	if err != nil {
		return "", fmt.Errorf("HAProxy master socket %s, command %q: %w (is HAProxy running in master-worker mode with -S %s?)", r.MasterSocket, cmd, err, r.MasterSocket)
	}
	return out, nil
}

// ServerState is where a running server sends traffic, and how much of
// it. A server on an abstract socket (a color pool's) has no Addr or Port
// here: HAProxy shows it as "-" and 0.
type ServerState struct {
	Addr   netip.Addr
	Port   int
	Weight int // the weight in force (srv_uweight): the configured one, or the last set at run time
}

// ServersState reads "show servers state": backend/server -> address.
func (r Runtime) ServersState(ctx context.Context) (map[string]ServerState, error) {
	out, err := r.stats(ctx, "show servers state")
	if err != nil {
		return nil, err
	}
	return parseServersState(out)
}

// parseServersState reads format version 1 of "show servers state": a
// version line, a "# be_id be_name ..." header naming the columns, then one
// line per server.
func parseServersState(out string) (map[string]ServerState, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var cols map[string]int
	state := map[string]ServerState{}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line == "1" && cols == nil:
			continue
		case strings.HasPrefix(line, "# "):
			cols = map[string]int{}
			for i, name := range strings.Fields(line[2:]) {
				cols[name] = i
			}
			continue
		case cols == nil:
			return nil, fmt.Errorf("unexpected answer to 'show servers state': %q", firstLine(out))
		}
		f := strings.Fields(line)
		get := func(col string) (string, error) {
			i, ok := cols[col]
			if !ok || i >= len(f) {
				return "", fmt.Errorf("'show servers state' line %q has no column %s", line, col)
			}
			return f[i], nil
		}
		be, err1 := get("be_name")
		srv, err2 := get("srv_name")
		addr, err3 := get("srv_addr")
		port, err4 := get("srv_port")
		weight, err5 := get("srv_uweight")
		for _, err := range []error{err1, err2, err3, err4, err5} {
			if err != nil {
				return nil, err
			}
		}
		var a netip.Addr
		if addr != "-" { // "-": a server on a Unix or abstract socket
			var err error
			if a, err = netip.ParseAddr(addr); err != nil {
				return nil, fmt.Errorf("'show servers state': server %s/%s has address %q: %v", be, srv, addr, err)
			}
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("'show servers state': server %s/%s has port %q", be, srv, port)
		}
		wt, err := strconv.Atoi(weight)
		if err != nil {
			return nil, fmt.Errorf("'show servers state': server %s/%s has weight %q", be, srv, weight)
		}
		state[be+"/"+srv] = ServerState{Addr: a.Unmap(), Port: p, Weight: wt}
	}
	return state, sc.Err()
}

// SetServerAddr points a running server at a new address and port, with no
// reload: "set server BACKEND/SERVER addr IP port PORT".
func (r Runtime) SetServerAddr(ctx context.Context, backend, server string, to ServerState) error {
	cmd := fmt.Sprintf("set server %s/%s addr %s port %d", backend, server, to.Addr, to.Port)
	out, err := r.stats(ctx, cmd)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "changed") && !strings.Contains(out, "no need to change") {
		return fmt.Errorf("HAProxy refused %q: %s", cmd, strings.TrimSpace(out))
	}
	return nil
}

// SetServerWeight changes a running server's weight, with no reload:
// "set server BACKEND/SERVER weight N". HAProxy answers an empty line when
// it took the weight, and a sentence when it did not ("No such server.",
// a weight out of range).
func (r Runtime) SetServerWeight(ctx context.Context, backend, server string, weight int) error {
	cmd := fmt.Sprintf("set server %s/%s weight %d", backend, server, weight)
	out, err := r.stats(ctx, cmd)
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "" {
		return fmt.Errorf("HAProxy refused %q: %s", cmd, strings.TrimSpace(out))
	}
	return nil
}

// Procs is the master's view of its processes ("show proc").
type Procs struct {
	MasterPID     int
	Reloads       int // reloads of the master since it started
	FailedReloads int // failed reloads since the last good one
	Workers       []Worker
	OldWorkers    []Worker // still finishing their connections after a reload
}

// Worker is one worker process.
type Worker struct {
	PID     int
	Reloads int // how many reloads this worker has lived through
	Uptime  string
}

// Procs asks the master CLI for its processes.
func (r Runtime) Procs(ctx context.Context) (Procs, error) {
	out, err := r.master(ctx, "show proc")
	if err != nil {
		return Procs{}, err
	}
	return parseProcs(out)
}

// parseProcs reads "show proc" of HAProxy 2.6:
//
//	#<PID>   <type>   <reloads>       <uptime>     <version>
//	13820    master   1 [failed: 0]   0d00h10m18s  2.6.12
//	# workers
//	18656    worker   0               0d00h00m01s  2.6.12
//	# old workers
//	...
func parseProcs(out string) (Procs, error) {
	var p Procs
	section := ""
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || strings.HasPrefix(line, "#<"):
			continue
		case strings.HasPrefix(line, "#"):
			section = strings.TrimSpace(strings.TrimPrefix(line, "#"))
			continue
		case len(f) < 4:
			return Procs{}, fmt.Errorf("unexpected line in 'show proc': %q", line)
		}
		pid, err1 := strconv.Atoi(f[0])
		reloads, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			return Procs{}, fmt.Errorf("unexpected line in 'show proc': %q", line)
		}
		switch {
		case f[1] == "master":
			p.MasterPID, p.Reloads = pid, reloads
			if _, rest, ok := strings.Cut(line, "[failed: "); ok {
				n, _, _ := strings.Cut(rest, "]")
				failed, err := strconv.Atoi(strings.TrimSpace(n))
				if err != nil {
					return Procs{}, fmt.Errorf("unexpected failed-reload count in 'show proc': %q", line)
				}
				p.FailedReloads = failed
			}
		case f[1] == "worker" && section == "workers":
			p.Workers = append(p.Workers, Worker{PID: pid, Reloads: reloads, Uptime: lastUptime(f)})
		case f[1] == "worker" && section == "old workers":
			p.OldWorkers = append(p.OldWorkers, Worker{PID: pid, Reloads: reloads, Uptime: lastUptime(f)})
		}
	}
	if p.MasterPID == 0 {
		return Procs{}, fmt.Errorf("'show proc' named no master: %q", firstLine(out))
	}
	return p, nil
}

func lastUptime(f []string) string {
	for _, s := range f[3:] {
		if strings.HasSuffix(s, "s") && strings.Contains(s, "d") {
			return s
		}
	}
	return ""
}

// Reload asks the master to reload: it re-reads the configuration, starts
// new workers and lets the old ones finish their connections. The master
// re-executes itself, so the answer is the connection closing.
func (r Runtime) Reload(ctx context.Context) error {
	_, err := r.master(ctx, "reload")
	return err
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
