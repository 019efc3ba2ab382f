package whiteboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/coder/websocket"
)

//go:embed static/index.html
var static embed.FS

var page = template.Must(template.ParseFS(static, "static/index.html"))

// DefaultBoard is the board the page opens at "/".
const DefaultBoard = "main"

// Server serves the page, the API and the WebSocket. It answers API calls
// only after Recover has rebuilt the boards from the data dir.
type Server struct {
	version    string
	failHealth bool
	log        *slog.Logger
	hub        *Hub
	store      atomic.Pointer[Store]
	stopping   atomic.Bool
}

// NewServer returns a server for version that is not ready yet. failHealth
// makes /healthz and /readyz fail: the demo's deliberately broken version.
func NewServer(version string, failHealth bool, log *slog.Logger) *Server {
	return &Server{version: version, failHealth: failHealth, log: log, hub: NewHub()}
}

// Recover opens the data dir (lock, snapshot, log replay); the server is
// ready when it returns nil.
func (s *Server) Recover(dir string, compactEvery int) (RecoveryStats, error) {
	st, stats, err := OpenStore(dir, compactEvery, s.hub.Publish)
	if err != nil {
		return stats, err
	}
	s.store.Store(st)
	return stats, nil
}

// Ready reports whether recovery finished and the server is not stopping.
func (s *Server) Ready() bool { return s.store.Load() != nil && !s.stopping.Load() }

// Handler routes every request.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /b/{id}", s.page)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /api/version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"version": s.version})
	})
	mux.HandleFunc("GET /api/boards/{id}", s.withStore(s.getBoard))
	mux.HandleFunc("POST /api/boards/{id}/strokes", s.withStore(s.postStroke))
	mux.HandleFunc("GET /api/boards/{id}/ws", s.withStore(s.socket))
	return mux
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" {
		id = DefaultBoard
	}
	if !ValidBoardID(id) {
		http.Error(w, "board id must be 1-64 letters, digits, - or _", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := page.Execute(w, map[string]string{"Version": s.version, "Board": id}); err != nil {
		s.log.Error("rendering page", "err", err)
	}
}

// healthz fails on purpose (the demo's broken version) or when the log
// failed a write or fsync: then the process must restart and recover, and
// the kubelet's liveness check does that.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if s.failHealth {
		http.Error(w, "unhealthy on purpose (WHITEBOARD_FAIL_HEALTH)", http.StatusInternalServerError)
		return
	}
	if st := s.store.Load(); st != nil && st.Err() != nil {
		http.Error(w, st.Err().Error(), http.StatusInternalServerError)
		return
	}
	w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.failHealth:
		http.Error(w, "unhealthy on purpose (WHITEBOARD_FAIL_HEALTH)", http.StatusInternalServerError)
	case s.stopping.Load():
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	case s.store.Load() == nil:
		http.Error(w, "recovering the boards from the log", http.StatusServiceUnavailable)
	case s.store.Load().Err() != nil:
		http.Error(w, s.store.Load().Err().Error(), http.StatusServiceUnavailable)
	default:
		w.Write([]byte("ready\n"))
	}
}

func (s *Server) withStore(h func(http.ResponseWriter, *http.Request, *Store, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !ValidBoardID(id) {
			writeError(w, http.StatusBadRequest, "board id must be 1-64 letters, digits, - or _")
			return
		}
		st := s.store.Load()
		if st == nil || s.stopping.Load() {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "not ready: recovering or shutting down; retry")
			return
		}
		h(w, r, st, id)
	}
}

func (s *Server) getBoard(w http.ResponseWriter, _ *http.Request, st *Store, id string) {
	b := st.Board(id)
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) postStroke(w http.ResponseWriter, r *http.Request, st *Store, id string) {
	var in Stroke
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxPayload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "decoding stroke: "+err.Error())
		return
	}
	out, err := s.add(st, id, in)
	if err != nil {
		writeError(w, statusFor(err), err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// add stores one stroke; a nil error means it is on disk.
func (s *Server) add(st *Store, id string, in Stroke) (Stroke, error) {
	out, err := st.Add(id, in)
	var ce *CompactError
	if errors.As(err, &ce) {
		s.log.Warn("compaction failed; the log keeps growing", "err", err)
		return out, nil
	}
	if err != nil {
		var bad *BadStroke
		if !errors.As(err, &bad) {
			s.log.Error("storing stroke", "board", id, "err", err)
		}
	}
	return out, err
}

func statusFor(err error) int {
	var bad *BadStroke
	if errors.As(err, &bad) {
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}

func (s *Server) socket(w http.ResponseWriter, r *http.Request, st *Store, id string) {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered the request
	}
	conn.SetReadLimit(MaxPayload + 4096)
	p := &peer{conn: conn, send: make(chan []byte, sendBuffer), done: make(chan struct{})}
	if !s.hub.join(id, p) {
		conn.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	defer s.hub.leave(id, p)
	b := st.Board(id)
	p.queue(mustJSON(Message{Type: "board", Board: &b}))
	ctx := r.Context()
	go p.writeLoop(ctx)
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			p.drop(websocket.StatusNormalClosure, "")
			return
		}
		var m Message
		err = json.Unmarshal(data, &m)
		if err == nil && m.Type == "ping" {
			p.queue(mustJSON(Message{Type: "pong", Ref: m.Ref}))
			continue
		}
		if err != nil || m.Type != "stroke" || m.Stroke == nil {
			p.queue(mustJSON(Message{Type: "error", Ref: m.Ref, Error: `send {"type":"stroke","ref":"…","stroke":{…}}`}))
			continue
		}
		out, err := s.add(st, id, *m.Stroke)
		if err != nil {
			p.queue(mustJSON(Message{Type: "error", Ref: m.Ref, Error: err.Error()}))
			continue
		}
		p.queue(mustJSON(Message{Type: "ack", Ref: m.Ref, Stroke: &out}))
	}
}

// Shutdown makes the server unready (new API calls get 503), then at once
// stops the HTTP server (stopHTTP: no new connections, in-flight requests
// finish their fsync) and closes every WebSocket; then it closes the store
// (fsync, unlock). ctx bounds the waiting.
func (s *Server) Shutdown(ctx context.Context, stopHTTP func(context.Context) error) error {
	s.stopping.Store(true)
	httpDone := make(chan error, 1)
	go func() { httpDone <- stopHTTP(ctx) }()
	s.hub.CloseAll(ctx)
	err := <-httpDone
	if st := s.store.Load(); st != nil {
		if cerr := st.Close(); cerr != nil {
			return cerr
		}
	}
	if err != nil {
		return fmt.Errorf("stopping the HTTP server: %w", err)
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own message types are encoded
	}
	return b
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(mustJSON(v), '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
