package whiteboard

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// startServer runs a recovered server on dir behind httptest.
func startServer(t *testing.T, dir string) (*Server, *httptest.Server) {
	t.Helper()
	srv := NewServer("test-1", false, testLogger(t))
	if _, err := srv.Recover(dir, 0); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		srv.Shutdown(context.Background(), func(context.Context) error { return nil })
	})
	return srv, ts
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func postStroke(t *testing.T, base, board, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(base+"/api/boards/"+board+"/strokes", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func dial(t *testing.T, ctx context.Context, base, board string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/api/boards/"+board+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// readUntil reads messages until one of type typ arrives (the deadline is ctx's).
func readUntil(t *testing.T, ctx context.Context, c *websocket.Conn, typ string) Message {
	t.Helper()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for a %q message: %v", typ, err)
		}
		var m Message
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("bad message %s: %v", data, err)
		}
		if m.Type == typ {
			return m
		}
	}
}

func TestAPIAndPage(t *testing.T) {
	_, ts := startServer(t, t.TempDir())
	if code, body := get(t, ts.URL+"/api/boards/empty"); code != 200 || string(body) != `{"id":"empty","strokes":[]}`+"\n" {
		t.Fatalf("empty board: %d %s", code, body)
	}
	code, body := postStroke(t, ts.URL, "b1", `{"kind":"line","points":[1,2,3,4],"color":"#ff0000","width":3}`)
	if code != 201 || !strings.Contains(string(body), `"seq":1`) {
		t.Fatalf("post: %d %s", code, body)
	}
	postStroke(t, ts.URL, "b1", `{"kind":"text","text":"hello","x":10,"y":20}`)
	_, body = get(t, ts.URL+"/api/boards/b1")
	var b Board
	if err := json.Unmarshal(body, &b); err != nil || len(b.Strokes) != 2 || b.Strokes[1].Text != "hello" || b.Strokes[1].Color != defaultLine {
		t.Fatalf("board b1: %s (%v)", body, err)
	}
	for _, bad := range []string{`{"kind":"line","points":[1]}`, `{"kind":"blob"}`, `{"kind":"text","text":""}`,
		`{"kind":"line","points":[1,2],"color":"red"}`, `{"kind":"line","points":[1,2],"extra":1}`, `not json`} {
		if code, body := postStroke(t, ts.URL, "b1", bad); code != 400 {
			t.Errorf("bad stroke %s: %d %s", bad, code, body)
		}
	}
	if code, _ := postStroke(t, ts.URL, "bad%20id", `{"kind":"text","text":"x"}`); code != 400 {
		t.Errorf("bad board id: %d", code)
	}
	if _, body := get(t, ts.URL+"/api/version"); string(body) != `{"version":"test-1"}`+"\n" {
		t.Errorf("version: %s", body)
	}
	if code, body := get(t, ts.URL+"/b/b1"); code != 200 || !bytes.Contains(body, []byte(`<span id="version">test-1</span>`)) {
		t.Errorf("page: %d, version missing", code)
	}
	if code, _ := get(t, ts.URL+"/readyz"); code != 200 {
		t.Errorf("readyz %d", code)
	}
}

func TestNotReadyBeforeRecovery(t *testing.T) {
	srv := NewServer("v", false, testLogger(t))
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	if code, _ := get(t, ts.URL+"/healthz"); code != 200 {
		t.Errorf("healthz before recovery: %d", code)
	}
	if code, _ := get(t, ts.URL+"/readyz"); code != 503 {
		t.Errorf("readyz before recovery: %d", code)
	}
	if code, _ := get(t, ts.URL+"/api/boards/x"); code != 503 {
		t.Errorf("API before recovery: %d", code)
	}
	broken := httptest.NewServer(NewServer("v", true, testLogger(t)).Handler())
	defer broken.Close()
	if code, _ := get(t, broken.URL+"/healthz"); code != 500 {
		t.Errorf("healthz of the broken version: %d", code)
	}
}

