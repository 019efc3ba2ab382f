package whiteboard

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Files in the data directory.
const (
	LockFile     = "whiteboard.lock"
	LogFile      = "wal.log"
	SnapshotFile = "snapshot"
	snapshotTmp  = "snapshot.tmp"
)

// WAL is an append-only log of records, each fsynced before Append returns,
// plus an optional snapshot that replaces the records it covers. One process
// at a time holds it (flock on LockFile).
type WAL struct {
	dir  string
	lock *os.File

	mu   sync.Mutex
	log  *os.File
	seq  uint64 // last sequence number written
	n    int    // records in the log (after the snapshot)
	buf  []byte
	fail error // set once a write or fsync failed: the log's state is unknown
	// closed is set by Close; appends after it fail without marking the
	// log broken.
	closed bool
	// sync is (*os.File).Sync; tests replace it to simulate a failing disk.
	sync func(*os.File) error
}

// Recovered is what Open found on disk.
type Recovered struct {
	Snapshot    []byte   // the snapshot's payload, nil when there is none
	SnapshotSeq uint64   // last sequence number the snapshot covers
	Records     []Record // records after the snapshot, in order
	// TornBytes is how much of the log's tail was cut off: a record
	// half-written when the process or machine died. Such a record was
	// never acknowledged (the acknowledgement waits for the fsync).
	TornBytes int64
}

// Open locks dir, reads the snapshot and replays the log, truncating a torn
// tail. It fails when another process holds the lock or when the log is
// damaged anywhere but at its end.
func Open(dir string) (*WAL, Recovered, error) {
	var rec Recovered
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, rec, fmt.Errorf("creating data dir: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, rec, err
	}
	w := &WAL{dir: dir, lock: lock, sync: (*os.File).Sync}
	rec, err = w.recover()
	if err != nil {
		lock.Close()
		return nil, rec, err
	}
	return w, rec, nil
}

func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is locked by another whiteboard process: only one copy may write a data dir (the volume is single-writer; stop the other copy first)", path)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return f, nil
}

func (w *WAL) recover() (Recovered, error) {
	var rec Recovered
	if err := w.readSnapshot(&rec); err != nil {
		return rec, err
	}
	w.seq = rec.SnapshotSeq
	path := filepath.Join(w.dir, LogFile)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rec, fmt.Errorf("reading %s: %w", path, err)
	}
	good, err := w.replay(data, &rec)
	if err != nil {
		return rec, fmt.Errorf("%s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return rec, fmt.Errorf("opening %s: %w", path, err)
	}
	w.log = f
	if int64(good) < int64(len(data)) {
		rec.TornBytes = int64(len(data) - good)
		if err := f.Truncate(int64(good)); err != nil {
			f.Close()
			return rec, fmt.Errorf("truncating the torn tail of %s at %d: %w", path, good, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return rec, fmt.Errorf("fsync %s: %w", path, err)
	}
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return rec, err
	}
	return rec, nil
}

func (w *WAL) readSnapshot(rec *Recovered) error {
	os.Remove(filepath.Join(w.dir, snapshotTmp)) // a compaction that died before its rename
	path := filepath.Join(w.dir, SnapshotFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	r, n, err := DecodeRecord(data)
	if err == nil && n != len(data) {
		err = fmt.Errorf("%w: %d bytes after the record", ErrCorrupt, len(data)-n)
	}
	if err != nil {
		// Snapshots are renamed into place whole, so damage here is real
		// data loss, not a torn write.
		return fmt.Errorf("%s is damaged (%w); restore it from a backup or move it aside to start from the log alone", path, err)
	}
	rec.Snapshot, rec.SnapshotSeq = r.Payload, r.Seq
	return nil
}

// replay decodes data into rec.Records and returns how many bytes are good.
func (w *WAL) replay(data []byte, rec *Recovered) (int, error) {
	off := 0
	for off < len(data) {
		r, n, err := DecodeRecord(data[off:])
		if err != nil {
			if tornTail(data[off:], err) {
				return off, nil
			}
			return off, fmt.Errorf("damaged record at offset %d of %d bytes, with more data after it: not a torn write; restore from a backup (%w)", off, len(data), err)
		}
		if r.Seq <= rec.SnapshotSeq {
			off += n // already in the snapshot: a compaction died before truncating the log
			continue
		}
		if r.Seq != w.seq+1 {
			return off, fmt.Errorf("record at offset %d has sequence %d after %d: records are missing or out of order", off, r.Seq, w.seq)
		}
		w.seq = r.Seq
		w.n++
		rec.Records = append(rec.Records, Record{Seq: r.Seq, Payload: bytes.Clone(r.Payload)})
		off += n
	}
	return off, nil
}

// tornTail reports whether a decode error at the start of rest can only be a
// write cut short at the end of the log: the buffer ends inside the record,
// the bad record is the very last thing in the file, or the rest is zeros
// (a file extended but never written).
func tornTail(rest []byte, err error) bool {
	if errors.Is(err, ErrShort) {
		return true
	}
	if len(rest) >= headerSize {
		n := int(uint32(rest[0]) | uint32(rest[1])<<8 | uint32(rest[2])<<16 | uint32(rest[3])<<24)
		if n >= seqSize && n <= seqSize+MaxPayload && headerSize+n >= len(rest) {
			return true
		}
	}
	return len(bytes.Trim(rest, "\x00")) == 0
}

// LastSeq is the sequence number of the last record written or recovered.
func (w *WAL) LastSeq() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq
}

// Err is why the log stopped taking appends after a failed write or fsync,
// or nil. The process must restart: only recovery knows what is on disk.
func (w *WAL) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fail
}

