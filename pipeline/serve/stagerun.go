package serve

import (
	"context"
	"fmt"
	"time"

	"github.com/tsys-group/tsys-ci/rollout"
	corev1 "k8s.io/api/core/v1"
)

// DefaultStageInterval is how often the leader checks the stages' gates.
const DefaultStageInterval = 15 * time.Second

// StageEventSink exports what happens in a staged pipeline (gates,
// approvals, refusals) as Kubernetes Events; KubeEventSink is one.
type StageEventSink interface {
	StageEvent(ctx context.Context, namespace, app, eventType, reason, message string) error
}

// stagesOn reports whether serve keeps a stage record (it needs the
// cluster).
func (s *Server) stagesOn() bool { return s.stageStore != nil }

// stagedPolicy is the policy with stages deploying app (in namespace, its
// first stage's, when not ""), or nil.
func (s *Server) stagedPolicy(namespace, app string) (*DeployPolicy, int) {
	var found *DeployPolicy
	n := 0
	for i := range s.cfg.Policies {
		p := &s.cfg.Policies[i]
		if len(p.Stages) == 0 || p.App != app || (namespace != "" && p.Namespace != namespace) {
			continue
		}
		if found == nil || found.Namespace != p.Namespace {
			n++
		}
		if found == nil {
			found = p
		}
	}
	return found, n
}

// stageEvent writes an Event on the app's Service in the stage's
// namespace, best effort (logged when refused).
func (s *Server) stageEvent(ctx context.Context, namespace, app, typ, reason, msg string) {
	if s.stageEvents == nil {
		return
	}
	if err := s.stageEvents.StageEvent(ctx, namespace, app, typ, reason, msg); err != nil {
		s.log.Warn("stage event not recorded", "app", app, "namespace", namespace, "reason", reason, "err", err)
	}
}

// stageQueued records that a push is about to be queued for the first
// stage: before it is queued (under stageMu), so its end always finds the
// record saying deploying.
func (s *Server) stageQueued(ctx context.Context, p DeployPolicy, req DeployRequest, at time.Time) {
	if !s.stagesOn() || len(p.Stages) == 0 {
		return
	}
	_, err := s.stageStore.Update(ctx, p.Namespace, p.App, func(r *StageRecord) error {
		r.align(p)
		st := &r.Stages[0]
		*st = StageStatus{Name: st.Name, Namespace: st.Namespace, Approvals: st.Approvals, Waiting: st.Waiting,
			Digest: digestOf(req.Image), Image: req.Image, Tag: req.Tag, PushedBy: req.By, State: StageDeploying, Queued: at}
		r.log(StageLogEntry{At: at, Stage: st.Name, Digest: st.Digest, Kind: "deploy", Result: "queued", By: req.By,
			Message: fmt.Sprintf("push of tag %s by %s deploys to the first stage %s (namespace %s)", req.Tag, req.By, st.Name, st.Namespace)})
		return nil
	})
	if err != nil {
		s.log.Error("stage deploy not recorded", "app", p.App, "stage", p.Stages[0].Name, "image", req.Image, "err", err)
	}
}

// stageNotQueued records that the deploy stageQueued announced was not
// queued after all (the queue was full: Harbor retries the push).
func (s *Server) stageNotQueued(ctx context.Context, p DeployPolicy, req DeployRequest, why error) {
	if !s.stagesOn() || req.Stage == "" {
		return
	}
	_, err := s.stageStore.Update(ctx, p.Namespace, p.App, func(r *StageRecord) error {
		if st := r.stage(req.Stage); st != nil && st.Digest == digestOf(req.Image) && st.State == StageDeploying && st.DeployID == "" {
			st.State, st.Error = StageCanceled, "not queued: "+why.Error()
		}
		return nil
	})
	if err != nil {
		s.log.Error("stage deploy's cancel not recorded", "app", p.App, "stage", req.Stage, "err", err)
	}
}

