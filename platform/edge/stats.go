package edge

import (
	"context"
	"encoding/csv"
	"fmt"
	"strings"
)

// Stat is one line of HAProxy's "show stat" (the same CSV as the stats
// page's ";csv"), by field name: pxname, svname, status, weight, stot,
// hrsp_5xx, econ, eresp, rtime, check_status... For a pool's top-level
// server, pxname is the app's backend and svname its color.
type Stat map[string]string

// Stats reads "show stat": "PROXY/SERVER" -> its line. It is how tests and
// operators see the weights in force and each version's counters.
func (r Runtime) Stats(ctx context.Context) (map[string]Stat, error) {
	out, err := r.stats(ctx, "show stat")
	if err != nil {
		return nil, err
	}
	return parseStat(out)
}

// parseStat reads the CSV of "show stat": a "# pxname,svname,..." header
// naming the fields, then one line per proxy and server.
func parseStat(out string) (map[string]Stat, error) {
	if !strings.HasPrefix(out, "# ") {
		return nil, fmt.Errorf("unexpected answer to 'show stat': %q", firstLine(out))
	}
	r := csv.NewReader(strings.NewReader(out[2:]))
	r.FieldsPerRecord = -1
	records, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("reading 'show stat': %w", err)
	}
	if len(records) == 0 {
		return nil, fmt.Errorf("'show stat' has no header")
	}
	header := records[0]
	stats := map[string]Stat{}
	for _, rec := range records[1:] {
		s := Stat{}
		for i, v := range rec {
			if i < len(header) && header[i] != "" {
				s[header[i]] = v
			}
		}
		stats[s["pxname"]+"/"+s["svname"]] = s
	}
	return stats, nil
}
