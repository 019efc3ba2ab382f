package whiteboard

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func openWAL(t testing.TB, dir string) (*WAL, Recovered) {
	t.Helper()
	w, rec, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return w, rec
}

func appendN(t testing.TB, w *WAL, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := w.Append([]byte(fmt.Sprintf("stroke %d", i))); err != nil {
			t.Fatal(err)
		}
	}
}

func payloads(rs []Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r.Payload))
	}
	return out
}

func wantPayloads(t *testing.T, rec Recovered, from, n int) {
	t.Helper()
	got := payloads(rec.Records)
	if len(got) != n {
		t.Fatalf("recovered %d records %q, want %d", len(got), got, n)
	}
	for i, p := range got {
		if want := fmt.Sprintf("stroke %d", from+i); p != want || rec.Records[i].Seq != uint64(from+i+1) {
			t.Fatalf("record %d = %q seq %d, want %q seq %d", i, p, rec.Records[i].Seq, want, from+i+1)
		}
	}
}

func TestWALAppendRecover(t *testing.T) {
	dir := t.TempDir()
	w, rec := openWAL(t, dir)
	if len(rec.Records) != 0 || rec.Snapshot != nil {
		t.Fatalf("fresh dir recovered %+v", rec)
	}
	appendN(t, w, 0, 5)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, rec = openWAL(t, dir)
	defer w.Close()
	wantPayloads(t, rec, 0, 5)
	appendN(t, w, 5, 1)
	if w.LastSeq() != 6 {
		t.Fatalf("last seq %d after 6 appends", w.LastSeq())
	}
}

// TestWALTornTail cuts the log at every byte inside its last record and at
// the record boundary: each time exactly the complete records come back and
// the log is truncated to them, so the next append follows on cleanly.
func TestWALTornTail(t *testing.T) {
	dir := t.TempDir()
	w, _ := openWAL(t, dir)
	appendN(t, w, 0, 3)
	w.Close()
	path := filepath.Join(dir, LogFile)
	full, _ := os.ReadFile(path)
	last := len(AppendRecord(nil, Record{Seq: 3, Payload: []byte("stroke 2")}))
	for cut := 1; cut <= last; cut++ {
		if err := os.WriteFile(path, full[:len(full)-cut], 0o644); err != nil {
			t.Fatal(err)
		}
		w, rec := openWAL(t, dir)
		wantPayloads(t, rec, 0, 2)
		if rec.TornBytes != int64(last-cut) {
			t.Fatalf("cut %d: torn bytes %d, want %d", cut, rec.TornBytes, last-cut)
		}
		if fi, _ := os.Stat(path); fi.Size() != int64(len(full)-last) {
			t.Fatalf("cut %d: log is %d bytes after recovery, want %d", cut, fi.Size(), len(full)-last)
		}
		appendN(t, w, 2, 1)
		w.Close()
		if got, _ := os.ReadFile(path); !bytes.Equal(got, full) {
			t.Fatalf("cut %d: log after re-append differs from the original", cut)
		}
	}
}

func TestWALBadChecksumAtEndIsTorn(t *testing.T) {
	dir := t.TempDir()
	w, _ := openWAL(t, dir)
	appendN(t, w, 0, 3)
	w.Close()
	path := filepath.Join(dir, LogFile)
	data, _ := os.ReadFile(path)
	data[len(data)-1] ^= 0xff // last payload byte: the CRC no longer matches
	os.WriteFile(path, data, 0o644)
	w, rec := openWAL(t, dir)
	defer w.Close()
	wantPayloads(t, rec, 0, 2)
	if rec.TornBytes == 0 {
		t.Fatal("no torn bytes reported")
	}
}

func TestWALZeroTailIsTorn(t *testing.T) {
	dir := t.TempDir()
	w, _ := openWAL(t, dir)
	appendN(t, w, 0, 2)
	w.Close()
	f, _ := os.OpenFile(filepath.Join(dir, LogFile), os.O_APPEND|os.O_WRONLY, 0)
	f.Write(make([]byte, 4096))
	f.Close()
	w, rec := openWAL(t, dir)
	defer w.Close()
	wantPayloads(t, rec, 0, 2)
}

