package jenkinsstandin

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// leftItemTTL is how long Jenkins keeps a left queue item (Queue.java).
const leftItemTTL = 5 * time.Minute

type queueItem struct {
	id        int
	job       *item
	params    map[string]string
	user      string
	since     time.Time
	cancelled bool
	leftAt    time.Time // zero while waiting
	build     *Build
}

// Build is one run of a pipeline job. The Runner writes its console.
type Build struct {
	s        *Server
	job      *item
	number   int
	queueID  int
	params   map[string]string
	user     string
	started  time.Time
	log      []byte
	result   string
	building bool
	duration time.Duration
}

// Job is the full name of the build's job ("folder/job").
func (b *Build) Job() string {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return b.job.fullName()
}

// Number is the build number.
func (b *Build) Number() int { return b.number }

// Param is the value of a build parameter.
func (b *Build) Param(name string) string { return b.params[name] }

// Logf appends to the console, which clients read while the build runs.
func (b *Build) Logf(format string, args ...any) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	b.log = fmt.Appendf(b.log, format, args...)
}

// SetResult sets the result before the build is complete, as Pipeline
// does: clients that stop at a non-null result instead of building=false
// read a console that is not finished yet.
func (b *Build) SetResult(result string) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	b.result = result
}

// triggerBuild is ParameterizedJobMixIn.doBuild / doBuildWithParameters.
func (s *Server) triggerBuild(q *request, job *item, withParams bool) {
	if job.meta.disabled {
		writeHTML(q, http.StatusConflict, job.fullName()+" is disabled")
		return
	}
	var params map[string]string
	if withParams {
		if len(job.meta.params) == 0 {
			writeHTML(q, http.StatusBadRequest, job.fullName()+" is not parameterized")
			return
		}
		if err := q.r.ParseForm(); err != nil {
			writeHTML(q, http.StatusBadRequest, "bad form: "+err.Error())
			return
		}
		params = map[string]string{}
		for _, p := range job.meta.params {
			params[p.name] = p.defaultValue
			if v, ok := q.r.Form[p.name]; ok && len(v) > 0 {
				params[p.name] = v[0]
			}
		}
	} else if len(job.meta.params) > 0 {
		// Without a submitted form Jenkins shows or rejects the parameter
		// form; the stand-in rejects (the exact code is unconfirmed).
		writeHTML(q, http.StatusBadRequest, job.fullName()+" is parameterized: use buildWithParameters")
		return
	}
	for _, qi := range s.queue {
		if qi.job != job || !qi.leftAt.IsZero() {
			continue
		}
		if !maps.Equal(qi.params, params) {
			continue
		}
		loc := baseURL(q.r) + fmt.Sprintf("queue/item/%d/", qi.id)
		q.w.Header().Set("Location", loc)
		if withParams {
			// Since 2.308 the same parameters already queued answer 303.
			q.w.WriteHeader(http.StatusSeeOther)
			return
		}
		q.w.WriteHeader(http.StatusCreated)
		return
	}
	qi := &queueItem{id: s.nextQueueID, job: job, params: params, user: q.name(), since: s.opts.Now()}
	s.nextQueueID++
	s.queue[qi.id] = qi
	quiet := s.opts.QuietPeriod
	if d := q.r.URL.Query().Get("delay"); d != "" {
		if n, err := strconv.Atoi(strings.TrimSuffix(d, "sec")); err == nil {
			quiet = time.Duration(n) * time.Second
		}
	}
	if !s.closed {
		id := qi.id
		s.pendingTimer[id] = time.AfterFunc(quiet, func() { s.start(id) })
	}
	q.w.Header().Set("Location", baseURL(q.r)+fmt.Sprintf("queue/item/%d/", qi.id))
	q.w.WriteHeader(http.StatusCreated)
}

// start moves a queue item out of the queue into a new build and runs it.
func (s *Server) start(id int) {
	s.mu.Lock()
	delete(s.pendingTimer, id)
	qi := s.queue[id]
	if s.closed || qi == nil || qi.cancelled || !qi.leftAt.IsZero() {
		s.mu.Unlock()
		return
	}
	job := qi.job
	b := &Build{s: s, job: job, number: job.nextBuild, queueID: id, params: qi.params, user: qi.user,
		started: s.opts.Now(), building: true}
	b.log = fmt.Appendf(nil, "Started by user %s\n", qi.user)
	job.nextBuild++
	job.builds = append(job.builds, b)
	qi.build, qi.leftAt = b, s.opts.Now()
	s.runners.Add(1)
	s.mu.Unlock()

	go func() {
		defer s.runners.Done()
		result := s.opts.Runner(b)
		s.mu.Lock()
		defer s.mu.Unlock()
		b.result = result
		b.log = fmt.Appendf(b.log, "Finished: %s\n", result)
		b.building = false
		b.duration = s.opts.Now().Sub(b.started)
	}()
}

