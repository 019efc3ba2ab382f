package demo_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/testenv"
	"github.com/tsys-group/tsys-ci/test/whiteboard"
)

// freezeProxy forwards TCP connections to the current target. freeze makes
// every connection made so far go silent without closing (what a client
// sees of a server whose node froze: nothing, not even a reset), and routes
// new ones to another target ("": they are accepted and never answered, as
// during a failover while the address still leads to the frozen node).
type freezeProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	target string
	gen    int
	conns  []net.Conn
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	go p.serve()
	return p
}

func (p *freezeProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target, gen := p.target, p.gen
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		if target == "" {
			continue // accepted and never answered, like packets to a frozen node
		}
		b, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, b)
		p.mu.Unlock()
		go p.pipe(c, b, gen)
		go p.pipe(b, c, gen)
	}
}

func (p *freezeProxy) frozen(gen int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return gen < p.gen
}

// pipe copies src to dst until src ends; once frozen it drops what it reads
// and, when src ends, leaves dst open.
func (p *freezeProxy) pipe(src, dst net.Conn, gen int) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.frozen(gen) {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !p.frozen(gen) {
				dst.Close()
			}
			return
		}
	}
}

func (p *freezeProxy) freeze(newTarget string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	p.target = newTarget
}

func (p *freezeProxy) route(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
}

func startWhiteboard(t *testing.T, dir string) (*whiteboard.Server, *httptest.Server) {
	t.Helper()
	srv := whiteboard.NewServer("local-1", false, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := srv.Recover(dir, 0); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return srv, ts
}

// TestBrowsersSurviveAFrozenServer is TestDemo's browser half without the
// lab: two Chromium sessions on a whiteboard behind freezeProxy draw and see
// each other's strokes; then the server "freezes" (its connections go
// silent), stops, and a second server takes over the same data; both pages
// must notice through their heartbeat, reconnect, show every stroke, and
// see a new one. Screenshots as in TestDemo.
func TestBrowsersSurviveAFrozenServer(t *testing.T) {
	exe := testenv.LookPath(t, "chromium")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	s1, ts1 := startWhiteboard(t, dir)
	p := newFreezeProxy(t, ts1.Listener.Addr().String())
	base := "http://" + p.ln.Addr().String()
	for i := range 3 {
		body := fmt.Sprintf(`{"kind":"line","points":[10,%d,300,%d],"color":"#d62728","width":3}`, 20+20*i, 40+20*i)
		resp, err := http.Post(base+"/api/boards/local/strokes", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST stroke: %s", resp.Status)
		}
	}
	b := newBrowsers(t, exe)
	b.prefix = "local-"
	if err := b.drawBefore(ctx, base+"/b/local"); err != nil {
		t.Fatal(err)
	}
	p.freeze("")
	// The close frames it sends go nowhere (frozen): do not wait for replies.
	sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
	defer scancel()
	if err := s1.Shutdown(sctx, func(context.Context) error { ts1.Close(); return nil }); err != nil {
		t.Fatal(err)
	}
	_, ts2 := startWhiteboard(t, dir)
	// Both pages notice (heartbeat) and retry into the silent proxy before
	// the new server is reachable: those attempts hang and must be dropped.
	for name, s := range map[string]context.Context{"A": b.a, "B": b.b} {
		if err := waitPage(s, `document.body.dataset.state === "offline" && sock.readyState === WebSocket.CONNECTING`, time.Minute); err != nil {
			t.Fatalf("session %s never noticed its server froze: %v (%s)", name, err, pageStrokes(s))
		}
	}
	p.route(ts2.Listener.Addr().String())
	if err := b.checkAfter(ctx, base+"/b/local"); err != nil {
		t.Fatal(err)
	}
}
