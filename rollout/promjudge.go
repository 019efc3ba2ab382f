package rollout

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// placeholder is one {{ name }} in a Prometheus analysis query.
var placeholder = regexp.MustCompile(`\{\{\s*([A-Za-z]+)\s*\}\}`)

// unknownPlaceholders lists the query's placeholders that expandQuery
// would not fill, so a typo fails validation instead of a query.
func unknownPlaceholders(q string) []string {
	var bad []string
	for _, m := range placeholder.FindAllStringSubmatch(q, -1) {
		switch m[1] {
		case "color", "app", "namespace", "window":
		default:
			bad = append(bad, m[0])
		}
	}
	return bad
}

// queryVars are what a query's placeholders stand for.
type queryVars struct {
	namespace, app, color string
	// window is the analysis window, or the time this version has been
	// judged when that is shorter, in whole seconds: a
	// range of it holds only the version's own samples, not those of
	// earlier pods of the same color (a version rolled back a minute ago).
	window time.Duration
}

// expandQuery fills the query's placeholders for one version of the app.
func expandQuery(q string, v queryVars) string {
	return placeholder.ReplaceAllStringFunc(q, func(m string) string {
		switch placeholder.FindStringSubmatch(m)[1] {
		case "color":
			return v.color
		case "app":
			return v.app
		case "namespace":
			return v.namespace
		case "window":
			return strconv.Itoa(int(v.window/time.Second)) + "s"
		}
		return m
	})
}

// promJudge asks Prometheus about one version during a watch.
type promJudge struct {
	r       *run
	api     promv1.API
	tmpl    string
	vars    queryVars
	start   time.Time
	limit   float64
	version string
	// query is the last query asked, placeholders filled.
	query string
	// last is the last answer, for the summary and to log a change once.
	last    string
	lastErr string
}

// newPromJudge returns the Prometheus judge of rel, or nil when the spec
// asks for none.
func (r *run) newPromJudge(rel Release) (*promJudge, error) {
	pa := r.spec.Analysis.Prometheus
	if pa == nil {
		return nil, nil
	}
	client := r.p.PrometheusClient
	if client == nil {
		client = http.DefaultClient
	}
	c, err := promapi.NewClient(promapi.Config{Address: pa.Address, Client: client})
	if err != nil {
		return nil, fmt.Errorf("analysis.prometheus.address %q: %w", pa.Address, err)
	}
	return &promJudge{r: r, api: promv1.NewAPI(c), tmpl: pa.Query, start: r.p.Clock.Now(),
		vars:  queryVars{namespace: r.spec.Namespace, app: r.spec.Name, color: rel.Color},
		limit: *pa.Threshold, version: rel.Color + " " + rel.Image}, nil
}

// expand fills the query for now: the window grows with the watch up to
// the spec's analysis.window. It is false in the watch's first second,
// when {{ window }} would be 0s (PromQL refuses it) and a range of 1s
// would reach back before the watch.
func (j *promJudge) expand() bool {
	j.vars.window = min(j.r.spec.Analysis.Window.Duration, j.r.p.Clock.Now().Sub(j.start)).Truncate(time.Second)
	j.query = expandQuery(j.tmpl, j.vars)
	return j.vars.window >= time.Second
}

// promQueryTimeout bounds one query: a slow Prometheus must not hold the
// watch past its next pod check.
const promQueryTimeout = 5 * time.Second

// sample asks the query once; a value above the threshold is a
// *versionFailed. A Prometheus that does not answer is reported once and
// does not fail the version (the pods are still watched), as an edge
// whose stats do not answer.
func (j *promJudge) sample(ctx context.Context) error {
	if !j.expand() {
		return nil
	}
	qctx, cancel := context.WithTimeout(ctx, promQueryTimeout)
	defer cancel()
	// The zero time: Prometheus' own now, whatever the promote's clock.
	v, _, _, err := j.api.Query(qctx, j.query, time.Time{})
	if err == nil {
		var value float64
		var found bool
		value, found, err = worst(v)
		if err == nil {
			j.lastErr = ""
			return j.judge(value, found)
		}
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if msg := err.Error(); msg != j.lastErr {
		j.r.logf("warning: Prometheus query '%s': %v; the analysis goes on when it answers", j.query, err)
		j.lastErr = msg
	}
	return nil
}

func (j *promJudge) judge(value float64, found bool) error {
	if !found {
		if j.last != "no data" {
			j.r.logf("Prometheus query '%s' has no data for %s yet: not judged", j.query, j.version)
			j.last = "no data"
		}
		return nil
	}
	j.last = formatValue(value)
	if value > j.limit {
		return &versionFailed{analysis: true, reason: fmt.Sprintf("%s: Prometheus query '%s' is %s, above analysis.prometheus.threshold %s",
			j.version, j.query, formatValue(value), formatValue(j.limit))}
	}
	return nil
}

func (j *promJudge) summary() string {
	if j.last == "" || j.last == "no data" {
		return fmt.Sprintf("analysis %s: Prometheus query '%s' had no data: not judged", j.version, j.query)
	}
	return fmt.Sprintf("analysis %s: Prometheus query '%s' was %s at the end, within analysis.prometheus.threshold %s", j.version, j.query, j.last, formatValue(j.limit))
}

// worst is the largest value of an instant query's answer (a scalar or
// each series of a vector); found is false for an empty vector. NaN (a
// rate of nothing divided by nothing) counts as no data.
func worst(v model.Value) (float64, bool, error) {
	switch v := v.(type) {
	case *model.Scalar:
		f := float64(v.Value)
		return f, !math.IsNaN(f), nil
	case model.Vector:
		var vals []float64
		for _, s := range v {
			if f := float64(s.Value); !math.IsNaN(f) {
				vals = append(vals, f)
			}
		}
		if len(vals) == 0 {
			return 0, false, nil
		}
		sort.Float64s(vals)
		return vals[len(vals)-1], true, nil
	case nil:
		return 0, false, errors.New("no answer")
	default:
		return 0, false, fmt.Errorf("the answer is a %s; write an instant query giving a number or a vector (e.g. sum(rate(...[1m])))", v.Type())
	}
}

func formatValue(f float64) string {
	return strings.TrimSuffix(strconv.FormatFloat(f, 'g', 4, 64), ".0")
}
