package jenkins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Actions a seed takes on an item.
const (
	ActionCreate    = "create"
	ActionUpdate    = "update"
	ActionUnchanged = "unchanged"
	ActionDelete    = "delete" // only with Prune
	ActionExtra     = "extra"  // in Jenkins, not in the jobs file, kept
)

// Change is what seeding does, or would do, to one item.
type Change struct {
	Action string
	Name   string
	Kind   string // KindFolder, KindMultibranch, KindPipeline, or Jenkins' _class for extras
	Diff   string // for updates: Jenkins' config -> the template's
	item   Item
}

// SeedOptions control a seed.
type SeedOptions struct {
	DryRun bool // compute and print the changes, change nothing
	Prune  bool // delete items that are not in the jobs file
	// Out receives one line per change (and diffs on a dry run); nil
	// discards them.
	Out io.Writer
}

// Seed makes Jenkins' folders and jobs match the jobs file: it creates
// what is missing, updates what differs, reports items the file does not
// name, and deletes those only with Prune. A second run changes nothing.
func Seed(ctx context.Context, c *Client, f *JobsFile, opts SeedOptions) ([]Change, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	items, err := f.Render()
	if err != nil {
		return nil, err
	}
	changes, err := plan(ctx, c, items, opts.Prune)
	if err != nil {
		return nil, err
	}
	for _, ch := range changes {
		printChange(opts.Out, ch, opts.DryRun)
		if opts.DryRun {
			continue
		}
		if err := apply(ctx, c, ch); err != nil {
			return changes, err
		}
	}
	printSummary(opts.Out, changes, opts.DryRun)
	return changes, nil
}

// plan compares the rendered items with Jenkins, parents before children,
// then lists what Jenkins has beyond them.
func plan(ctx context.Context, c *Client, items []Item, prune bool) ([]Change, error) {
	var changes []Change
	creating := map[string]bool{}
	want := map[string]bool{}
	for _, it := range items {
		want[strings.ToLower(it.Name)] = true
		parents, _ := split(it.Name)
		if len(parents) > 0 && creating[strings.ToLower(strings.Join(parents, "/"))] {
			creating[strings.ToLower(it.Name)] = true
			changes = append(changes, Change{Action: ActionCreate, Name: it.Name, Kind: it.Kind, item: it})
			continue
		}
		job, err := c.getJob(ctx, it.Name)
		if errors.Is(err, errNotFound) {
			creating[strings.ToLower(it.Name)] = true
			changes = append(changes, Change{Action: ActionCreate, Name: it.Name, Kind: it.Kind, item: it})
			continue
		}
		if err != nil {
			return nil, err
		}
		if cls := job.Raw.Class; cls != classOfKind[it.Kind] {
			return nil, fmt.Errorf("%s is a %s in Jenkins but jobs.yaml declares a %s: delete or rename it in Jenkins (or in jobs.yaml), then seed again", it.Name, cls, it.Kind)
		}
		have, err := c.config(ctx, job, it.Name)
		if err != nil {
			return nil, err
		}
		same, diff, err := compareConfig(have, it.Config)
		if err != nil {
			return nil, fmt.Errorf("comparing %s with Jenkins: %w", it.Name, err)
		}
		action := ActionUnchanged
		if !same {
			action = ActionUpdate
		}
		changes = append(changes, Change{Action: action, Name: it.Name, Kind: it.Kind, Diff: diff, item: it})
	}
	extras, err := extraItems(ctx, c, "", want)
	if err != nil {
		return nil, err
	}
	for _, e := range extras {
		if prune {
			e.Action = ActionDelete
		}
		changes = append(changes, e)
	}
	return changes, nil
}

