package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// EdgeWeights is the share of the edge's requests each color gets, in
// whole percent summing to 100: the value of contract.AnnotationEdgeWeights
// on the app's Service. Promote is its only writer; the edge applies it to
// HAProxy's top-level servers (named by color) through the runtime API.
type EdgeWeights map[string]int

// String is the annotation's JSON, keys sorted: {"blue":95,"green":5}.
func (w EdgeWeights) String() string {
	data, err := json.Marshal(map[string]int(w))
	if err != nil {
		panic(fmt.Sprintf("marshalling edge weights: %v", err)) // a map of ints cannot fail
	}
	return string(data)
}

// Validate says what is wrong with a set of weights.
func (w EdgeWeights) Validate() error {
	sum := 0
	for color, v := range w {
		if color != ColorBlue && color != ColorGreen {
			return fmt.Errorf("edge weights %s: color %q is not %s or %s", w, color, ColorBlue, ColorGreen)
		}
		if v < 0 || v > 100 {
			return fmt.Errorf("edge weights %s: %s has %d, want 0-100", w, color, v)
		}
		sum += v
	}
	if sum != 100 {
		return fmt.Errorf("edge weights %s: sum %d, want 100", w, sum)
	}
	return nil
}

// Describe reads well in a console: "blue 95%, green 5%".
func (w EdgeWeights) Describe() string {
	colors := make([]string, 0, len(w))
	for c := range w {
		colors = append(colors, c)
	}
	sort.Strings(colors)
	parts := make([]string, len(colors))
	for i, c := range colors {
		parts[i] = fmt.Sprintf("%s %d%%", c, w[c])
	}
	return strings.Join(parts, ", ")
}

// split gives the candidate color w percent and the stable one the rest.
func split(stable, candidate string, w int) EdgeWeights {
	return EdgeWeights{stable: 100 - w, candidate: w}
}

// allOn gives color 100 and every other color of the app that has a
// Deployment (the previous version kept for a rollback, a candidate) 0, so
// the edge keeps a server for each at weight 0.
func (r *run) allOn(color string) EdgeWeights {
	w := EdgeWeights{color: 100}
	for _, rel := range []*Release{r.state.Active, r.state.Previous, r.state.Candidate} {
		if rel != nil && rel.Color != color {
			w[rel.Color] = 0
		}
	}
	return w
}

// EdgeConfig is how promote reads the edge: the HAProxy stats CSV URL
// (a stats frontend's "stats uri" + ";csv"). Set once per cluster in the
// pool ConfigMap (pool.json "edge"). Without it promote still writes edge
// weights, but cannot confirm that the edge applied them nor judge a
// version by its users' traffic, and canary weights are pod ratios.
type EdgeConfig struct {
	StatsURL string `json:"statsURL"`
}

// Validate says what is wrong with the edge settings.
func (e *EdgeConfig) Validate() error {
	u, err := url.Parse(e.StatsURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("edge.statsURL: %q is not an http(s) URL; write the edge's stats CSV address, e.g. \"http://10.0.0.2:8404/stats;csv\"", e.StatsURL)
	}
	if u.User != nil {
		return fmt.Errorf("edge.statsURL: %q holds credentials; set TSYS_CI_EDGE_STATS_USER and TSYS_CI_EDGE_STATS_PASSWORD in promote's environment instead", u.Redacted())
	}
	return nil
}

// edgeConfig reads the edge settings from the pool ConfigMap once per run;
// nil when none are set (or no pool is configured).
func (r *run) edgeConfig(ctx context.Context) (*EdgeConfig, error) {
	if r.edgeRead {
		return r.edge, nil
	}
	if r.p.Allocator == nil {
		r.edgeRead = true
		return nil, nil
	}
	e, err := r.p.Allocator.Edge(ctx)
	if err != nil {
		return nil, err
	}
	r.edge, r.edgeRead = e, true
	return e, nil
}

// edgeBackendName is the edge's top-level backend of one port of a
// Service (platform/edge.BackendName; a test keeps the two equal): its
// servers are named by color.
func edgeBackendName(namespace, service, port string) string {
	return "tsys-ci." + namespace + "." + service + "." + port
}

// weightsNote ends a progress line with the edge weights last written,
// for an app with hosts.
func (r *run) weightsNote() string {
	if len(r.state.EdgeWeights) == 0 {
		return ""
	}
	return "; edge weights " + r.state.EdgeWeights.Describe()
}
