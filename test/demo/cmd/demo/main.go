// Command demo is `make demo` and `make demo-down` (test/demo).
//
//	go run ./test/demo/cmd/demo [up]     the seven narrated steps
//	go run ./test/demo/cmd/demo down     remove the demo's apps and .lab/demo
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tsys-group/tsys-ci/test/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := "up"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	var err error
	switch cmd {
	case "up":
		_, err = demo.Run(ctx, demo.Options{SkipDrill: os.Getenv("DEMO_SKIP_DRILL") == "1"})
	case "down":
		err = demo.Down(ctx, "", os.Stderr)
	default:
		fmt.Fprintln(os.Stderr, "usage: demo [up|down]")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "\nmake demo: %v\n", err)
		os.Exit(1)
	}
}
