package whiteboard

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// sendBuffer is how many messages a slow browser may lag behind before the
// server drops its connection (the page reconnects and reloads the board).
const sendBuffer = 256

// Hub fans strokes out to the WebSocket connections watching each board.
type Hub struct {
	mu     sync.Mutex
	boards map[string]map[*peer]struct{}
	closed bool
}

type peer struct {
	conn *websocket.Conn
	send chan []byte
	once sync.Once
	done chan struct{} // closed when the peer is dropped
}

// Message is what travels over the WebSocket, both ways.
//   - server → page: {"type":"board","board":...} once on connect,
//     {"type":"stroke","stroke":...} for every new stroke,
//     {"type":"ack","ref":"…","stroke":...} after the page's own stroke is on disk,
//     {"type":"error","ref":"…","error":"…"},
//     {"type":"pong","ref":"…"} for each ping.
//   - page → server: {"type":"stroke","ref":"…","stroke":{...}},
//     {"type":"ping","ref":"…"}: the page's heartbeat. A server that froze
//     or lost its network sends nothing, not even a TCP reset, so only the
//     missing pong tells the page to reconnect (to the copy that replaced it).
type Message struct {
	Type   string  `json:"type"`
	Ref    string  `json:"ref,omitempty"`
	Board  *Board  `json:"board,omitempty"`
	Stroke *Stroke `json:"stroke,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{boards: map[string]map[*peer]struct{}{}} }

func (h *Hub) join(board string, p *peer) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	if h.boards[board] == nil {
		h.boards[board] = map[*peer]struct{}{}
	}
	h.boards[board][p] = struct{}{}
	return true
}

func (h *Hub) leave(board string, p *peer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.boards[board], p)
	if len(h.boards[board]) == 0 {
		delete(h.boards, board)
	}
}

// Publish queues the stroke for every peer on its board without blocking;
// a peer whose queue is full is dropped.
func (h *Hub) Publish(s Stroke) {
	msg, _ := json.Marshal(Message{Type: "stroke", Stroke: &s}) // a Stroke always encodes
	h.mu.Lock()
	defer h.mu.Unlock()
	for p := range h.boards[s.Board] {
		p.queue(msg)
	}
}

func (p *peer) queue(msg []byte) {
	select {
	case p.send <- msg:
	default:
		p.drop(websocket.StatusPolicyViolation, "too slow: reconnect to reload the board")
	}
}

func (p *peer) drop(code websocket.StatusCode, reason string) {
	p.once.Do(func() {
		close(p.done)
		go p.conn.Close(code, reason)
	})
}

// CloseAll tells every connected page the server is going away and waits
// (up to ctx) for the close handshakes; later joins are refused.
func (h *Hub) CloseAll(ctx context.Context) {
	h.mu.Lock()
	h.closed = true
	var peers []*peer
	for _, ps := range h.boards {
		for p := range ps {
			peers = append(peers, p)
		}
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.once.Do(func() { close(p.done) })
			p.conn.Close(websocket.StatusGoingAway, "server shutting down")
		}()
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		for _, p := range peers {
			p.conn.CloseNow()
		}
	}
}

// writeLoop sends queued messages until the peer is dropped.
func (p *peer) writeLoop(ctx context.Context) {
	for {
		select {
		case <-p.done:
			return
		case <-ctx.Done():
			return
		case msg := <-p.send:
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := p.conn.Write(wctx, websocket.MessageText, msg)
			cancel()
			if err != nil {
				p.drop(websocket.StatusInternalError, "write failed")
				return
			}
		}
	}
}
