package rollout

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// edgeConfirmPoll is how often the edge's stats are read while waiting
// for it to show new weights.
const edgeConfirmPoll = 100 * time.Millisecond

// edgeBackends are the edge's top-level backends of the app: one per
// hosted port of its Service.
func (r *run) edgeBackends() []string {
	var out []string
	for _, p := range HostedPorts(r.spec) {
		out = append(out, edgeBackendName(r.spec.Namespace, r.spec.Name, p.Name))
	}
	return out
}

// confirmEdge waits until the edge's stats show the weights promote last
// wrote on every top-level backend of the app. Without an edge stats URL it
// says it cannot confirm them. An edge that does not show them in
// EdgeConfirmTimeout fails the promote (it rolls back): traffic would be
// where promote cannot see it.
func (r *run) confirmEdge(ctx context.Context) error {
	w := r.state.EdgeWeights
	if len(w) == 0 {
		return nil
	}
	edge, err := r.edgeConfig(ctx)
	if err != nil {
		return err
	}
	if edge == nil {
		r.logf("edge weights %s written; no edge stats URL in the pool (pool.json edge.statsURL), so promote cannot confirm them nor judge the version by its users' requests", w.Describe())
		return nil
	}
	start := r.p.Clock.Now()
	deadline := start.Add(r.p.EdgeConfirmTimeout)
	shown := ""
	for {
		rows, err := r.p.EdgeStats.Read(ctx, edge.StatsURL)
		if err != nil {
			shown = err.Error()
		} else if shown = weightsShown(rows, r.edgeBackends(), w); shown == "" {
			r.logf("the edge shows weights %s (after %s)", w.Describe(), r.p.Clock.Now().Sub(start).Round(time.Millisecond))
			return nil
		}
		if !r.p.Clock.Now().Before(deadline) {
			return &versionFailed{reason: fmt.Sprintf("the edge did not apply edge weights %s within %s (%s): is 'tsys-ci edge sync --watch --by-version' running for this cluster and namespace? Promote returns traffic to the previous version rather than leave it where it cannot see it", w.Describe(), r.p.EdgeConfirmTimeout, shown)}
		}
		if err := r.sleep(ctx, edgeConfirmPoll); err != nil {
			return err
		}
	}
}

// weightsShown says how the stats rows differ from the asked weights (""
// when every backend's color servers carry them). A color asked at 0 may
// be missing: it gets no requests either way.
func weightsShown(rows []ServerStats, backends []string, w EdgeWeights) string {
	got := map[string]map[string]int{}
	for _, r := range rows {
		if got[r.Proxy] == nil {
			got[r.Proxy] = map[string]int{}
		}
		got[r.Proxy][r.Server] = r.Weight
	}
	colors := make([]string, 0, len(w))
	for c := range w {
		colors = append(colors, c)
	}
	sort.Strings(colors)
	var diffs []string
	for _, b := range backends {
		servers, ok := got[b]
		if !ok {
			diffs = append(diffs, "no backend "+b)
			continue
		}
		for _, c := range colors {
			have, ok := servers[c]
			switch {
			case !ok && w[c] != 0:
				diffs = append(diffs, fmt.Sprintf("no server %s/%s", b, c))
			case ok && have != w[c]:
				diffs = append(diffs, fmt.Sprintf("%s/%s has weight %d", b, c, have))
			}
		}
	}
	return strings.Join(diffs, ", ")
}

// judge samples the edge for one version during a watch and fails it when
// the analysis says so.
type judge struct {
	r       *run
	url     string
	color   string
	version string
	window  Window
	lastErr string
	// saved is when the window was last written into the state.
	saved time.Time
}

// newJudge returns the judge of rel for a watch, or nil when the app has
// no hosted port or no edge stats URL is configured (pods alone judge).
func (r *run) newJudge(ctx context.Context, rel Release) (*judge, error) {
	if len(HostedPorts(r.spec)) == 0 {
		return nil, nil
	}
	edge, err := r.edgeConfig(ctx)
	if err != nil || edge == nil {
		return nil, err
	}
	return &judge{r: r, url: edge.StatsURL, color: rel.Color, version: rel.Color + " " + rel.Image, window: Window{Span: r.spec.Analysis.Window.Duration},
		saved: r.p.Clock.Now()}, nil
}

// sample reads the edge once; a breach is a *versionFailed. A failed read
// is reported once and does not fail the version.
func (j *judge) sample(ctx context.Context) error {
	rows, err := j.r.p.EdgeStats.Read(ctx, j.url)
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if msg := err.Error(); msg != j.lastErr {
			j.r.logf("warning: %v; the analysis goes on when the stats answer again", err)
			j.lastErr = msg
		}
		return nil
	}
	j.lastErr = ""
	now := j.r.p.Clock.Now()
	j.window.Add(now, colorCounters(rows, j.r.edgeBackends()))
	reason := j.r.spec.Analysis.Judge(j.version, j.window.Stats(j.color))
	if reason != "" || now.Sub(j.saved) >= j.r.p.PollInterval {
		if err := j.record(ctx); err != nil {
			return err
		}
	}
	if reason != "" {
		return &versionFailed{reason: reason, analysis: true}
	}
	return nil
}

// record writes what each version of the app did in the window into the
// state, so 'tsys-ci status' and serve's dashboard show the numbers the
// analysis judges by. A failed write is a warning: the numbers are for
// people; the judging goes on.
func (j *judge) record(ctx context.Context) error {
	now := j.r.p.Clock.Now()
	j.saved = now
	s := j.r.state
	images := map[string]string{}
	for _, rel := range []*Release{s.Previous, s.Active, s.Candidate} {
		if rel != nil {
			images[rel.Color] = rel.Image
		}
	}
	t := &EdgeTraffic{At: now.UTC()}
	for _, color := range []string{ColorBlue, ColorGreen} {
		latest, ok := j.window.Latest()[color]
		if !ok {
			continue
		}
		w := j.window.Stats(color)
		t.WindowSeconds = w.Span.Seconds()
		t.Versions = append(t.Versions, VersionTraffic{Color: color, Image: images[color], Requests: w.Requests, Failed: w.Failed(),
			ErrorRate: w.ErrorRate(), ResponseTimeMs: w.ResponseTime.Milliseconds(), WeightGiven: &latest.Weight})
	}
	s.EdgeTraffic = t
	if err := j.r.save(ctx, s.Phase, s.Message); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		j.r.logf("warning: recording the edge's numbers in the state: %v", err)
	}
	return nil
}

func (j *judge) summary() string {
	return "analysis " + j.r.spec.Analysis.Summary(j.version, j.window.Stats(j.color))
}
