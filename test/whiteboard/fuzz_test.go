package whiteboard

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzRecoverLog: whatever bytes a crash leaves in wal.log, Open either
// refuses with an error and leaves the file alone, or returns records whose
// encoding is exactly the prefix the file is truncated to.
func FuzzRecoverLog(f *testing.F) {
	good := AppendRecord(AppendRecord(nil, Record{Seq: 1, Payload: []byte("a")}), Record{Seq: 2, Payload: []byte("bc")})
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(append(bytes.Clone(good), 0, 0, 0))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, LogFile)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		w, rec, err := Open(dir)
		after, _ := os.ReadFile(path)
		if err != nil {
			if !bytes.Equal(after, data) {
				t.Fatalf("Open failed (%v) but changed the log", err)
			}
			return
		}
		defer w.Close()
		var enc []byte
		for _, r := range rec.Records {
			enc = AppendRecord(enc, r)
		}
		if !bytes.Equal(enc, after) || !bytes.Equal(after, data[:len(after)]) || int64(len(data)-len(after)) != rec.TornBytes {
			t.Fatalf("recovered %d records (%d bytes), log now %d of %d bytes, torn %d", len(rec.Records), len(enc), len(after), len(data), rec.TornBytes)
		}
	})
}

// FuzzStrokeJSON: a stroke a client sends is decoded strictly and
// validated; an accepted one encodes and decodes to itself (what the log
// and the board store) and stays valid.
func FuzzStrokeJSON(f *testing.F) {
	f.Add([]byte(`{"kind":"line","points":[1,2,3,4],"color":"#ff0000","width":3}`))
	f.Add([]byte(`{"kind":"text","text":"hi","x":1e5,"y":-3}`))
	f.Add([]byte(`{"kind":"line","points":[1e309,2]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Stroke
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if dec.Decode(&s) != nil || s.validate() != nil {
			return
		}
		enc, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("accepted stroke does not encode: %v", err)
		}
		var back Stroke
		if err := json.Unmarshal(enc, &back); err != nil || back.validate() != nil || !reflect.DeepEqual(back, s) {
			t.Fatalf("round trip of %s: %+v vs %+v (%v)", enc, back, s, err)
		}
	})
}
