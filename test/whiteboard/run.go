package whiteboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Config is the whiteboard process's configuration.
type Config struct {
	Addr            string        // listen address, ":8080"
	DataDir         string        // the volume: lock, log and snapshot
	Version         string        // shown on the page and at /api/version
	CompactEvery    int           // snapshot after this many log records; 0: never
	ShutdownTimeout time.Duration // bound on the graceful stop after SIGTERM
	FailHealth      bool          // fail /healthz and /readyz (the demo's broken version)
}

// Run listens at once (so /healthz answers while the log replays), recovers
// the boards, serves until ctx is cancelled (SIGTERM) and then shuts down
// within cfg.ShutdownTimeout. The listening address is logged as "listening".
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	srv := NewServer(cfg.Version, cfg.FailHealth, log)
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	log.Info("listening", "addr", ln.Addr().String(), "version", cfg.Version, "data", cfg.DataDir)

	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	recovered := make(chan error, 1)
	go func() {
		start := time.Now()
		stats, err := srv.Recover(cfg.DataDir, cfg.CompactEvery)
		if err == nil {
			log.Info("recovered", "snapshotStrokes", stats.SnapshotStrokes, "logRecords", stats.LogRecords,
				"tornBytes", stats.TornBytes, "took", time.Since(start).String())
		}
		recovered <- err
	}()

	var runErr error
	for waiting := true; waiting; {
		select {
		case err := <-recovered:
			recovered = nil
			if err != nil {
				runErr = fmt.Errorf("recovering %s: %w", cfg.DataDir, err)
				waiting = false
			}
		case err := <-served:
			return fmt.Errorf("serving HTTP: %w", err)
		case <-ctx.Done():
			waiting = false
		}
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if recovered != nil { // still replaying: let it finish so the lock is released cleanly
		select {
		case <-recovered:
		case <-sctx.Done():
		}
	}
	if err := srv.Shutdown(sctx, hs.Shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return errors.Join(runErr, err)
	}
	log.Info("stopped")
	return runErr
}
