package whiteboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkPostStroke measures one stroke acknowledged over HTTP end to
// end: request, validation, WAL append with fsync, 201.
func BenchmarkPostStroke(b *testing.B) {
	srv := NewServer("bench", false, testLogger(b))
	if _, err := srv.Recover(b.TempDir(), 0); err != nil {
		b.Fatal(err)
	}
	st := srv.store.Load()
	defer st.Close()
	h := srv.Handler()
	body := `{"kind":"line","points":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20],"color":"#123456","width":3}`
	for b.Loop() {
		req, _ := http.NewRequest("POST", "/api/boards/bench/strokes", strings.NewReader(body))
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
		if w.code != http.StatusCreated {
			b.Fatalf("status %d", w.code)
		}
	}
}

type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkRecover measures a start: lock, replay of N strokes from the log
// (about 200 bytes each), rebuild of the boards, unlock.
func BenchmarkRecover(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			var log []byte
			for i := 1; i <= n; i++ {
				s := Stroke{Seq: uint64(i), Board: fmt.Sprintf("b%d", i%10), Kind: KindLine, Color: "#123456", Width: 3,
					Points: []float64{1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5, 11.5, 12.5, 13.5, 14.5, 15.5, 16.5}}
				p, _ := json.Marshal(s)
				log = AppendRecord(log, Record{Seq: uint64(i), Payload: p})
			}
			if err := os.WriteFile(filepath.Join(dir, LogFile), log, 0o644); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(log)))
			for b.Loop() {
				s, stats, err := OpenStore(dir, 0, nil)
				if err != nil || stats.LogRecords != n {
					b.Fatalf("recovered %d of %d: %v", stats.LogRecords, n, err)
				}
				s.Close()
			}
		})
	}
}
