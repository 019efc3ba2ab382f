package whiteboard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// whiteboardBinary builds cmd/whiteboard once per test run, static as in
// the image.
func whiteboardBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "whiteboard-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "whiteboard")
		binErr = goBuild(binPath, "crash-test")
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// goBuild builds a static, reproducible whiteboard binary at out.
func goBuild(out, version string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version="+version, "-o", out, "./cmd/whiteboard")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build of cmd/whiteboard: %v\n%s", err, b)
	}
	return nil
}

// child is a whiteboard process; its stderr is parsed for its address.
type child struct {
	cmd  *exec.Cmd
	url  string
	logs *strings.Builder
	mu   sync.Mutex
	done chan error
}

func startChild(t *testing.T, dir string, extra ...string) *child {
	t.Helper()
	cmd := exec.Command(whiteboardBinary(t), append([]string{"-addr", "127.0.0.1:0", "-data", dir}, extra...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, logs: &strings.Builder{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			c.mu.Lock()
			c.logs.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" {
				addr <- l.Addr
			}
		}
		c.done <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	select {
	case a := <-addr:
		c.url = "http://" + a
	case err := <-c.done:
		c.done <- err
		return c // exited before listening; the caller looks at exit()
	case <-time.After(30 * time.Second):
		t.Fatalf("whiteboard did not log its address within 30s:\n%s", c.log())
	}
	return c
}

func (c *child) log() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logs.String()
}

func (c *child) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(c.url + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-c.done:
			t.Fatalf("whiteboard exited (%v) before it was ready:\n%s", err, c.log())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("whiteboard not ready within 30s:\n%s", c.log())
}

func (c *child) exit(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("whiteboard did not exit within 30s:\n%s", c.log())
		return nil
	}
}

// TestKillAndRecover: strokes acknowledged over HTTP and WebSocket, the
// process SIGKILLed (no shutdown, no final fsync) with a half-written
// record left at the log's end, a new process on the same dir: the board
// comes back byte for byte. Then SIGTERM stops it cleanly.
func TestKillAndRecover(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, dir)
	c.waitReady(t)
	for i := range 40 {
		body := fmt.Sprintf(`{"kind":"line","points":[%d,10,%d,200,%d.5,300],"color":"#%06x","width":%d}`, i, i*3, i, i*40000, i%9+1)
		if code, resp := postStroke(t, c.url, "crash", body); code != 201 {
			t.Fatalf("stroke %d: %d %s", i, code, resp)
		}
	}
	postStroke(t, c.url, "crash", `{"kind":"text","text":"ünïcode & <html>","x":5,"y":6}`)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws := dial(t, ctx, c.url, "crash")
	readUntil(t, ctx, ws, "board")
	ws.Write(ctx, websocket.MessageText, []byte(`{"type":"stroke","ref":"w","stroke":{"kind":"line","points":[1,1,2,2]}}`))
	if ack := readUntil(t, ctx, ws, "ack"); ack.Stroke.Seq != 42 {
		t.Fatalf("ws ack %+v", ack)
	}
	_, before := get(t, c.url+"/api/boards/crash")

	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.exit(t)
	torn := AppendRecord(nil, Record{Seq: 43, Payload: []byte(`{"kind":"line","points":[9,9]}`)})
	f, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(torn[:len(torn)-5]) // the write the kill interrupted, never acknowledged
	f.Close()

	c2 := startChild(t, dir)
	c2.waitReady(t)
	_, after := get(t, c2.url+"/api/boards/crash")
	if string(after) != string(before) {
		t.Fatalf("board after SIGKILL and restart differs:\nbefore %s\nafter  %s", before, after)
	}
	if !strings.Contains(c2.log(), `"tornBytes":`+fmt.Sprint(len(torn)-5)) {
		t.Errorf("recovery did not report the torn tail:\n%s", c2.log())
	}
	if err := c2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c2.exit(t); err != nil {
		t.Fatalf("SIGTERM: exit %v:\n%s", err, c2.log())
	}
	if !strings.Contains(c2.log(), `"msg":"stopped"`) {
		t.Errorf("no clean stop logged:\n%s", c2.log())
	}
}

// TestSecondCopyRefused: a second process on the same data dir exits with
// an error naming the lock instead of writing the same log.
func TestSecondCopyRefused(t *testing.T) {
	dir := t.TempDir()
	first := startChild(t, dir)
	first.waitReady(t)
	second := startChild(t, dir)
	if err := second.exit(t); err == nil {
		t.Fatalf("second copy on the same dir kept running:\n%s", second.log())
	}
	if !strings.Contains(second.log(), "locked by another whiteboard process") {
		t.Fatalf("second copy's error does not name the lock:\n%s", second.log())
	}
}
