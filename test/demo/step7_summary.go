package demo

import (
	"context"
	"fmt"
)

// stepSummary prints where to look and the numbers.
func (d *Demo) stepSummary(_ context.Context) error {
	fmt.Fprintf(d.o.Out, "\n  Open the board from a browser on this machine:\n\n      %s\n\n", d.res.BoardURL)
	fmt.Fprintf(d.o.Out, "  (the lab's network 10.213.0.0/24 is reachable from the host only; from elsewhere: ssh -L 8080:%s ...)\n\n", d.wbAddr[len("http://"):])
	if db := d.res.Dashboard; db.URL != "" {
		fmt.Fprintf(d.o.Out, "  The dashboard (tsys-ci serve, on this machine; make demo-down stops it):\n\n      %s\n\n", db.URL)
		fmt.Fprintf(d.o.Out, "  Log in as %q with the password in %s (the demo's own directory).\n\n", db.User, db.PasswordFile)
	}
	fmt.Fprintln(d.o.Out, "  Which app showed what:")
	fmt.Fprintln(d.o.Out, "   - whiteboard (one writer, recreate): no acknowledged stroke lost through a new version, a broken version and a node failure; each costs a short outage")
	fmt.Fprintln(d.o.Out, "   - demo-hello (stateless, two copies, blue/green): the switch to a new version under load")
	return nil
}
