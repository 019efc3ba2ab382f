package apiserver

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// RunTests is a TestMain body: it starts one Server for the test binary,
// hands it to use (keep its Config in a package variable), runs the tests
// and stops the server. It returns the exit code for os.Exit:
//
//	var cfg *rest.Config
//	func TestMain(m *testing.M) {
//		os.Exit(apiserver.RunTests(m, func(s *apiserver.Server) { cfg = s.Config }))
//	}
//
// A server that cannot start fails the whole binary with the reason: the
// binaries are built from this repository, so nothing outside it is missing.
func RunTests(m *testing.M, use func(*Server)) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := Start(ctx, Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "apiserver: %v\n", err)
		return 1
	}
	defer s.Stop()
	use(s)
	return m.Run()
}
