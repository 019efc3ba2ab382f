// Command lab drives the lab cluster (test/lab): make lab-up and
// make lab-down call it.
//
//	go run ./test/lab/cmd/lab up|down|status
//	go run ./test/lab/cmd/lab image      the node image alone (cached)
//	go run ./test/lab/cmd/lab stop NODE [freeze|kill]   (default freeze)
//	go run ./test/lab/cmd/lab start NODE
//	go run ./test/lab/cmd/lab stats [DURATION]   CPU and memory, pods included
//	go run ./test/lab/cmd/lab exec NODE CMD [ARG...]
//	go run ./test/lab/cmd/lab import IMAGE.tar
//	go run ./test/lab/cmd/lab apply MANIFEST
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tsys-group/tsys-ci/test/lab"
	"github.com/tsys-group/tsys-ci/test/labaddons"
)

const usage = `usage: lab up | down | status | image | stats [DURATION] | stop NODE [freeze|kill] | start NODE |
           exec NODE CMD [ARG...] | import IMAGE.tar | apply MANIFEST
nodes: db1 db2 db3 www1 www2 www3`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "lab: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	l, err := lab.Open(lab.Options{})
	if err != nil {
		return err
	}
	need := func(n int) {
		if len(args) < n {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
	}
	switch args[0] {
	case "up":
		// The cluster, then its add-ons (test/labaddons): CoreDNS, MetalLB,
		// storage, the registry and the promote pool.
		if err := l.Up(ctx); err != nil {
			return err
		}
		r, err := labaddons.Install(ctx, l, os.Stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "add-ons ready in %s\n\n", r.Took.Round(100*time.Millisecond))
		if err := labaddons.Status(ctx, os.Stderr, r); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "\nPush images to %s/PROJECT/NAME:TAG (plain HTTP); the nodes pull them from there.\n", r.Addons.Registry)
		return nil
	case "image":
		return l.BuildNodeImage(ctx)
	case "down":
		return l.Down(ctx)
	case "status":
		return l.Status(ctx, os.Stdout)
	case "stop":
		need(2)
		mode := lab.Freeze
		if len(args) > 2 {
			mode = lab.StopMode(args[2])
		}
		start := time.Now()
		if err := l.StopNode(ctx, args[1], mode); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s stopped (%s) in %s\n", args[1], mode, time.Since(start).Round(time.Millisecond))
		return nil
	case "start":
		need(2)
		start := time.Now()
		if err := l.StartNode(ctx, args[1]); err != nil {
			return err
		}
		if err := l.WaitNodesReadySince(ctx, start, 3*time.Minute, args[1]); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s Ready again %s after start\n", args[1], time.Since(start).Round(100*time.Millisecond))
		return nil
	case "stats":
		d := 30 * time.Second
		if len(args) > 1 {
			var err error
			if d, err = time.ParseDuration(args[1]); err != nil {
				return fmt.Errorf("stats: %w (e.g. 30s)", err)
			}
		}
		fmt.Fprintf(os.Stderr, "sampling CPU for %s ...\n", d)
		us, err := l.MeasureUsage(ctx, d)
		if err != nil {
			return err
		}
		return lab.WriteUsage(os.Stdout, us)
	case "exec":
		need(3)
		out, err := l.Exec(ctx, args[1], args[2:]...)
		os.Stdout.Write(out)
		return err
	case "import":
		need(2)
		return l.ImportImage(ctx, args[1])
	case "apply":
		need(2)
		out, err := l.Apply(ctx, args[1])
		os.Stdout.Write(out)
		return err
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	return nil
}
