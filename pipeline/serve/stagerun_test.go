package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/testenv"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// memStageStore is a StageStore in memory; the rollout states are set by
// the test (promote's part).
type memStageStore struct {
	mu      sync.Mutex
	rec     map[string][]byte
	rollout map[string]*rollout.State
}

func newMemStageStore() *memStageStore {
	return &memStageStore{rec: map[string][]byte{}, rollout: map[string]*rollout.State{}}
}

func (m *memStageStore) Load(_ context.Context, ns, app string) (*StageRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.load(ns, app)
}

func (m *memStageStore) load(ns, app string) (*StageRecord, error) {
	b, ok := m.rec[ns+"/"+app]
	if !ok {
		return nil, nil
	}
	var r StageRecord
	return &r, json.Unmarshal(b, &r)
}

// Update is atomic, as KubeStageStore's conditional write is.
func (m *memStageStore) Update(_ context.Context, ns, app string, f func(*StageRecord) error) (*StageRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.load(ns, app)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &StageRecord{}
	}
	if err := f(r); err != nil {
		return nil, err
	}
	b, _ := json.Marshal(r)
	m.rec[ns+"/"+app] = b
	return r, nil
}

func (m *memStageStore) Rollout(_ context.Context, ns, app string) (*rollout.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rollout[ns+"/"+app], nil
}

// serves sets a stage's rollout state as a promote of image leaves it.
func (m *memStageStore) serves(ns, image string, result string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := &rollout.State{App: "shop", Phase: rollout.PhaseStable, Active: &rollout.Release{Color: "blue", Image: image}}
	if old := m.rollout[ns+"/shop"]; old != nil {
		st.History = old.History
	}
	st.Record(rollout.HistoryEntry{Release: *st.Active, Result: result, At: at})
	m.rollout[ns+"/shop"] = st
}

func stagedServer(t *testing.T) (*testServer, *memStageStore) {
	t.Helper()
	store := newMemStageStore()
	ts := startTestServer(t, func(o *ServerOptions) {
		cfg := *o.Config
		cfg.Policies = append([]DeployPolicy(nil), cfg.Policies...)
		cfg.Policies[0].Stages = []Stage{{Name: "dev", Namespace: "shop"},
			{Name: "staging", Namespace: "shop-staging", After: &metav1.Duration{Duration: 30 * time.Minute}},
			{Name: "production", Namespace: "shop-prod"}}
		o.Config, o.Stages = &cfg, store
	})
	return ts, store
}

func stageOf(t *testing.T, store *memStageStore, name string) StageStatus {
	t.Helper()
	r, err := store.Load(context.Background(), "shop", "shop")
	if err != nil || r == nil {
		t.Fatalf("record: %v %v", r, err)
	}
	if st := r.stage(name); st != nil {
		return *st
	}
	t.Fatalf("no stage %s in %+v", name, r)
	return StageStatus{}
}

func (d *recordingDeployer) to(ns string) []string {
	var out []string
	for _, c := range d.Calls() {
		if c.Namespace == ns {
			out = append(out, c.Image)
		}
	}
	return out
}

