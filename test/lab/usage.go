package lab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Usage is what one lab container costs, measured from the host's cgroups.
// Pods run in the node's own cgroup root, outside the container's cgroup,
// so `docker stats` alone misses them: both are counted here.
type Usage struct {
	Name                    string
	ContainerCPU, PodsCPU   float64 // share of one core over the sample
	ContainerMem, PodsMem   uint64  // bytes in use, page cache not counted (as docker stats)
	ContainerCgroup, PodCgr string
}

// MeasureUsage samples CPU over d and memory at the end, for every running
// lab container.
func (l *Lab) MeasureUsage(ctx context.Context, d time.Duration) ([]Usage, error) {
	var us []Usage
	for _, name := range containerNames() {
		out, err := runOut(ctx, nil, nil, "docker", "inspect", "-f", "{{.State.Pid}}", name)
		if err != nil {
			continue
		}
		pid := strings.TrimSpace(string(out))
		if pid == "0" {
			continue
		}
		cg, err := cgroupOf(pid, "cpuacct")
		if err != nil {
			return nil, err
		}
		u := Usage{Name: name, ContainerCgroup: cg}
		if name != LBName {
			u.PodCgr = "/" + name
		}
		us = append(us, u)
	}
	read := func() ([]uint64, time.Time) {
		vals := make([]uint64, 0, 2*len(us))
		for _, u := range us {
			vals = append(vals, readUint("/sys/fs/cgroup/cpuacct"+u.ContainerCgroup+"/cpuacct.usage"))
			if u.PodCgr != "" {
				vals = append(vals, readUint("/sys/fs/cgroup/cpuacct"+u.PodCgr+"/cpuacct.usage"))
			} else {
				vals = append(vals, 0)
			}
		}
		return vals, time.Now()
	}
	before, t0 := read()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(d):
	}
	after, t1 := read()
	secs := t1.Sub(t0).Seconds()
	for i := range us {
		us[i].ContainerCPU = float64(after[2*i]-before[2*i]) / 1e9 / secs
		us[i].ContainerMem = memInUse("/sys/fs/cgroup/memory" + us[i].ContainerCgroup)
		if us[i].PodCgr != "" {
			us[i].PodsCPU = float64(after[2*i+1]-before[2*i+1]) / 1e9 / secs
			us[i].PodsMem = memInUse("/sys/fs/cgroup/memory" + us[i].PodCgr)
		}
	}
	return us, nil
}

// WriteUsage prints a table of usages with a total line.
func WriteUsage(w io.Writer, us []Usage) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "CONTAINER\tCPU %\tMEM MiB\tPODS CPU %\tPODS MEM MiB\t")
	var cpu, pcpu float64
	var mem, pmem uint64
	for _, u := range us {
		fmt.Fprintf(tw, "%s\t%.1f\t%d\t%.1f\t%d\t\n", u.Name, 100*u.ContainerCPU, u.ContainerMem>>20, 100*u.PodsCPU, u.PodsMem>>20)
		cpu, pcpu, mem, pmem = cpu+u.ContainerCPU, pcpu+u.PodsCPU, mem+u.ContainerMem, pmem+u.PodsMem
	}
	fmt.Fprintf(tw, "total\t%.1f\t%d\t%.1f\t%d\t\n", 100*cpu, mem>>20, 100*pcpu, pmem>>20)
	return tw.Flush()
}

func cgroupOf(pid, controller string) (string, error) {
	f, err := os.Open(filepath.Join("/proc", pid, "cgroup"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 {
			for _, c := range strings.Split(parts[1], ",") {
				if c == controller {
					return parts[2], nil
				}
			}
		}
	}
	return "", fmt.Errorf("process %s has no %s cgroup", pid, controller)
}

func readUint(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v
}

// memInUse is usage minus inactive page cache, as docker stats shows it.
func memInUse(dir string) uint64 {
	usage := readUint(dir + "/memory.usage_in_bytes")
	b, err := os.ReadFile(dir + "/memory.stat")
	if err != nil {
		return usage
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "total_inactive_file" {
			v, _ := strconv.ParseUint(f[1], 10, 64)
			if v < usage {
				return usage - v
			}
		}
	}
	return usage
}