// TestWebSocketFanOut: a stroke sent by one WebSocket client is acknowledged
// to it and arrives at the other; one posted over HTTP reaches both.
func TestWebSocketFanOut(t *testing.T) {
	_, ts := startServer(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := dial(t, ctx, ts.URL, "live"), dial(t, ctx, ts.URL, "live")
	readUntil(t, ctx, a, "board")
	readUntil(t, ctx, b, "board")
	msg := `{"type":"stroke","ref":"r1","stroke":{"kind":"line","points":[5,5,50,50],"color":"#00aa00","width":2}}`
	if err := a.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	ack := readUntil(t, ctx, a, "ack")
	if ack.Ref != "r1" || ack.Stroke == nil || ack.Stroke.Seq != 1 {
		t.Fatalf("ack %+v", ack)
	}
	got := readUntil(t, ctx, b, "stroke")
	if got.Stroke.Seq != 1 || got.Stroke.Color != "#00aa00" || len(got.Stroke.Points) != 4 {
		t.Fatalf("b got %+v", got.Stroke)
	}
	postStroke(t, ts.URL, "live", `{"kind":"text","text":"via http"}`)
	for _, c := range []*websocket.Conn{a, b} {
		if m := readUntil(t, ctx, c, "stroke"); m.Stroke.Text != "via http" {
			t.Fatalf("http stroke over ws: %+v", m.Stroke)
		}
	}
	a.Write(ctx, websocket.MessageText, []byte(`{"type":"stroke","ref":"r2","stroke":{"kind":"nope"}}`))
	if m := readUntil(t, ctx, a, "error"); m.Ref != "r2" || !strings.Contains(m.Error, "kind") {
		t.Fatalf("error reply %+v", m)
	}
}

// The page's heartbeat: each ping is answered with a pong carrying its ref.
func TestWebSocketPingPong(t *testing.T) {
	_, ts := startServer(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dial(t, ctx, ts.URL, "beat")
	readUntil(t, ctx, c, "board")
	for _, ref := range []string{"p1", "p2"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"ping","ref":"`+ref+`"}`)); err != nil {
			t.Fatal(err)
		}
		if m := readUntil(t, ctx, c, "pong"); m.Ref != ref {
			t.Fatalf("pong %+v, want ref %s", m, ref)
		}
	}
	if _, body := get(t, ts.URL+"/api/boards/beat"); strings.Contains(string(body), "seq") {
		t.Fatalf("a ping became a stroke: %s", body)
	}
}

// TestShutdownClosesSockets: Shutdown tells connected pages the server is
// going away, refuses API calls, and releases the data dir.
func TestShutdownClosesSockets(t *testing.T) {
	dir := t.TempDir()
	srv := NewServer("v", false, testLogger(t))
	if _, err := srv.Recover(dir, 0); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dial(t, ctx, ts.URL, "x")
	readUntil(t, ctx, c, "board")
	readErr := make(chan error, 1)
	go func() { // a page keeps reading, so it answers the close handshake
		_, _, err := c.Read(ctx)
		readErr <- err
	}()
	if err := srv.Shutdown(ctx, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	err := <-readErr
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("client saw %v, want going away", err)
	}
	if code, _ := get(t, ts.URL+"/readyz"); code != 503 {
		t.Errorf("readyz after shutdown: %d", code)
	}
	w, _, err := Open(dir) // the lock is free again
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
}

func TestStoreCompactsAndRecovers(t *testing.T) {
	dir := t.TempDir()
	s, _, err := OpenStore(dir, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if _, err := s.Add("c", Stroke{Kind: KindLine, Points: []float64{float64(i), 1}}); err != nil {
			t.Fatal(err)
		}
	}
	want := mustJSON(s.Board("c"))
	s.Close()
	s, stats, err := OpenStore(dir, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if stats.SnapshotStrokes != 6 || stats.LogRecords != 1 {
		t.Fatalf("stats %+v, want 6 from the snapshot and 1 from the log", stats)
	}
	if got := mustJSON(s.Board("c")); !bytes.Equal(got, want) {
		t.Fatalf("board after compaction and recovery:\n%s\nwant\n%s", got, want)
	}
}

// TestFailedFsyncIsNeverAcknowledged: when the disk fails the fsync, the
// stroke is refused (503), not shown on the board nor sent to watchers, every
// later stroke is refused too, and the health checks fail so the kubelet
// restarts the process into recovery.
func TestFailedFsyncIsNeverAcknowledged(t *testing.T) {
	srv, ts := startServer(t, t.TempDir())
	if code, _ := postStroke(t, ts.URL, "d", `{"kind":"text","text":"kept"}`); code != 201 {
		t.Fatal("first stroke refused")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	watcher := dial(t, ctx, ts.URL, "d")
	readUntil(t, ctx, watcher, "board")
	wal := srv.store.Load().wal
	wal.mu.Lock()
	wal.sync = func(*os.File) error { return syscall.EIO }
	wal.mu.Unlock()
	for _, text := range []string{"lost", "after"} {
		if code, body := postStroke(t, ts.URL, "d", `{"kind":"text","text":"`+text+`"}`); code != 503 || !strings.Contains(string(body), "fsync") {
			t.Fatalf("stroke %q with a failing fsync: %d %s", text, code, body)
		}
	}
	if _, body := get(t, ts.URL+"/api/boards/d"); strings.Count(string(body), `"kind"`) != 1 {
		t.Fatalf("board shows an unacknowledged stroke: %s", body)
	}
	if code, _ := get(t, ts.URL+"/healthz"); code != 500 {
		t.Errorf("healthz after a failed fsync: %d", code)
	}
	if code, _ := get(t, ts.URL+"/readyz"); code != 503 {
		t.Errorf("readyz after a failed fsync: %d", code)
	}
	// A stroke sent over the socket is refused too, and the next message
	// the watcher gets is that refusal: the refused HTTP strokes never
	// reached it.
	watcher.Write(ctx, websocket.MessageText, []byte(`{"type":"stroke","ref":"x","stroke":{"kind":"text","text":"ws"}}`))
	_, data, err := watcher.Read(ctx)
	var m Message
	if err != nil || json.Unmarshal(data, &m) != nil || m.Type != "error" || m.Ref != "x" || !strings.Contains(m.Error, "fsync") {
		t.Fatalf("watcher's next message: %s (%v)", data, err)
	}
}