// The soak counts on serve's clock from dev's recorded deploy; a stage
// without gates follows at once; a rollback outside serve or a failed
// deploy stops the digest, saying why.
func TestStagesSoakOnTheClock(t *testing.T) {
	ts, store := stagedServer(t)
	ctx := context.Background()
	if code, _ := post(t, ts.url+"/webhook/harbor", testSecret, "application/json", harborPush("demo/shop", "main-1", ts.clock.Now().Unix(), 0xd1)); code != http.StatusAccepted {
		t.Fatalf("push: %d", code)
	}
	image := "harbor.company.example/demo/shop@sha256:" + strings.Repeat("d1", 32)
	testenv.Eventually(t, "dev's deploy recorded", 5*time.Second, func() bool { return stageOf(t, store, "dev").State == StageSucceeded })
	store.serves("shop", image, rollout.ResultPromoted, ts.clock.Now())
	ts.AdvanceStages(ctx)
	if w := stageOf(t, store, "staging").Waiting; w == nil || w.Gate != "after" || !strings.Contains(w.Reason, "the 30m0s soak ends at 2026-11-25T03:30:00Z") {
		t.Fatalf("staging waits %+v, want the soak", w)
	}
	ts.clock.Advance(29 * time.Minute)
	ts.AdvanceStages(ctx)
	if got := ts.deployer.to("shop-staging"); len(got) != 0 {
		t.Fatalf("staging deployed %v after 29 of 30 minutes", got)
	}
	ts.clock.Advance(time.Minute)
	ts.AdvanceStages(ctx)
	testenv.Eventually(t, "staging deployed with dev's digest", 5*time.Second, func() bool {
		got := ts.deployer.to("shop-staging")
		return len(got) == 1 && got[0] == image && stageOf(t, store, "staging").State == StageSucceeded
	})
	// production has no gates: it follows staging's success at once.
	store.serves("shop-staging", image, rollout.ResultPromoted, ts.clock.Now())
	ts.AdvanceStages(ctx)
	testenv.Eventually(t, "production deployed", 5*time.Second, func() bool { return len(ts.deployer.to("shop-prod")) == 1 })

	// A second push; dev is rolled back outside serve during the soak.
	if code, _ := post(t, ts.url+"/webhook/harbor", testSecret, "application/json", harborPush("demo/shop", "main-2", ts.clock.Now().Unix(), 0xd2)); code != http.StatusAccepted {
		t.Fatalf("push 2: %d", code)
	}
	testenv.Eventually(t, "dev's second deploy recorded", 5*time.Second, func() bool {
		st := stageOf(t, store, "dev")
		return st.State == StageSucceeded && st.Tag == "main-2"
	})
	store.serves("shop", image, rollout.ResultPromoted, ts.clock.Now()) // back to main-1
	ts.clock.Advance(time.Hour)
	ts.AdvanceStages(ctx)
	if w := stageOf(t, store, "staging").Waiting; w == nil || w.Gate != "previous" || !strings.Contains(w.Reason, "serves "+digestOf(image)+" now, not sha256:"+strings.Repeat("d2", 32)+" (rolled back or replaced outside serve)") {
		t.Fatalf("staging waits %+v, want dev's rollback named", w)
	}
	if got := ts.deployer.to("shop-staging"); len(got) != 1 {
		t.Fatalf("staging deployed %v: the rolled back digest went on", got)
	}
}

