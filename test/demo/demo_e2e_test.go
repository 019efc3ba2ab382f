//go:build e2e

package demo_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/demo"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// TestDemo runs make demo's six steps on the lab (brought up if needed, left
// up) and checks the board after the node failure: byte for byte what was
// read before it, and every stroke the API acknowledged in it as returned.
//
//	go test -tags e2e -v -timeout 40m ./test/demo/
//
// The drill freezes nodes of the one lab of the machine; it waits up to 20
// minutes for test/e2e to end, and fails (not skips) if it could not run.
func TestDemo(t *testing.T) {
	testenv.LookPath(t, "docker")
	res, err := demo.Run(t.Context(), demo.Options{Out: t.Output(), DrillWait: 20 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !res.DrillRan {
		t.Fatal("the node drill did not run (e2e tests held the lab); the board after a failure was not checked")
	}
	if len(res.BoardBefore) == 0 || !bytes.Equal(res.BoardBefore, res.BoardAfter) {
		t.Fatalf("the board after the failover differs from before it:\nbefore %s\nafter  %s", res.BoardBefore, res.BoardAfter)
	}
	var board struct {
		Strokes []demo.Stroke `json:"strokes"`
	}
	if err := json.Unmarshal(res.BoardAfter, &board); err != nil {
		t.Fatalf("the board after the failover is not JSON: %v: %s", err, res.BoardAfter)
	}
	if len(board.Strokes) != len(res.Acked) {
		t.Fatalf("the board has %d strokes after the failover; %d were acknowledged", len(board.Strokes), len(res.Acked))
	}
	for i, s := range res.Acked {
		want, _ := json.Marshal(s)
		got, _ := json.Marshal(board.Strokes[i])
		if !bytes.Equal(want, got) {
			t.Errorf("stroke %d after the failover is %s; acknowledged as %s", i, got, want)
		}
	}
	t.Logf("board %s: %d strokes, %d bytes, identical after the failover", res.BoardURL, len(res.Acked), len(res.BoardAfter))
}
