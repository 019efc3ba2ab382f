package demo

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/rollout"
)

// The stateless app's spec is one promote accepts, blue/green with two
// copies; the whiteboard's own spec stays recreate with one.
func TestSpecs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hello.yaml")
	if err := os.WriteFile(p, []byte(helloSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := rollout.LoadSpec(p)
	if err != nil {
		t.Fatalf("the demo-hello spec does not load: %v", err)
	}
	if s.Name != "demo-hello" || s.Namespace != Namespaces[1] || *s.Replicas != 2 || s.Strategy.Type != rollout.StrategyBlueGreen {
		t.Fatalf("demo-hello spec: name %q ns %q replicas %d strategy %q", s.Name, s.Namespace, *s.Replicas, s.Strategy.Type)
	}
	wb, err := rollout.LoadSpec(filepath.Join("..", "whiteboard", "tsys-ci.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if wb.Namespace != Namespaces[0] || wb.Strategy.Type != rollout.StrategyRecreate {
		t.Fatalf("whiteboard spec: ns %q strategy %q", wb.Namespace, wb.Strategy.Type)
	}
}

// The outage is from the last good answer before failures to the first
// good one after; failures are counted.
func TestLoadStats(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int, ok bool) event { return event{at: t0.Add(time.Duration(ms) * time.Millisecond), ok: ok} }
	l := &load{cancel: func() {}, errs: map[string]int{"x": 2},
		events: []event{at(0, true), at(100, true), at(300, false), at(200, false), at(900, true), at(1000, false), at(1100, true)}}
	st := l.stop()
	if st.Total != 7 || st.Failed != 3 || st.Outage != 800*time.Millisecond {
		t.Fatalf("got %+v, want 7 requests, 3 failed, 800ms outage", st)
	}
	l = &load{cancel: func() {}, events: []event{at(0, true), at(500, false)}}
	if st := l.stop(); st.Outage != 500*time.Millisecond {
		t.Fatalf("an outage lasting to the end: got %s, want 500ms", st.Outage)
	}
}

func TestCheckBoard(t *testing.T) {
	acked := []Stroke{{Seq: 1, Board: "b", Kind: "line", Color: "#000000", Width: 2, Points: []float64{1, 2, 3, 4}}}
	ok := []byte(`{"id":"b","strokes":[{"seq":1,"board":"b","kind":"line","color":"#000000","width":2,"points":[1,2,3,4]}]}`)
	if err := checkBoard(ok, "b", acked); err != nil {
		t.Fatal(err)
	}
	bad := []byte(`{"id":"b","strokes":[{"seq":1,"board":"b","kind":"line","color":"#000000","width":2,"points":[1,2,3]}]}`)
	if err := checkBoard(bad, "b", acked); err == nil || !strings.Contains(err.Error(), "lost the acknowledged stroke") {
		t.Fatalf("a changed stroke was not noticed: %v", err)
	}
	var buf bytes.Buffer
	if err := WriteNumbers(&buf, []Number{{"5", "back after freeze", "41s"}}); err != nil || !strings.Contains(buf.String(), "back after freeze  41s") {
		t.Fatalf("table: %q %v", buf.String(), err)
	}
}
