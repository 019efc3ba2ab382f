package ldapcheck

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteReport prints a report for people: one line per check, then
// what is missing as LDIF and as steps in UCS.
func WriteReport(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tCHECK\tSUBJECT\tUSED BY\tDETAIL")
	for _, f := range r.Findings {
		result := "ok"
		if !f.OK {
			result = "MISSING"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", result, f.Check, f.Subject, f.Components, f.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.OK() {
		_, err := fmt.Fprintln(w, "\nThe directory has everything the components need.")
		return err
	}
	if r.LDIF != "" {
		fmt.Fprintf(w, "\n%s", r.LDIF)
	}
	if len(r.Checklist) > 0 {
		fmt.Fprintln(w, "\n# UCS checklist")
		for i, step := range r.Checklist {
			fmt.Fprintf(w, "%d. %s\n", i+1, step)
		}
	}
	return nil
}
