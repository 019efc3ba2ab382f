// Command whiteboard runs the demo whiteboard (package whiteboard).
//
// Configuration comes from flags, each defaulting to an environment variable
// so the app spec can set it: WHITEBOARD_ADDR, WHITEBOARD_DATA,
// WHITEBOARD_VERSION, WHITEBOARD_COMPACT_EVERY, WHITEBOARD_SHUTDOWN_TIMEOUT,
// WHITEBOARD_FAIL_HEALTH. The version defaults to the one linked in with
// -ldflags "-X main.version=…".
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/tsys-group/tsys-ci/test/whiteboard"
)

var version = "dev"

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(os.Args[1:], log); err != nil {
		log.Error("whiteboard failed", "err", err)
		os.Exit(1)
	}
}

func run(args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("whiteboard", flag.ContinueOnError)
	var cfg whiteboard.Config
	fs.StringVar(&cfg.Addr, "addr", env("WHITEBOARD_ADDR", ":8080"), "listen address")
	fs.StringVar(&cfg.DataDir, "data", env("WHITEBOARD_DATA", "/data"), "data dir (the volume): lock, log, snapshot")
	fs.StringVar(&cfg.Version, "version", env("WHITEBOARD_VERSION", version), "version shown on the page")
	compact, err := strconv.Atoi(env("WHITEBOARD_COMPACT_EVERY", "10000"))
	if err != nil {
		return fmt.Errorf("WHITEBOARD_COMPACT_EVERY: %w", err)
	}
	fs.IntVar(&cfg.CompactEvery, "compact-every", compact, "snapshot after this many log records (0: never)")
	grace, err := time.ParseDuration(env("WHITEBOARD_SHUTDOWN_TIMEOUT", "10s"))
	if err != nil {
		return fmt.Errorf("WHITEBOARD_SHUTDOWN_TIMEOUT: %w", err)
	}
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", grace, "bound on the graceful stop after SIGTERM")
	fs.BoolVar(&cfg.FailHealth, "fail-health", os.Getenv("WHITEBOARD_FAIL_HEALTH") == "1", "fail the health checks (the demo's broken version)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return whiteboard.Run(ctx, cfg, log)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