// extraItems walks Jenkins' folders below prefix and returns the items the
// jobs file does not name. It does not descend into an extra folder (it
// goes as a whole) nor into multibranch projects (Jenkins makes their
// branch jobs).
func extraItems(ctx context.Context, c *Client, prefix string, want map[string]bool) ([]Change, error) {
	kids, err := c.children(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []Change
	for _, k := range kids {
		full := k.Name
		if prefix != "" {
			full = prefix + "/" + k.Name
		}
		if !want[strings.ToLower(full)] {
			out = append(out, Change{Action: ActionExtra, Name: full, Kind: kindOfClass(k.Class)})
			continue
		}
		if k.Class == classOfKind[KindFolder] {
			more, err := extraItems(ctx, c, full, want)
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		}
	}
	return out, nil
}

func kindOfClass(cls string) string {
	for k, c := range classOfKind {
		if c == cls {
			return k
		}
	}
	return cls
}

func apply(ctx context.Context, c *Client, ch Change) (err error) {
	defer guard(fmt.Sprintf("%s %s", ch.Action, ch.Name), &err)
	switch ch.Action {
	case ActionCreate:
		parents, name := split(ch.Name)
		var err error
		if len(parents) == 0 {
			_, err = c.j.CreateJob(ctx, string(ch.item.Config), name)
		} else {
			_, err = c.j.CreateJobInFolder(ctx, string(ch.item.Config), name, parents...)
		}
		if err != nil {
			return fmt.Errorf("creating %s %s in Jenkins: %w", ch.Kind, ch.Name, httpErr(err))
		}
	case ActionUpdate:
		// Jenkins.UpdateJob drops the error; Job.UpdateConfig returns it.
		job, err := c.getJob(ctx, ch.Name)
		if err != nil {
			return fmt.Errorf("updating %s: %w", ch.Name, err)
		}
		if err := job.UpdateConfig(ctx, string(ch.item.Config)); err != nil {
			return fmt.Errorf("updating %s %s in Jenkins: %w", ch.Kind, ch.Name, httpErr(err))
		}
	case ActionDelete:
		if _, err := c.j.DeleteJob(ctx, jenkinsPath(ch.Name)); err != nil {
			return fmt.Errorf("deleting %s from Jenkins: %w", ch.Name, httpErr(err))
		}
	}
	return nil
}

// httpErr explains gojenkins' bare status-code errors.
func httpErr(err error) error {
	switch err.Error() {
	case "403":
		return fmt.Errorf("HTTP 403: the user lacks the Job permission this needs")
	case "404":
		return fmt.Errorf("HTTP 404: the item or its folder is gone")
	case "500":
		return fmt.Errorf("HTTP 500: Jenkins could not load the config (a plugin the template needs may be missing)")
	}
	return err
}

func printChange(w io.Writer, ch Change, dryRun bool) {
	would := ""
	if dryRun {
		would = "would "
	}
	switch ch.Action {
	case ActionCreate:
		fmt.Fprintf(w, "+ %screate %s %s\n", would, ch.Kind, ch.Name)
		if dryRun {
			if n, err := parseXML(ch.item.Config); err == nil {
				for _, l := range n.lines() {
					fmt.Fprintf(w, " + %s\n", l)
				}
			}
		}
	case ActionUpdate:
		fmt.Fprintf(w, "~ %supdate %s %s\n", would, ch.Kind, ch.Name)
		if dryRun {
			fmt.Fprint(w, ch.Diff)
		}
	case ActionUnchanged:
		fmt.Fprintf(w, "= %s %s is up to date\n", ch.Kind, ch.Name)
	case ActionDelete:
		fmt.Fprintf(w, "- %sdelete %s %s (not in jobs.yaml; --prune)\n", would, ch.Kind, ch.Name)
	case ActionExtra:
		fmt.Fprintf(w, "! %s %s is in Jenkins but not in jobs.yaml; kept (--prune deletes it)\n", ch.Kind, ch.Name)
	}
}

func printSummary(w io.Writer, changes []Change, dryRun bool) {
	n := map[string]int{}
	for _, ch := range changes {
		n[ch.Action]++
	}
	if n[ActionCreate]+n[ActionUpdate]+n[ActionDelete] == 0 {
		fmt.Fprintf(w, "no changes: %d items up to date", n[ActionUnchanged])
		if n[ActionExtra] > 0 {
			fmt.Fprintf(w, ", %d not in jobs.yaml", n[ActionExtra])
		}
		fmt.Fprintln(w)
		return
	}
	prefix := ""
	if dryRun {
		prefix = "dry run, nothing changed: would have "
	}
	fmt.Fprintf(w, "%s%d created, %d updated, %d deleted, %d unchanged", prefix,
		n[ActionCreate], n[ActionUpdate], n[ActionDelete], n[ActionUnchanged])
	if n[ActionExtra] > 0 {
		fmt.Fprintf(w, ", %d not in jobs.yaml (kept)", n[ActionExtra])
	}
	fmt.Fprintln(w)
}