// stageDeployID records the id of the deploy queued for a stage.
func (s *Server) stageDeployID(ctx context.Context, p DeployPolicy, req DeployRequest, id string) {
	if !s.stagesOn() || req.Stage == "" {
		return
	}
	if _, err := s.stageStore.Update(ctx, p.Namespace, p.App, func(r *StageRecord) error {
		if st := r.stage(req.Stage); st != nil && st.Digest == digestOf(req.Image) && st.DeployID == "" {
			st.DeployID = id
		}
		return nil
	}); err != nil {
		s.log.Error("stage deploy id not recorded", "app", p.App, "stage", req.Stage, "id", id, "err", err)
	}
}

// stageFinished records how a stage's deploy ended (the deploy queue's
// hook). It matches by digest, so a resume by a new leader counts too.
func (s *Server) stageFinished(rec DeployRecord) {
	if !s.stagesOn() || rec.Stage == "" || rec.Kind == DeployAbort {
		return
	}
	p := s.policyNamed(rec.Policy)
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	digest := digestOf(rec.Image)
	_, err := s.stageStore.Update(ctx, p.Namespace, p.App, func(r *StageRecord) error {
		r.align(*p)
		st := r.stage(rec.Stage)
		if st == nil || (digest != "" && st.Digest != digest) {
			return nil // the stage moved on to another digest meanwhile
		}
		st.State, st.Finished, st.Error, st.DeployID = rec.Result, rec.Finished, rec.Error, rec.ID
		r.log(StageLogEntry{At: rec.Finished, Stage: st.Name, Digest: st.Digest, Kind: "deploy", Result: rec.Result, By: rec.Trigger + ": " + rec.By, Message: rec.Error})
		return nil
	})
	if err != nil {
		s.log.Error("stage deploy result not recorded", "app", p.App, "stage", rec.Stage, "id", rec.ID, "err", err)
	}
}

func (s *Server) policyNamed(name string) *DeployPolicy {
	for i := range s.cfg.Policies {
		if s.cfg.Policies[i].Name == name {
			return &s.cfg.Policies[i]
		}
	}
	return nil
}

// RunStages checks the staged policies' gates every interval until ctx
// ends (leadership lost): the leader's loop.
func (s *Server) RunStages(ctx context.Context) {
	if !s.stagesOn() {
		return
	}
	for {
		s.AdvanceStages(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.clock.After(s.stageInterval):
		}
	}
}

// AdvanceStages does one round for every staged policy: a stage deploy
// whose process went away is settled from the stage's rollout state, and
// each later stage whose gates pass is given the previous stage's digest.
func (s *Server) AdvanceStages(ctx context.Context) {
	for _, p := range s.cfg.Policies {
		if len(p.Stages) == 0 || ctx.Err() != nil {
			continue
		}
		if err := s.advance(ctx, p); err != nil {
			s.log.Error("stages not advanced", "policy", p.Name, "app", p.App, "err", err)
		}
	}
}

// stageDeploy is a stage deploy a round decided on.
type stageDeploy struct {
	stage int
	req   DeployRequest
}