// TestWALCorruptMiddleRefuses: a bad record followed by good ones is not a
// torn write; truncating would drop acknowledged strokes, so Open refuses.
func TestWALCorruptMiddleRefuses(t *testing.T) {
	dir := t.TempDir()
	w, _ := openWAL(t, dir)
	appendN(t, w, 0, 3)
	w.Close()
	path := filepath.Join(dir, LogFile)
	data, _ := os.ReadFile(path)
	data[4] ^= 0x01 // CRC of the first record
	os.WriteFile(path, data, 0o644)
	_, _, err := Open(dir)
	if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "offset 0") {
		t.Fatalf("Open of a log damaged in the middle: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Fatal("Open changed a log it refused")
	}
}

func TestWALLockExcludesSecondWriter(t *testing.T) {
	dir := t.TempDir()
	w, _ := openWAL(t, dir)
	if _, _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "locked by another whiteboard") {
		t.Fatalf("second Open: %v", err)
	}
	w.Close()
	w2, _ := openWAL(t, dir)
	w2.Close()
}

func TestWALCompact(t *testing.T) {
	dir := t.TempDir()
	w, _ := openWAL(t, dir)
	appendN(t, w, 0, 4)
	if err := w.Compact([]byte("state after 4")); err != nil {
		t.Fatal(err)
	}
	if w.Len() != 0 {
		t.Fatalf("log holds %d records after compaction", w.Len())
	}
	appendN(t, w, 4, 2)
	w.Close()
	w, rec := openWAL(t, dir)
	if string(rec.Snapshot) != "state after 4" || rec.SnapshotSeq != 4 {
		t.Fatalf("snapshot %q seq %d", rec.Snapshot, rec.SnapshotSeq)
	}
	wantPayloads(t, rec, 4, 2)
	w.Close()
}

// TestWALCompactCrashBeforeTruncate: the snapshot was renamed into place but
// the process died before emptying the log; records the snapshot covers are
// skipped, not applied twice.
func TestWALCompactCrashBeforeTruncate(t *testing.T) {
	dir := t.TempDir()
	w, _ := openWAL(t, dir)
	appendN(t, w, 0, 3)
	w.Close()
	os.WriteFile(filepath.Join(dir, SnapshotFile), AppendRecord(nil, Record{Seq: 2, Payload: []byte("upto2")}), 0o644)
	os.WriteFile(filepath.Join(dir, snapshotTmp), []byte("half a snapshot"), 0o644)
	w, rec := openWAL(t, dir)
	defer w.Close()
	if string(rec.Snapshot) != "upto2" {
		t.Fatalf("snapshot %q", rec.Snapshot)
	}
	wantPayloads(t, rec, 2, 1)
	if _, err := os.Stat(filepath.Join(dir, snapshotTmp)); err == nil {
		t.Fatal("leftover snapshot.tmp not removed")
	}
}

func TestWALDamagedSnapshotRefuses(t *testing.T) {
	dir := t.TempDir()
	data := AppendRecord(nil, Record{Seq: 2, Payload: []byte("upto2")})
	data[len(data)-1] ^= 1
	os.WriteFile(filepath.Join(dir, SnapshotFile), data, 0o644)
	if _, _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "is damaged") {
		t.Fatalf("Open with a damaged snapshot: %v", err)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, p := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("ab"), 5000)} {
		b := AppendRecord([]byte("prefix"), Record{Seq: 42, Payload: p})
		r, n, err := DecodeRecord(b[len("prefix"):])
		if err != nil || n != len(b)-len("prefix") || r.Seq != 42 || !bytes.Equal(r.Payload, p) {
			t.Fatalf("round trip of %d bytes: %+v %d %v", len(p), r, n, err)
		}
	}
}

// FuzzDecodeRecord: the decoder reads whatever is on disk after a crash. It
// must never panic, never claim more bytes than it was given, and whatever
// it accepts must re-encode to exactly the bytes it consumed.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, Record{Seq: 1, Payload: []byte(`{"kind":"line"}`)}))
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrShort) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if n > len(b) || n < headerSize+seqSize {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		if again := AppendRecord(nil, r); !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding differs: %x vs %x", again, b[:n])
		}
	})
}

// BenchmarkAppendFsync measures one acknowledged stroke's cost: frame,
// write and fsync of a typical stroke payload on the test's temp dir.
func BenchmarkAppendFsync(b *testing.B) {
	w, _ := openWAL(b, b.TempDir())
	defer w.Close()
	payload := bytes.Repeat([]byte("1234.5,"), 60) // ~30 points of JSON
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := w.Append(payload); err != nil {
			b.Fatal(err)
		}
	}
}
