// Package demo is `make demo` (issue 8): the whiteboard through the whole
// pipeline on the lab, narrated step by step with timings, ending with the
// numbers. Each step is one file; Run calls them in order.
//
//  1. lab up (with its add-ons), build and push --sign the whiteboard
//  2. promote it (recreate), draw strokes through the REST API, read back
//  3. a new whiteboard version (recreate: its outage measured), and a
//     blue/green promote of a stateless app under load (failed requests)
//  4. a broken whiteboard: probes fail, promote exits 3, rolled back
//  5. freeze the whiteboard's www node and a db node; the board comes back
//     on another node, byte for byte; nodes back, GlusterFS healed
//  6. the dashboard: tsys-ci serve with a directory login, opened as a
//     person opens it (issue 19)
//  7. the addresses for a browser and the table of numbers
package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tsys-group/tsys-ci/test/addons"
	"github.com/tsys-group/tsys-ci/test/lab"
	"github.com/tsys-group/tsys-ci/test/labaddons"
)

// Options tune Run.
type Options struct {
	// RepoRoot is the tsys-ci checkout (default: found from the working
	// directory, like the lab).
	RepoRoot string
	// Out receives the narration (default os.Stdout).
	Out io.Writer
	// DrillWait bounds how long step 5 waits for e2e tests (which freeze
	// nodes in the same shared lab) to finish before it skips the drill.
	DrillWait time.Duration
	// SkipDrill leaves step 5 out.
	SkipDrill bool
	// BeforeDrill, if set, runs in step 5 just before the nodes are frozen,
	// with the board's page address (the browser test draws on it there).
	// The board is read again after it: what it drew is compared byte for
	// byte after the failover like the rest.
	BeforeDrill func(ctx context.Context, boardURL string) error
	// AfterDrill, if set, runs once the board is served again after the
	// failover and has been compared.
	AfterDrill func(ctx context.Context, boardURL string) error
}

// Number is one line of the summary table.
type Number struct {
	Step, What, Value string
}

// Result is what the demo measured and read, for its test.
type Result struct {
	// RepoRoot is the checkout the demo ran from (its .lab/demo).
	RepoRoot string
	BoardURL string
	// Acked are the strokes the API acknowledged, as it returned them.
	Acked []Stroke
	// BoardBefore is the board read back before the node failure;
	// BoardAfter after it (nil when the drill did not run).
	BoardBefore, BoardAfter []byte
	DrillRan                bool
	// MountRepairs are the GlusterFS mounts found missing or stale (and
	// made again) after the drill.
	MountRepairs []addons.MountRepair
	Numbers      []Number
	// Dashboard is tsys-ci serve's dashboard the demo left running.
	Dashboard Dashboard
}

// Dashboard is where the demo's dashboard answers and who may log in.
type Dashboard struct {
	URL, User, Password string
	// PasswordFile holds Password, for the person the demo prints it to.
	PasswordFile string
	// Serving is the whiteboard's image the dashboard showed as serving.
	Serving string
}

// Demo holds what the steps share.
type Demo struct {
	o      Options
	lab    *lab.Lab
	addons *labaddons.Result
	dir    string   // <repo>/.lab/demo: keys, images, specs
	tsysci string   // the tsys-ci binary built for the demo
	board  string   // the board's id
	wb     [3]image // whiteboard v1, v2, broken
	wbAddr string   // http://IP:PORT of the whiteboard's Service
	res    Result
	start  time.Time
	stepAt time.Time
}

// Run runs the seven steps.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.DrillWait == 0 {
		o.DrillWait = 10 * time.Minute
	}
	if o.RepoRoot == "" {
		l, err := lab.Open(lab.Options{Progress: io.Discard})
		if err != nil {
			return nil, err
		}
		o.RepoRoot = l.RepoRoot()
	}
	d := &Demo{o: o, dir: filepath.Join(o.RepoRoot, ".lab", "demo"), start: time.Now()}
	d.res.RepoRoot = o.RepoRoot
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return nil, fmt.Errorf("making the demo's folder: %w", err)
	}
	steps := []struct {
		title string
		fn    func(context.Context) error
	}{
		{"lab up, build and push --sign the whiteboard", d.stepLabAndImage},
		{"promote the whiteboard, draw on a board, read it back", d.stepPromoteAndDraw},
		{"a new version: recreate for the whiteboard, blue/green for a stateless app", d.stepNewVersion},
		{"a broken whiteboard version: probes fail, promote rolls back on its own", d.stepBroken},
		{"freeze the whiteboard's node and a storage node at once", d.stepFailover},
		{"the dashboard: tsys-ci serve, logged in against a directory", d.stepDashboard},
		{"open it yourself", d.stepSummary},
	}
	// The lab is shared: e2e tests stop and start its nodes, and lab-up
	// would start a node one of them stopped on purpose. Start after them.
	d.stepAt = time.Now()
	if err := d.waitNoE2E(ctx); err != nil {
		return &d.res, fmt.Errorf("%w; run make demo when they are done", err)
	}
	for i, s := range steps {
		d.stepAt = time.Now()
		fmt.Fprintf(o.Out, "\n=== step %d/%d: %s\n", i+1, len(steps), s.title)
		if err := s.fn(ctx); err != nil {
			return &d.res, fmt.Errorf("step %d (%s): %w", i+1, s.title, err)
		}
		took := time.Since(d.stepAt)
		fmt.Fprintf(o.Out, "=== step %d done in %s\n", i+1, round(took))
		if took > time.Second {
			d.number(i+1, "step took", round(took).String())
		}
	}
	d.res.Numbers = append(d.res.Numbers, Number{Step: "all", What: "make demo took", Value: round(time.Since(d.start)).String()})
	fmt.Fprintln(o.Out)
	if err := WriteNumbers(o.Out, d.res.Numbers); err != nil {
		return &d.res, err
	}
	return &d.res, nil
}

// say narrates one line, stamped with the time into the step.
func (d *Demo) say(format string, args ...any) {
	fmt.Fprintf(d.o.Out, "  [%6.1fs] %s\n", time.Since(d.stepAt).Seconds(), fmt.Sprintf(format, args...))
}

func (d *Demo) number(step int, what, value string) {
	d.res.Numbers = append(d.res.Numbers, Number{Step: fmt.Sprint(step), What: what, Value: value})
}

// WriteNumbers prints the summary table.
func WriteNumbers(w io.Writer, ns []Number) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tWHAT\tVALUE")
	for _, n := range ns {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n.Step, n.What, strings.ReplaceAll(n.Value, "\t", " "))
	}
	return tw.Flush()
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d > 100*time.Millisecond:
		return d.Round(10 * time.Millisecond)
	case d > time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