// Len is the number of records in the log since the last snapshot.
func (w *WAL) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Append writes payload as the next record and fsyncs the log; only then is
// the record durable and may be acknowledged. It returns the record's
// sequence number. After a failed write or fsync every later Append fails:
// what reached the disk is unknown, so the process must restart and recover.
func (w *WAL) Append(payload []byte) (uint64, error) {
	if len(payload) > MaxPayload {
		return 0, fmt.Errorf("record of %d bytes is larger than the %d-byte limit", len(payload), MaxPayload)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail != nil {
		return 0, w.fail
	}
	if w.closed {
		return 0, fmt.Errorf("the log in %s is closed: the server is shutting down", w.dir)
	}
	seq := w.seq + 1
	w.buf = AppendRecord(w.buf[:0], Record{Seq: seq, Payload: payload})
	if _, err := w.log.Write(w.buf); err != nil {
		w.fail = fmt.Errorf("writing to %s failed, restart to recover: %w", w.log.Name(), err)
		return 0, w.fail
	}
	if err := w.sync(w.log); err != nil {
		w.fail = fmt.Errorf("fsync of %s failed, restart to recover: %w", w.log.Name(), err)
		return 0, w.fail
	}
	w.seq = seq
	w.n++
	return seq, nil
}

// Compact writes snapshot, the caller's state as of LastSeq, to the snapshot
// file (temporary file, fsync, rename, directory fsync) and then empties the
// log. The caller must not Append meanwhile. A crash at any point leaves
// either the old snapshot and the full log, or the new snapshot and records
// recovery skips by sequence number.
func (w *WAL) Compact(snapshot []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail != nil {
		return w.fail
	}
	if w.closed {
		return fmt.Errorf("the log in %s is closed", w.dir)
	}
	tmp := filepath.Join(w.dir, snapshotTmp)
	if err := writeFileSync(tmp, AppendRecord(nil, Record{Seq: w.seq, Payload: snapshot})); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(w.dir, SnapshotFile)); err != nil {
		return fmt.Errorf("renaming the new snapshot into place: %w", err)
	}
	if err := syncDir(w.dir); err != nil {
		return err
	}
	if err := w.log.Truncate(0); err != nil {
		return fmt.Errorf("emptying %s after the snapshot: %w", w.log.Name(), err)
	}
	if err := w.sync(w.log); err != nil {
		w.fail = fmt.Errorf("fsync of %s failed, restart to recover: %w", w.log.Name(), err)
		return w.fail
	}
	w.n = 0
	return nil
}

// Close fsyncs and closes the log and releases the lock.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.log.Sync()
	if cerr := w.log.Close(); err == nil {
		err = cerr
	}
	if cerr := w.lock.Close(); err == nil { // closing the file releases the flock
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("closing the log in %s: %w", w.dir, err)
	}
	return nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening %s to fsync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync of directory %s: %w", dir, err)
	}
	return nil
}
