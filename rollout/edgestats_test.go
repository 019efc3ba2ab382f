package rollout

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The testdata CSVs are HAProxy 2.6.12's own (Debian 12), captured from a
// config with the edge's two-level shape: backend tsys-ci.shop.shop.http
// with servers blue (weight 95) and green (5) in front of one listen per
// color; 40 requests sent, green's node down (its 2 answered 503), then
// green set to weight 0 on the stats socket.
func readStats(t *testing.T, name string) []ServerStats {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ParseStatsCSV(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func findRow(rows []ServerStats, proxy, server string) *ServerStats {
	for i := range rows {
		if rows[i].Proxy == proxy && rows[i].Server == server {
			return &rows[i]
		}
	}
	return nil
}

func TestParseStatsCSV(t *testing.T) {
	rows := readStats(t, "haproxy-2.6.12-stats-95-5.csv")
	blue, green := findRow(rows, "tsys-ci.shop.shop.http", "blue"), findRow(rows, "tsys-ci.shop.shop.http", "green")
	if blue == nil || green == nil {
		t.Fatalf("no blue/green servers in %+v", rows)
	}
	want := ServerStats{Proxy: "tsys-ci.shop.shop.http", Server: "blue", Status: "no check", Weight: 95, Requests: 38, ResponseTime: 31 * time.Millisecond}
	if *blue != want {
		t.Errorf("blue:\n got %+v\nwant %+v", *blue, want)
	}
	if green.Weight != 5 || green.Requests != 2 || green.HTTP5xx != 2 {
		t.Errorf("green: %+v", *green)
	}
	if be := findRow(rows, "tsys-ci.shop.shop.http", "BACKEND"); be == nil || be.Requests != 40 {
		t.Errorf("backend row: %+v", be)
	}
	if node := findRow(rows, "tsys-ci.shop.shop.http.blue", "node1"); node == nil || node.Retries != 1 {
		t.Errorf("the color level's server: %+v", node)
	}
	zero := readStats(t, "haproxy-2.6.12-stats-green-0.csv")
	if g := findRow(zero, "tsys-ci.shop.shop.http", "green"); g == nil || g.Weight != 0 {
		t.Errorf("green after 'set server ... weight 0': %+v", g)
	}
}

func TestParseStatsCSVErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "reading the stats CSV header"},
		{"<html>login</html>\n", "not HAProxy's stats CSV"},
		{"# pxname,svname,stot\n", `no "hrsp_5xx" column`},
		{"# pxname,svname,stot,hrsp_5xx,weight,\nbe,blue,many,0,1,\n", `line 2 column stot: "many" is not a number`},
	} {
		if _, err := ParseStatsCSV(strings.NewReader(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
	}
}

func TestWeightsShown(t *testing.T) {
	rows := readStats(t, "haproxy-2.6.12-stats-95-5.csv")
	be := []string{"tsys-ci.shop.shop.http"}
	if d := weightsShown(rows, be, EdgeWeights{"blue": 95, "green": 5}); d != "" {
		t.Errorf("95/5 not seen: %s", d)
	}
	if d := weightsShown(rows, be, EdgeWeights{"blue": 100, "green": 0}); d != "tsys-ci.shop.shop.http/blue has weight 95, tsys-ci.shop.shop.http/green has weight 5" {
		t.Errorf("100/0: %q", d)
	}
	if d := weightsShown(rows, []string{"tsys-ci.shop.shop.admin"}, EdgeWeights{"blue": 100}); d != "no backend tsys-ci.shop.shop.admin" {
		t.Errorf("missing backend: %q", d)
	}
}

func TestEdgeStatsReaderAuth(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "haproxy-2.6.12-stats-95-5.csv"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "promote" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="HAProxy Statistics"`)
			http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write(data)
	}))
	defer srv.Close()
	url := srv.URL + "/stats;csv"
	if _, err := (&EdgeStatsReader{}).Read(context.Background(), url); err == nil || !strings.Contains(err.Error(), "401 Unauthorized; set TSYS_CI_EDGE_STATS_USER") {
		t.Fatalf("without credentials: %v", err)
	}
	rows, err := (&EdgeStatsReader{User: "promote", Password: "s3cret"}).Read(context.Background(), url)
	if err != nil || findRow(rows, "tsys-ci.shop.shop.http", "green") == nil {
		t.Fatalf("with credentials: %v", err)
	}
}

// FuzzParseStatsCSV: the stats page is outside input; the parser must not
// panic on anything.
func FuzzParseStatsCSV(f *testing.F) {
	for _, name := range []string{"haproxy-2.6.12-stats-95-5.csv", "haproxy-2.6.12-stats-green-0.csv"} {
		if data, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("# pxname,svname,stot,hrsp_5xx,weight\nbe,blue,1,2,3\nbe\n"))
	f.Add([]byte("# a\n\"unterminated"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := ParseStatsCSV(bytes.NewReader(data))
		if err == nil {
			_ = colorCounters(rows, []string{"be"})
		}
	})
}