func (s *Server) advance(ctx context.Context, p DeployPolicy) error {
	// One round at a time, and never between a push's record and its
	// deploy's id (handleWebhook).
	s.stageMu.Lock()
	defer s.stageMu.Unlock()
	rec, err := s.stageStore.Load(ctx, p.Namespace, p.App)
	if err != nil || rec == nil {
		return err
	}
	// Read what the cluster says before deciding, outside the update.
	serving := map[string]*servingState{}
	for _, st := range p.Stages {
		rs, err := s.stageStore.Rollout(ctx, st.Namespace, p.App)
		if err != nil {
			return err
		}
		serving[st.Name] = newServingState(rs)
	}
	now := s.clock.Now()
	var todo []stageDeploy
	var events []func()
	_, err = s.stageStore.Update(ctx, p.Namespace, p.App, func(r *StageRecord) error {
		todo, events = nil, nil
		r.align(p)
		for i := range r.Stages {
			st := &r.Stages[i]
			if st.State == StageDeploying {
				s.settleOrphan(r, st, p, serving[st.Name], now, &todo, i)
			}
			if i == 0 {
				continue
			}
			prev := &r.Stages[i-1]
			if prev.Digest == "" || prev.Digest == st.Digest {
				if st.Waiting != nil && prev.Digest == st.Digest {
					st.Waiting = nil
				}
				continue
			}
			wait := s.gates(p, i, prev, st, serving[prev.Name], now)
			if wait != nil {
				if st.Waiting == nil || st.Waiting.Digest != wait.Digest || st.Waiting.Gate != wait.Gate || st.Waiting.Reason != wait.Reason {
					if st.Waiting != nil && st.Waiting.Digest == wait.Digest {
						wait.Since = st.Waiting.Since
					}
					st.Waiting = wait
					r.log(StageLogEntry{At: now, Stage: st.Name, Digest: wait.Digest, Kind: "gate", Result: "waiting: " + wait.Gate, Message: wait.Reason})
					ns, msg := st.Namespace, fmt.Sprintf("stage %s: %s waits for gate %s: %s", st.Name, wait.Digest, wait.Gate, wait.Reason)
					events = append(events, func() { s.stageEvent(ctx, ns, p.App, corev1.EventTypeNormal, "StageGateWaiting", msg) })
				}
				continue
			}
			req := DeployRequest{Kind: DeployPromote, Policy: p.Name, Stage: st.Name, App: p.App, Namespace: st.Namespace,
				Strategy: p.Strategy, Spec: p.Spec, EnvSecret: p.EnvSecret, Image: prev.Image, Tag: prev.Tag,
				Trigger: "stage", By: "gates of " + st.Name}
			msg := fmt.Sprintf("stage %s: gates passed for %s (%s; served by %s since %s); deploying", st.Name, prev.Digest,
				p.Stages[i].gatesText(), prev.Name, prev.Finished.UTC().Format(time.RFC3339))
			r.log(StageLogEntry{At: now, Stage: st.Name, Digest: prev.Digest, Kind: "gate", Result: "passed", Message: msg})
			*st = StageStatus{Name: st.Name, Namespace: st.Namespace, Approvals: st.Approvals,
				Digest: prev.Digest, Image: prev.Image, Tag: prev.Tag, PushedBy: prev.PushedBy, State: StageDeploying, Queued: now}
			todo = append(todo, stageDeploy{stage: i, req: req})
			ns := st.Namespace
			events = append(events, func() { s.stageEvent(ctx, ns, p.App, corev1.EventTypeNormal, "StageGatesPassed", msg) })
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range events {
		e()
	}
	for _, d := range todo {
		qrec, err := s.queue.Enqueue(d.req)
		if err != nil {
			// Recorded as deploying without a deploy: the next round
			// settles it as lost and queues it again.
			s.log.Error("stage deploy not queued; retried next round", "app", p.App, "stage", d.req.Stage, "err", err)
			continue
		}
		s.log.Info("stage deploy queued", "id", qrec.ID, "app", p.App, "stage", d.req.Stage, "namespace", d.req.Namespace, "image", d.req.Image)
		s.stageDeployID(ctx, p, d.req, qrec.ID)
	}
	return nil
}

// servingState is what a stage's rollout state says it serves.
type servingState struct {
	digest     string
	inProgress bool
	// ended is how the last promote of each digest ended, by digest.
	ended map[string]string
	at    map[string]time.Time
}

func newServingState(rs *rollout.State) *servingState {
	sv := &servingState{ended: map[string]string{}, at: map[string]time.Time{}}
	if rs == nil {
		return sv
	}
	sv.inProgress = rs.InProgress()
	if rs.Active != nil {
		sv.digest = digestOf(rs.Active.Image)
	}
	for _, h := range rs.History { // oldest first: the last one counts
		d := digestOf(h.Image)
		switch h.Result {
		case rollout.ResultPromoted:
			sv.ended[d] = StageSucceeded
		case rollout.ResultRolledBack:
			sv.ended[d] = StageRolledBack
		case rollout.ResultAborted:
			sv.ended[d] = StageAborted
		default:
			continue
		}
		sv.at[d] = h.At
	}
	return sv
}

// gates checks the gates of stage i for the digest the stage before it
// holds: nil when they all pass, else what it waits for and what would
// satisfy it.
func (s *Server) gates(p DeployPolicy, i int, prev, st *StageStatus, sv *servingState, now time.Time) *StageWait {
	conf := p.Stages[i]
	wait := func(gate, format string, args ...any) *StageWait {
		return &StageWait{Digest: prev.Digest, Gate: gate, Reason: fmt.Sprintf(format, args...), Since: now}
	}
	switch prev.State {
	case StageSucceeded:
	case StageDeploying:
		return wait("previous", "stage %s is still deploying it; it enters %s after %s promotes it", prev.Name, st.Name, prev.Name)
	default:
		return wait("previous", "stage %s's deploy of it ended %s (%s); it never goes further: push a fixed build, which starts at the first stage", prev.Name, prev.State, prev.Error)
	}
	if sv.digest != prev.Digest {
		return wait("previous", "stage %s (namespace %s) serves %s now, not %s (rolled back or replaced outside serve); the digest goes on only while %s serves it", prev.Name, prev.Namespace, orNothing(sv.digest), prev.Digest, prev.Name)
	}
	if soak := conf.soak(); soak > 0 {
		// The text stays the same while the soak runs, so the record is
		// not rewritten (nor an Event written) every round.
		if now.Sub(prev.Finished) < soak {
			return wait("after", "stage %s has served it since %s; the %s soak ends at %s if %s keeps serving it, not rolled back",
				prev.Name, prev.Finished.UTC().Format(time.RFC3339), soak, prev.Finished.Add(soak).UTC().Format(time.RFC3339), prev.Name)
		}
	}
	if a := conf.Approval; a != nil && st.approved(prev.Digest) == nil {
		who := "a member of directory group " + a.Group
		if a.FourEyes {
			who += " other than its pusher " + prev.PushedBy
		}
		return wait("approval", "%s approves it: tsys-ci approve %s --stage %s --digest %s", who, p.App, st.Name, prev.Digest)
	}
	return nil
}

func orNothing(d string) string {
	if d == "" {
		return "nothing"
	}
	return d
}

// settleOrphan settles a stage recorded as deploying whose deploy is not
// in this replica's queue (the leader that queued it is gone): from the
// stage's rollout state, promoted or rolled back, or queued again when it
// never started.
func (s *Server) settleOrphan(r *StageRecord, st *StageStatus, p DeployPolicy, sv *servingState, now time.Time, todo *[]stageDeploy, i int) {
	if st.DeployID != "" {
		if local := s.recorder.get(st.DeployID); local.ID != "" {
			if local.State != "done" {
				return // ours, running: stageFinished records its end
			}
			// Ours and done, its end not recorded: it ended before the
			// record said deploying (a fast deploy racing stageQueued).
			if local.Result != "" && digestOf(local.Image) == st.Digest {
				st.State, st.Finished, st.Error = local.Result, local.Finished, local.Error
				r.log(StageLogEntry{At: now, Stage: st.Name, Digest: st.Digest, Kind: "deploy", Result: local.Result, By: local.Trigger + ": " + local.By, Message: local.Error})
			}
			return
		}
	}
	if sv == nil || sv.inProgress {
		return // a resume finishes it (ResumeUnfinished)
	}
	if res, ok := sv.ended[st.Digest]; ok && !sv.at[st.Digest].Before(st.Queued.Add(-time.Second)) {
		st.State, st.Finished = res, sv.at[st.Digest]
		r.log(StageLogEntry{At: now, Stage: st.Name, Digest: st.Digest, Kind: "deploy", Result: res,
			Message: "settled from the stage's rollout state after a leader change"})
		return
	}
	if i == 0 && st.Image == "" {
		return
	}
	// Never started (lost with the previous leader's queue): again.
	*todo = append(*todo, stageDeploy{stage: i, req: DeployRequest{Kind: DeployPromote, Policy: p.Name, Stage: st.Name, App: p.App,
		Namespace: st.Namespace, Strategy: p.Strategy, Spec: p.Spec, EnvSecret: p.EnvSecret, Image: st.Image, Tag: st.Tag,
		Trigger: "leader", By: "stage record"}})
	st.Queued, st.DeployID = now, ""
	r.log(StageLogEntry{At: now, Stage: st.Name, Digest: st.Digest, Kind: "deploy", Result: "queued again",
		Message: "the deploy in the record never ran (lost with the previous leader's queue)"})
}
