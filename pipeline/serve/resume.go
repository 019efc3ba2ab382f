package serve

import (
	"context"
)

// Unfinished is a promote or rollback left under way in an app's rollout
// state.
type Unfinished struct {
	Phase    string
	Image    string // the candidate, "" when none
	Revision string
}

// UnfinishedFinder is what a Deployer implements when it can tell from the
// cluster which deploys a stopped process left under way (PromoterDeployer
// does, from promote's state ConfigMap).
type UnfinishedFinder interface {
	Unfinished(ctx context.Context, namespace, app string) (*Unfinished, error)
}

// ResumeUnfinished queues a resume for every policy's app whose promote
// was left under way: the deploys the previous leader was running when it
// died (or that were canceled at its shutdown deadline). Harbor does not
// send those events again, so without this an app would stay half-deployed,
// its traffic possibly split, until the next push. It runs when a replica
// starts leading; by names this replica in the records. Errors reading an
// app's state are logged and that app skipped: the others still resume.
func (s *Server) ResumeUnfinished(ctx context.Context, by string) {
	finder, ok := s.queue.Deployer.(UnfinishedFinder)
	if !ok {
		return
	}
	seen := map[string]bool{}
	for _, p := range s.cfg.Policies {
		// A staged policy's app runs in each stage's namespace.
		places := []Stage{{Namespace: p.Namespace}}
		if len(p.Stages) > 0 {
			places = p.Stages
		}
		for _, st := range places {
			key := st.Namespace + "/" + p.App
			if seen[key] {
				continue
			}
			seen[key] = true
			u, err := finder.Unfinished(ctx, st.Namespace, p.App)
			if err != nil {
				s.log.Error("unfinished deploy not checked", "app", p.App, "namespace", st.Namespace, "err", err)
				continue
			}
			if u == nil {
				continue
			}
			rec, err := s.queue.Enqueue(DeployRequest{Kind: DeployResume, Policy: p.Name, Stage: st.Name, App: p.App, Namespace: st.Namespace,
				Strategy: p.Strategy, Spec: p.Spec, Image: u.Image, Tag: u.Revision, Trigger: "leader", By: by})
			if err != nil {
				s.log.Error("unfinished deploy not resumed", "app", p.App, "namespace", st.Namespace, "phase", u.Phase, "err", err)
				continue
			}
			s.log.Warn("resuming an unfinished deploy", "id", rec.ID, "app", p.App, "namespace", st.Namespace, "stage", st.Name, "phase", u.Phase, "image", u.Image)
		}
	}
}
