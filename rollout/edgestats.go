package rollout

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ServerStats is one row of HAProxy's stats CSV (the fields of 'show
// stat' on HAProxy 2.6) that promote's analysis reads: the edge's
// top-level servers are the app's colors.
type ServerStats struct {
	Proxy  string // pxname: the backend, e.g. tsys-ci.shop.shop.http
	Server string // svname: the color, or FRONTEND/BACKEND
	Status string
	// Weight is the server's weight as set (uweight; the effective
	// weight when the CSV has no uweight column).
	Weight int
	// Requests is stot: the requests (sessions) sent to the server.
	Requests int64
	// HTTP5xx is hrsp_5xx: answers with a 5xx status.
	HTTP5xx int64
	// ConnErrors (econ) and RespErrors (eresp) are requests that got no
	// answer from the server; Retries (wretr) and Redispatches (wredis)
	// were tried again.
	ConnErrors, RespErrors, Retries, Redispatches int64
	// ResponseTime is rtime: the average response time over the last
	// 1024 requests.
	ResponseTime time.Duration
}

// maxStatsCSV bounds how much of the stats page is read (an edge with
// thousands of servers writes a few MB).
const maxStatsCSV = 64 << 20

// ParseStatsCSV reads HAProxy's stats CSV ("# pxname,svname,..." then one
// row per frontend, server and backend). Columns are found by their
// names, so versions that add columns read the same.
func ParseStatsCSV(r io.Reader) ([]ServerStats, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("reading the stats CSV header: %w", err)
	}
	if len(head) == 0 || !strings.HasPrefix(head[0], "# ") {
		return nil, fmt.Errorf("not HAProxy's stats CSV: the first line does not start with \"# pxname\"")
	}
	col := map[string]int{}
	for i, name := range head {
		col[strings.TrimPrefix(name, "# ")] = i
	}
	for _, need := range []string{"pxname", "svname", "stot", "hrsp_5xx", "weight"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("the stats CSV has no %q column", need)
		}
	}
	var out []ServerStats
	line := 1
	for {
		rec, err := cr.Read()
		line++
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the stats CSV: %w", err)
		}
		field := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return rec[i]
			}
			return ""
		}
		var bad error
		num := func(name string) int64 {
			s := field(name)
			if s == "" {
				return 0
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil && bad == nil {
				bad = fmt.Errorf("stats CSV line %d column %s: %q is not a number", line, name, s)
			}
			return n
		}
		st := ServerStats{
			Proxy: field("pxname"), Server: field("svname"), Status: field("status"),
			Requests: num("stot"), HTTP5xx: num("hrsp_5xx"),
			ConnErrors: num("econ"), RespErrors: num("eresp"), Retries: num("wretr"), Redispatches: num("wredis"),
			ResponseTime: time.Duration(num("rtime")) * time.Millisecond,
			Weight:       int(num("weight")),
		}
		if _, ok := col["uweight"]; ok && field("uweight") != "" {
			st.Weight = int(num("uweight"))
		}
		if bad != nil {
			return nil, bad
		}
		out = append(out, st)
	}
}

// EdgeStatsReader fetches the edge's stats CSV over HTTP. User and
// Password (from TSYS_CI_EDGE_STATS_USER / _PASSWORD in the CLI) are sent
// as basic auth when set ('stats auth' in HAProxy).
type EdgeStatsReader struct {
	HTTP           *http.Client
	User, Password string
}

// Read fetches and parses the stats CSV at url.
func (e *EdgeStatsReader) Read(ctx context.Context, url string) ([]ServerStats, error) {
	client := http.DefaultClient
	if e != nil && e.HTTP != nil {
		client = e.HTTP
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("edge stats %s: %w", url, err)
	}
	if e != nil && e.User != "" {
		req.SetBasicAuth(e.User, e.Password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the edge's stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized {
			hint = "; set TSYS_CI_EDGE_STATS_USER and TSYS_CI_EDGE_STATS_PASSWORD to the stats frontend's 'stats auth'"
		}
		return nil, fmt.Errorf("reading the edge's stats: GET %s: %s%s", url, resp.Status, hint)
	}
	rows, err := ParseStatsCSV(io.LimitReader(resp.Body, maxStatsCSV))
	if err != nil {
		return nil, fmt.Errorf("edge stats %s: %w", url, err)
	}
	return rows, nil
}
