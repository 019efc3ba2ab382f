package testenv

import (
	"fmt"
	"net"
	"testing"
)

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago. A
// program started on it may still lose a race for it; retry where that
// matters.
func FreePort(t testing.TB) int {
	t.Helper()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr.Port
}

// FreeAddr is FreePort for code that returns errors instead of holding a
// test: a loopback address whose port was free a moment ago.
func FreeAddr() (*net.TCPAddr, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("finding a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr), nil
}