// CancelQueueItem cancels a waiting queue item, as the queue's cancel
// button does. It reports whether the item was waiting.
func (s *Server) CancelQueueItem(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelLocked(id)
}

func (s *Server) cancelLocked(id int) bool {
	qi := s.queue[id]
	if qi == nil || !qi.leftAt.IsZero() {
		return false
	}
	if t := s.pendingTimer[id]; t != nil {
		t.Stop()
		delete(s.pendingTimer, id)
	}
	qi.cancelled, qi.leftAt = true, s.opts.Now()
	return true
}

// serveQueue answers /queue/api/json and /queue/item/N/api/json.
func (s *Server) serveQueue(q *request, tokens []string) {
	s.expireLeftItems()
	if isAPIJSON(tokens) {
		items := []map[string]any{}
		for _, id := range slices.Sorted(maps.Keys(s.queue)) {
			if qi := s.queue[id]; qi.leftAt.IsZero() {
				items = append(items, s.queueItemJSON(q.r, qi))
			}
		}
		writeJSON(q, map[string]any{"_class": "hudson.model.Queue", "items": items})
		return
	}
	if len(tokens) < 2 || tokens[0] != "item" {
		notFound(q)
		return
	}
	id, err := strconv.Atoi(tokens[1])
	qi := s.queue[id]
	if err != nil || qi == nil {
		notFound(q)
		return
	}
	if !isAPIJSON(tokens[2:]) {
		writeHTML(q, http.StatusOK, fmt.Sprintf("queue item %d", id))
		return
	}
	writeJSON(q, s.queueItemJSON(q.r, qi))
}

func (s *Server) expireLeftItems() {
	now := s.opts.Now()
	for id, qi := range s.queue {
		if !qi.leftAt.IsZero() && now.Sub(qi.leftAt) > leftItemTTL {
			delete(s.queue, id)
		}
	}
}

func (s *Server) queueItemJSON(r *http.Request, qi *queueItem) map[string]any {
	base := baseURL(r)
	var params strings.Builder
	for _, k := range slices.Sorted(maps.Keys(qi.params)) {
		fmt.Fprintf(&params, "\n%s=%s", k, qi.params[k])
	}
	m := map[string]any{
		"id":           qi.id,
		"inQueueSince": qi.since.UnixMilli(),
		"params":       params.String(),
		"blocked":      false,
		"buildable":    false,
		"stuck":        false,
		"url":          fmt.Sprintf("queue/item/%d/", qi.id),
		"task": map[string]any{
			"_class": pipelineClass, "name": qi.job.name, "url": base + qi.job.path(), "color": s.color(qi.job),
		},
		"actions": []any{map[string]any{
			"_class": "hudson.model.CauseAction",
			"causes": []any{map[string]any{
				"_class":           "hudson.model.Cause$UserIdCause",
				"shortDescription": "Started by user " + qi.user,
				"userId":           qi.user,
			}},
		}},
	}
	if qi.leftAt.IsZero() {
		m["_class"] = "hudson.model.Queue$WaitingItem"
		m["why"] = "In the quiet period."
		return m
	}
	m["_class"] = "hudson.model.Queue$LeftItem"
	m["why"] = nil
	m["cancelled"] = qi.cancelled
	m["executable"] = nil
	if qi.build != nil {
		m["executable"] = map[string]any{"_class": runClass, "number": qi.build.number, "url": base + qi.job.path() + strconv.Itoa(qi.build.number) + "/"}
	}
	return m
}

// serveBuild answers /job/X/N/... for a build.
func (s *Server) serveBuild(q *request, job *item, n int, tokens []string) {
	var b *Build
	for _, c := range job.builds {
		if c.number == n {
			b = c
		}
	}
	if b == nil {
		notFound(q)
		return
	}
	switch {
	case len(tokens) == 0:
		writeHTML(q, http.StatusOK, fmt.Sprintf("%s #%d", job.fullName(), n))
	case isAPIJSON(tokens):
		writeJSON(q, s.buildJSON(q.r, b))
	case tokens[0] == "consoleText":
		q.w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
		q.w.WriteHeader(http.StatusOK)
		q.w.Write(b.log)
	case len(tokens) >= 2 && tokens[0] == "logText" && tokens[1] == "progressiveText":
		// LargeText.doProgressText: a start past the end restarts at 0.
		start, _ := strconv.Atoi(q.r.URL.Query().Get("start"))
		if start < 0 || start > len(b.log) {
			start = 0
		}
		h := q.w.Header()
		h.Set("Content-Type", "text/plain;charset=UTF-8")
		h.Set("X-Text-Size", strconv.Itoa(len(b.log)))
		if b.building {
			h.Set("X-More-Data", "true")
		}
		q.w.WriteHeader(http.StatusOK)
		q.w.Write(b.log[start:])
	default:
		notFound(q)
	}
}

