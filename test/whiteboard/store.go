package whiteboard

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sync"
	"unicode/utf8"
)

// Stroke kinds.
const (
	KindLine = "line"
	KindText = "text"
)

// Stroke is one drawn line (Points are x0,y0,x1,y1,... in board coordinates)
// or one piece of text at X,Y. Seq is given by the server: the stroke's
// place in the log and on the board.
type Stroke struct {
	Seq    uint64    `json:"seq"`
	Board  string    `json:"board"`
	Kind   string    `json:"kind"`
	Color  string    `json:"color"`
	Width  float64   `json:"width"`
	Points []float64 `json:"points,omitempty"`
	Text   string    `json:"text,omitempty"`
	X      float64   `json:"x,omitempty"`
	Y      float64   `json:"y,omitempty"`
}

// Board is a board as the API returns it; Strokes is never null.
type Board struct {
	ID      string   `json:"id"`
	Strokes []Stroke `json:"strokes"`
}

var (
	boardID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	color   = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
)

// Limits on what one stroke may hold.
const (
	MaxPoints   = 20000 // numbers, so 10000 points
	MaxTextLen  = 500
	MaxCoord    = 100000
	MaxWidth    = 100
	defaultLine = "#000000"
)

// ValidBoardID reports whether id may name a board.
func ValidBoardID(id string) bool { return boardID.MatchString(id) }

// validate checks a stroke from a client and fills in defaults.
func (s *Stroke) validate() error {
	if s.Color == "" {
		s.Color = defaultLine
	}
	if !color.MatchString(s.Color) {
		return fmt.Errorf("color %q must look like #1a2b3c", s.Color)
	}
	if s.Width == 0 {
		s.Width = 2
	}
	if !finite(s.Width) || s.Width < 0.5 || s.Width > MaxWidth {
		return fmt.Errorf("width %v must be between 0.5 and %d", s.Width, MaxWidth)
	}
	switch s.Kind {
	case KindLine:
		if len(s.Points) < 2 || len(s.Points)%2 != 0 || len(s.Points) > MaxPoints {
			return fmt.Errorf("a line needs an even number of coordinates, 2 to %d, got %d", MaxPoints, len(s.Points))
		}
		if s.Text != "" {
			return fmt.Errorf("a line has no text; use kind %q", KindText)
		}
		for _, v := range s.Points {
			if !finite(v) || math.Abs(v) > MaxCoord {
				return fmt.Errorf("coordinate %v is outside ±%d", v, MaxCoord)
			}
		}
	case KindText:
		if s.Text == "" || len(s.Text) > MaxTextLen || !utf8.ValidString(s.Text) {
			return fmt.Errorf("text must be 1 to %d bytes of UTF-8, got %d bytes", MaxTextLen, len(s.Text))
		}
		if len(s.Points) > 0 {
			return fmt.Errorf("text has a position (x, y), not points")
		}
		if !finite(s.X) || !finite(s.Y) || math.Abs(s.X) > MaxCoord || math.Abs(s.Y) > MaxCoord {
			return fmt.Errorf("position %v,%v is outside ±%d", s.X, s.Y, MaxCoord)
		}
	default:
		return fmt.Errorf("kind %q must be %q or %q", s.Kind, KindLine, KindText)
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Store holds every board in memory, backed by the WAL: Add returns only
// after the stroke is on disk.
type Store struct {
	mu      sync.Mutex
	wal     *WAL
	boards  map[string][]Stroke
	compact int          // compact after this many log records; 0: never
	notify  func(Stroke) // called under the lock, in log order
}

// snapshot is the state a compaction writes: every board's strokes.
type snapshot struct {
	Boards map[string][]Stroke `json:"boards"`
}

// RecoveryStats says what opening the store found.
type RecoveryStats struct {
	SnapshotStrokes int
	LogRecords      int
	TornBytes       int64
}

// OpenStore opens the WAL in dir and rebuilds the boards from it.
// compactEvery > 0 snapshots the state after that many log records.
func OpenStore(dir string, compactEvery int, notify func(Stroke)) (*Store, RecoveryStats, error) {
	var st RecoveryStats
	w, rec, err := Open(dir)
	if err != nil {
		return nil, st, err
	}
	s := &Store{wal: w, boards: map[string][]Stroke{}, compact: compactEvery, notify: notify}
	if rec.Snapshot != nil {
		var snap snapshot
		if err := json.Unmarshal(rec.Snapshot, &snap); err != nil {
			w.Close()
			return nil, st, fmt.Errorf("decoding the snapshot in %s: %w", dir, err)
		}
		for id, strokes := range snap.Boards {
			s.boards[id] = strokes
			st.SnapshotStrokes += len(strokes)
		}
	}
	for _, r := range rec.Records {
		var stroke Stroke
		if err := json.Unmarshal(r.Payload, &stroke); err != nil {
			w.Close()
			return nil, st, fmt.Errorf("decoding log record %d in %s: %w", r.Seq, dir, err)
		}
		s.boards[stroke.Board] = append(s.boards[stroke.Board], stroke)
	}
	st.LogRecords, st.TornBytes = len(rec.Records), rec.TornBytes
	return s, st, nil
}

// BadStroke is a stroke the client must fix; the server answers 400.
type BadStroke struct{ Err error }

func (e *BadStroke) Error() string { return "bad stroke: " + e.Err.Error() }

// Add validates s, writes it to the log (fsync) and puts it on the board.
func (s *Store) Add(board string, st Stroke) (Stroke, error) {
	if !ValidBoardID(board) {
		return st, &BadStroke{fmt.Errorf("board id %q must be 1-64 letters, digits, - or _", board)}
	}
	if err := st.validate(); err != nil {
		return st, &BadStroke{err}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Board = board
	st.Seq = s.wal.LastSeq() + 1
	payload, err := json.Marshal(st)
	if err != nil {
		return st, fmt.Errorf("encoding stroke: %w", err)
	}
	seq, err := s.wal.Append(payload)
	if err != nil {
		return st, err
	}
	if seq != st.Seq {
		return st, fmt.Errorf("log gave sequence %d, expected %d", seq, st.Seq)
	}
	s.boards[board] = append(s.boards[board], st)
	if s.notify != nil {
		s.notify(st)
	}
	if s.compact > 0 && s.wal.Len() >= s.compact {
		if err := s.compactLocked(); err != nil {
			// The stroke is durable in the log; a failed compaction only
			// means the log keeps growing, so report it without failing Add.
			return st, &CompactError{err}
		}
	}
	return st, nil
}

// CompactError is returned with a stroke that was stored but whose
// compaction afterwards failed.
type CompactError struct{ Err error }

func (e *CompactError) Error() string { return "compacting the log: " + e.Err.Error() }

func (s *Store) compactLocked() error {
	data, err := json.Marshal(snapshot{Boards: s.boards})
	if err != nil {
		return err
	}
	return s.wal.Compact(data)
}

// Compact snapshots every board and empties the log.
func (s *Store) Compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.compactLocked()
}

// Board returns a copy of board id (empty when nothing was drawn on it).
func (s *Store) Board(id string) Board {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Board{ID: id, Strokes: append([]Stroke{}, s.boards[id]...)}
}

// Err is the log's failure, if any (see WAL.Err).
func (s *Store) Err() error { return s.wal.Err() }

// Close fsyncs and closes the log and releases the data dir's lock.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wal.Close()
}