// A leader that finds a stage recorded as deploying by a deploy not in its
// queue settles it from the stage's rollout state, or queues it again when
// it never ran.
func TestStagesSettledAfterALeaderChange(t *testing.T) {
	ts, store := stagedServer(t)
	ctx := context.Background()
	image := "harbor.company.example/demo/shop@sha256:" + strings.Repeat("e1", 32)
	at := ts.clock.Now()
	if _, err := store.Update(ctx, "shop", "shop", func(r *StageRecord) error {
		r.align(ts.cfg.Policies[0])
		r.Stages[0] = StageStatus{Name: "dev", Namespace: "shop", Digest: digestOf(image), Image: image, Tag: "main-1", State: StageDeploying, DeployID: "other-leader-1", Queued: at}
		r.Stages[1] = StageStatus{Name: "staging", Namespace: "shop-staging", Digest: digestOf(image), Image: image, Tag: "main-1", State: StageDeploying, DeployID: "other-leader-2", Queued: at}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// dev's promote ended (promoted) while its leader died; staging's never ran.
	store.serves("shop", image, rollout.ResultPromoted, at.Add(time.Second))
	ts.AdvanceStages(ctx)
	if st := stageOf(t, store, "dev"); st.State != StageSucceeded || !st.Finished.Equal(at.Add(time.Second)) {
		t.Fatalf("dev %+v, want succeeded at promote's recorded end", st)
	}
	testenv.Eventually(t, "staging queued again and deployed", 5*time.Second, func() bool {
		got := ts.deployer.to("shop-staging")
		return len(got) == 1 && got[0] == image && stageOf(t, store, "staging").State == StageSucceeded
	})
	if got := ts.deployer.to("shop"); len(got) != 0 {
		t.Fatalf("dev deployed again: %v", got)
	}
}

// Approvals that ask for nothing that exists are refused with what
// would be right; approvals need the staged app's directory group.
func TestApproveRefusalsNameTheGate(t *testing.T) {
	dir := ucsDirectory(t)
	store := newMemStageStore()
	ts := apiServer(t, dir, LDAPConfig{URL: dir.LDAPSURL, CAFile: dir.CAFile, BaseDN: dir.BaseDN})
	cfg := *ts.cfg
	cfg.Policies = append([]DeployPolicy(nil), cfg.Policies...)
	cfg.Policies[0].Stages = []Stage{{Name: "dev", Namespace: "shop"},
		{Name: "staging", Namespace: "shop-staging", After: &metav1.Duration{Duration: 30 * time.Minute}},
		{Name: "production", Namespace: "shop-prod", Approval: &ApprovalGate{Group: "shop-deployers"}}}
	ts.cfg, ts.stageStore = &cfg, store
	held := "sha256:" + strings.Repeat("a7", 32)
	if _, err := store.Update(context.Background(), "shop", "shop", func(r *StageRecord) error {
		r.align(cfg.Policies[0])
		r.Stages[1].Digest, r.Stages[1].State = held, StageSucceeded
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	other := "sha256:" + strings.Repeat("b8", 32)
	for _, tc := range []struct {
		body map[string]string
		code int
		want string
	}{
		{map[string]string{"app": "blog", "stage": "production", "digest": held}, 404, `no policy with stages deploys app "blog"`},
		{map[string]string{"app": "shop", "stage": "qa", "digest": held}, 404, `app shop has no stage "qa"; its stages are dev, staging, production`},
		{map[string]string{"app": "shop", "stage": "staging", "digest": held}, 400, "stage staging of shop has no approval gate (its gates: after 30m0s); nothing to approve"},
		{map[string]string{"app": "shop", "stage": "production", "digest": "latest"}, 400, `digest "latest" is not sha256:<64 hex digits>; 'tsys-ci status shop' shows the digest waiting for production`},
		{map[string]string{"app": "shop", "stage": "production", "digest": other}, 409, "stage staging holds " + held + ", not " + other + ": the approval gate of stage production approves the digest the stage before it (staging) runs"},
	} {
		code, reply := manual(t, ts, "/api/v1/approve", "alice", "alice-pw", tc.body)
		if code != tc.code || !strings.Contains(reply["error"].(string), tc.want) {
			t.Errorf("%v: %d %v, want %d saying %q", tc.body, code, reply, tc.code, tc.want)
		}
	}
	code, reply := manual(t, ts, "/api/v1/approve", "carol", "carol-pw", map[string]string{"app": "shop", "stage": "production", "digest": held})
	if code != http.StatusForbidden || reply["error"] != "the approval gate of stage production: carol is not in directory group shop-deployers; a member of shop-deployers must approve "+held {
		t.Errorf("carol: %d %v", code, reply)
	}
	if code, reply := manual(t, ts, "/api/v1/approve", "alice", "alice-pw", map[string]string{"app": "shop", "stage": "production", "digest": held}); code != http.StatusOK {
		t.Errorf("alice (shop-deployers): %d %v", code, reply)
	}
	if st := stageOf(t, store, "production"); st.approved(held) == nil || st.approved(held).By != "alice" {
		t.Errorf("production %+v, want alice's approval of %s", st, held)
	}
}