func (s *Server) buildJSON(r *http.Request, b *Build) map[string]any {
	var result any
	if b.result != "" {
		result = b.result
	}
	actions := []any{map[string]any{
		"_class": "hudson.model.CauseAction",
		"causes": []any{map[string]any{"_class": "hudson.model.Cause$UserIdCause", "shortDescription": "Started by user " + b.user, "userId": b.user}},
	}}
	if len(b.params) > 0 {
		var ps []any
		for _, k := range slices.Sorted(maps.Keys(b.params)) {
			ps = append(ps, map[string]any{"_class": "hudson.model.StringParameterValue", "name": k, "value": b.params[k]})
		}
		actions = append(actions, map[string]any{"_class": "hudson.model.ParametersAction", "parameters": ps})
	}
	return map[string]any{
		"_class":          runClass,
		"number":          b.number,
		"id":              strconv.Itoa(b.number),
		"url":             baseURL(r) + b.job.path() + strconv.Itoa(b.number) + "/",
		"displayName":     "#" + strconv.Itoa(b.number),
		"fullDisplayName": strings.ReplaceAll(b.job.fullName(), "/", " » ") + " #" + strconv.Itoa(b.number),
		"building":        b.building,
		"inProgress":      b.building,
		"result":          result,
		"timestamp":       b.started.UnixMilli(),
		"duration":        b.duration.Milliseconds(),
		"queueId":         b.queueID,
		"actions":         actions,
		"artifacts":       []any{},
	}
}

func (s *Server) jobJSON(r *http.Request, job *item, m map[string]any) {
	base := baseURL(r)
	ref := func(b *Build) any {
		if b == nil {
			return nil
		}
		return map[string]any{"_class": runClass, "number": b.number, "url": base + job.path() + strconv.Itoa(b.number) + "/"}
	}
	var builds []any
	for i := len(job.builds) - 1; i >= 0; i-- {
		builds = append(builds, ref(job.builds[i]))
	}
	var last *Build
	if len(job.builds) > 0 {
		last = job.builds[len(job.builds)-1]
	}
	var queued *queueItem
	for _, qi := range s.queue {
		if qi.job == job && qi.leftAt.IsZero() && (queued == nil || qi.id < queued.id) {
			queued = qi
		}
	}
	m["buildable"] = !job.meta.disabled
	m["color"] = s.color(job)
	m["concurrentBuild"] = true
	m["inQueue"] = queued != nil
	m["queueItem"] = nil
	if queued != nil {
		m["queueItem"] = map[string]any{"_class": "hudson.model.Queue$WaitingItem", "id": queued.id, "url": fmt.Sprintf("queue/item/%d/", queued.id)}
	}
	m["nextBuildNumber"] = job.nextBuild
	m["builds"] = builds
	m["lastBuild"] = ref(last)
	m["firstBuild"] = nil
	if len(job.builds) > 0 {
		m["firstBuild"] = ref(job.builds[0])
	}
	props := []any{}
	if len(job.meta.params) > 0 {
		var defs []any
		for _, p := range job.meta.params {
			defs = append(defs, map[string]any{
				"_class": "hudson.model.StringParameterDefinition", "name": p.name, "type": "StringParameterDefinition",
				"defaultParameterValue": map[string]any{"_class": "hudson.model.StringParameterValue", "name": p.name, "value": p.defaultValue},
			})
		}
		props = append(props, map[string]any{"_class": "hudson.model.ParametersDefinitionProperty", "parameterDefinitions": defs})
	}
	m["property"] = props
}

// color is BallColor: the last completed result, animated while building.
func (s *Server) color(job *item) string {
	if job.meta.disabled {
		return "disabled"
	}
	c := "notbuilt"
	anime := false
	for _, b := range job.builds {
		if b.building {
			anime = true
			continue
		}
		switch b.result {
		case "SUCCESS":
			c = "blue"
		case "UNSTABLE":
			c = "yellow"
		case "FAILURE":
			c = "red"
		case "ABORTED":
			c = "aborted"
		default:
			c = "notbuilt"
		}
	}
	if anime {
		return c + "_anime"
	}
	return c
}

// IndexBranch does what branch indexing of a multibranch project does for
// one branch: it makes the branch's pipeline job (fullName "folder/project")
// if it is not there. The stand-in has no SCM to index, so tests call this.
func (s *Server) IndexBranch(project, branch string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.root
	for _, seg := range strings.Split(project, "/") {
		if it = it.child(seg); it == nil {
			return fmt.Errorf("Jenkins stand-in: no item %s", project)
		}
	}
	if it.kind != kindMultibranch {
		return fmt.Errorf("Jenkins stand-in: %s is not a multibranch project", project)
	}
	if it.child(branch) == nil {
		config := []byte(`<flow-definition><description>branch ` + branch + `</description></flow-definition>`)
		it.children = append(it.children, &item{name: branch, kind: kindPipeline, parent: it, config: config, nextBuild: 1})
	}
	return nil
}
