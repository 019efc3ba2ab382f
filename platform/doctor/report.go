package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Report is doctor's JSON output.
type Report struct {
	Summary  map[string]int `json:"summary"`
	Findings []Finding      `json:"findings"`
}

// NewReport counts findings by severity.
func NewReport(findings []Finding) Report {
	r := Report{Summary: map[string]int{"critical": 0, "warning": 0, "info": 0}, Findings: findings}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	for _, f := range findings {
		r.Summary[f.Severity.String()]++
	}
	return r
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes a table of findings, then each one's why and fix.
func (r Report) WriteTable(w io.Writer) error {
	if len(r.Findings) == 0 {
		_, err := fmt.Fprintln(w, "No single point of failure found.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tSEVERITY\tCHECK\tOBJECT\tPROBLEM")
	for i, f := range r.Findings {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, strings.ToUpper(f.Severity.String()), f.Check, f.Object, f.Problem)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i, f := range r.Findings {
		fmt.Fprintf(w, "\n%d. [%s] %s: %s\n   why: %s\n   fix: %s\n", i+1, f.Severity, f.Object, f.Problem, f.Why, f.Fix)
	}
	_, err := fmt.Fprintf(w, "\n%d critical, %d warning, %d info\n", r.Summary["critical"], r.Summary["warning"], r.Summary["info"])
	return err
}

// Worst is the highest severity found, or -1 when nothing was found.
func (r Report) Worst() Severity {
	worst := Severity(-1)
	for _, f := range r.Findings {
		if f.Severity > worst {
			worst = f.Severity
		}
	}
	return worst
}
