package clustertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/apiserver"
	"github.com/tsys-group/tsys-ci/test/slapd"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// stateDeployer stands in for promote (no kubelet runs here, so no pod
// would become ready): it writes the stage's rollout state as a
// successful promote leaves it, through rollout's own StateStore, and
// counts the deploys per namespace.
type stateDeployer struct {
	c  kubernetes.Interface
	mu sync.Mutex
	// calls are "namespace image", in order.
	calls []string
}

func (d *stateDeployer) Deploy(ctx context.Context, req serve.DeployRequest) error {
	if req.Kind != serve.DeployPromote {
		return fmt.Errorf("stand-in deployer: %s not expected", req.Kind)
	}
	d.mu.Lock()
	d.calls = append(d.calls, req.Namespace+" "+req.Image)
	d.mu.Unlock()
	st := &rollout.StateStore{Client: d.c, Namespace: req.Namespace, App: req.App, Clock: rollout.RealClock{}}
	s, err := st.Load(ctx)
	if err != nil {
		return err
	}
	s.Phase, s.Previous, s.Active = rollout.PhaseStable, s.Active, &rollout.Release{Color: "blue", Image: req.Image, Revision: req.Tag}
	s.Record(rollout.HistoryEntry{Release: *s.Active, Strategy: "bluegreen", Result: rollout.ResultPromoted, At: time.Now()})
	return st.Save(ctx, s)
}

func (d *stateDeployer) deploys(ns string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, c := range d.calls {
		if n, image, _ := strings.Cut(c, " "); n == ns {
			out = append(out, image)
		}
	}
	return out
}

// A push deploys to dev; staging follows once dev has served the digest
// for its soak; production waits for an approval by release-managers: the
// wrong group and the pusher are refused, each refusal naming the gate and
// who would satisfy it. The leader is stopped during staging's soak: the
// other replica picks the pipeline up from the record in the cluster
// (staging's soak still counted from dev's deploy, nothing deployed
// twice). The record, the Events and the API show it all.
func TestStagesSoakApprovalAndLeaderChange(t *testing.T) {
	c := apiserver.Client(t)
	ctx := context.Background()
	// Namespaces of their own each run (-count=N).
	serveNS, dev, staging, prod, app := apiserver.Namespace(t, c, "stages-serve"), apiserver.Namespace(t, c, "stages-dev"),
		apiserver.Namespace(t, c, "stages-staging"), apiserver.Namespace(t, c, "stages-prod"), "shop"
	dir := slapd.Start(t)
	dir.LoadLDIF(t, strings.Join([]string{
		dir.UserLDIF("alice", "alice-pw"), dir.UserLDIF("bob", "bob-pw"), dir.UserLDIF("carol", "carol-pw"),
		dir.GroupLDIF("release-managers", "alice", "bob"), dir.GroupLDIF("developers", "carol"),
	}, "\n"))
	ldapCfg := serve.LDAPConfig{URL: dir.LDAPSURL, CAFile: dir.CAFile, BaseDN: dir.BaseDN}
	spec := filepath.Join(t.TempDir(), "shop.yaml")
	writeFile(t, spec, "name: shop\nnamespace: "+dev+"\nreplicas: 1\nports: [{name: http, containerPort: 8080}]\n")
	const soak = 5 * time.Second
	conf := &serve.Config{Registry: "reg.example", InsecurePlainHTTP: true, LDAP: &ldapCfg,
		Policies: []serve.DeployPolicy{{Name: "shop", Repository: "demo/shop", Tags: "main-*", App: app, Namespace: dev, Spec: spec,
			Stages: []serve.Stage{
				{Name: "dev", Namespace: dev},
				{Name: "staging", Namespace: staging, After: &metav1.Duration{Duration: soak}},
				{Name: "production", Namespace: prod, Approval: &serve.ApprovalGate{Group: "release-managers", FourEyes: true}},
			}}}}
	d := &stateDeployer{c: c}
	replicas := map[string]*replica{}
	for _, name := range []string{"serve-a", "serve-b"} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "serve", Image: "tsys-ci"}}}}
		if _, err := c.CoreV1().Pods(serveNS).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		directory, err := serve.NewDirectory(ldapCfg, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		le := &serve.LeaderElection{Client: c, Namespace: serveNS, Name: "tsys-ci-serve", Identity: name,
			LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond, LabelPod: serveNS + "/" + name}
		replicas[name] = startServeOpts(t, le, serve.ServerOptions{Config: conf, Deployer: d, Directory: directory,
			Stages: &serve.KubeStageStore{Client: c}, StageInterval: 200 * time.Millisecond,
			Events: &serve.KubeEventSink{Client: c, Instance: name}, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}, 20*time.Second)
	}
	leader := func() *replica {
		var l *replica
		testenv.Eventually(t, "a leader", 30*time.Second, func() bool {
			for _, r := range replicas {
				if r.leader(t) {
					l = r
					return true
				}
			}
			return false
		})
		return l
	}
	record := func() *serve.StageRecord {
		rec, err := serve.LoadStageRecord(ctx, c, dev, app)
		if err != nil {
			t.Fatal(err)
		}
		if rec == nil {
			return &serve.StageRecord{}
		}
		return rec
	}
	stage := func(rec *serve.StageRecord, name string) serve.StageStatus {
		for _, s := range rec.Stages {
			if s.Name == name {
				return s
			}
		}
		return serve.StageStatus{}
	}

	first := leader()
	hex := strings.Repeat("c", 64)
	digest, image := "sha256:"+hex, "reg.example/demo/shop@sha256:"+hex
	// Pushed by alice (the Harbor operator): the four-eyes gate's pusher.
	if code := deliverBy(t, first, "alice", "reg.example", "demo/shop", "main-1", hex); code != http.StatusAccepted {
		t.Fatalf("%s answered the push %d, want 202", first.name, code)
	}
	testenv.Eventually(t, "dev serving the push", 30*time.Second, func() bool {
		return stage(record(), "dev").State == serve.StageSucceeded
	})
	devDone := stage(record(), "dev").Finished
	if got := d.deploys(dev); len(got) != 1 || got[0] != image {
		t.Fatalf("dev deploys %v, want the pushed %s once", got, image)
	}
	testenv.Eventually(t, "staging waiting for its soak (gate after)", 10*time.Second, func() bool {
		w := stage(record(), "staging").Waiting
		return w != nil && w.Gate == "after" && w.Digest == digest && strings.Contains(w.Reason, "the 5s soak ends at "+devDone.Add(soak).UTC().Format(time.RFC3339))
	})
	if got := d.deploys(staging); len(got) != 0 {
		t.Fatalf("staging deployed %v before dev's soak", got)
	}

	// The leader goes in the soak; the other replica carries on from the
	// record.
	first.stop()
	if err := <-first.done; err != nil {
		t.Fatalf("%s shutdown: %v", first.name, err)
	}
	first.done <- nil // for Cleanup
	delete(replicas, first.name)
	second := leader()
	testenv.Eventually(t, "staging deployed by the new leader after the soak", 30*time.Second, func() bool {
		return stage(record(), "staging").State == serve.StageSucceeded
	})
	st := stage(record(), "staging")
	if st.Digest != digest || st.Queued.Before(devDone.Add(soak)) {
		t.Fatalf("staging %+v: want %s queued no sooner than dev's deploy (%s) + the soak", st, digest, devDone)
	}
	if got := d.deploys(staging); len(got) != 1 || got[0] != image {
		t.Fatalf("staging deploys %v, want %s once", got, image)
	}
	byNew := false
	for _, dep := range doneDeploys(t, second) {
		byNew = byNew || (dep["namespace"] == staging && dep["stage"] == "staging" && dep["result"] == serve.ResultSucceeded)
	}
	if !byNew {
		t.Fatalf("staging's deploy is not in the new leader %s's deploys: %v", second.name, doneDeploys(t, second))
	}
	testenv.Eventually(t, "production waiting for an approval", 10*time.Second, func() bool {
		w := stage(record(), "production").Waiting
		return w != nil && w.Gate == "approval" && w.Digest == digest &&
			strings.Contains(w.Reason, "release-managers other than its pusher alice") &&
			strings.Contains(w.Reason, "tsys-ci approve shop --stage production --digest "+digest)
	})

	approve := func(login string) error {
		cl := &serve.ApproveClient{URL: second.url, Login: login, Password: login + "-pw"}
		_, err := cl.Approve(ctx, serve.ApproveRequest{App: app, Stage: "production", Digest: digest})
		return err
	}
	refusals := map[string]string{
		"carol": "the approval gate of stage production: carol is not in directory group release-managers; a member of release-managers must approve " + digest,
		"alice": "the approval gate of stage production is four-eyes: alice pushed " + digest + " (Harbor operator) and may not approve it; another member of release-managers must",
	}
	for login, want := range refusals {
		err := approve(login)
		var ae *serve.ApproveError
		if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || ae.Message != want {
			t.Fatalf("%s approves: %v, want 403 %q", login, err, want)
		}
	}
	if got := d.deploys(prod); len(got) != 0 {
		t.Fatalf("production deployed %v without an approval", got)
	}
	cl := &serve.ApproveClient{URL: second.url, Login: "bob", Password: "bob-pw"}
	if _, err := cl.Approve(ctx, serve.ApproveRequest{App: app, Stage: "production", Digest: "sha256:" + strings.Repeat("d", 64)}); err == nil ||
		!strings.Contains(err.Error(), "stage staging holds "+digest) {
		t.Fatalf("approving a digest staging does not hold: %v, want the conflict naming staging's digest", err)
	}
	if err := approve("bob"); err != nil {
		t.Fatalf("bob approves: %v", err)
	}
	testenv.Eventually(t, "production deployed after bob's approval", 30*time.Second, func() bool {
		return stage(record(), "production").State == serve.StageSucceeded
	})
	if got := d.deploys(prod); len(got) != 1 || got[0] != image {
		t.Fatalf("production deploys %v, want %s once", got, image)
	}
	rec := record()
	if a := stage(rec, "production").Approvals; len(a) != 1 || a[0].By != "bob" || a[0].Digest != digest {
		t.Fatalf("production approvals %+v, want bob's", a)
	}
	var kinds []string
	soakWaits := 0
	for _, e := range rec.Log {
		kinds = append(kinds, e.Stage+" "+e.Kind+" "+e.Result+" "+e.By)
		if e.Stage == "staging" && e.Result == "waiting: after" {
			soakWaits++
		}
	}
	// Checked every 200 ms through a 5 s soak, told once.
	if soakWaits != 1 {
		t.Errorf("staging's soak logged %d times, want once (a gate's wait is logged when it changes):\n%s", soakWaits, strings.Join(kinds, "\n"))
	}
	for _, want := range []string{"dev deploy queued alice", "dev deploy succeeded harbor: alice", "staging gate waiting: after ",
		"staging gate passed ", "staging deploy succeeded stage: gates of staging", "production gate waiting: approval ",
		"production refused approval refused carol", "production refused approval refused alice", "production approval approved bob",
		"production gate passed ", "production deploy succeeded stage: gates of production"} {
		found := false
		for _, k := range kinds {
			found = found || k == want
		}
		if !found {
			t.Errorf("the record's log lacks %q; it has:\n%s", want, strings.Join(kinds, "\n"))
		}
	}
	// Events on the app's Service in each stage's namespace.
	for ns, reasons := range map[string][]string{
		dev:     {"DeploySucceeded"},
		staging: {"StageGateWaiting", "StageGatesPassed", "DeploySucceeded"},
		prod:    {"StageGateWaiting", "StageApprovalRefused", "StageApproved", "StageGatesPassed", "DeploySucceeded"},
	} {
		evs, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + app})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, e := range evs.Items {
			got[e.Reason] = true
		}
		for _, r := range reasons {
			if !got[r] {
				t.Errorf("namespace %s: no %s Event on service %s (got %v)", ns, r, app, got)
			}
		}
	}
}

// deliverBy is deliver with the Harbor event's operator (the pusher).
func deliverBy(t *testing.T, r *replica, operator, host, repo, tag, hex string) int {
	t.Helper()
	project, name, _ := strings.Cut(repo, "/")
	body := fmt.Sprintf(`{"type":"PUSH_ARTIFACT","occur_at":%d,"operator":%q,"event_data":{"resources":[{"digest":"sha256:%s","tag":%q,"resource_url":"%s/%s:%s"}],"repository":{"name":%q,"namespace":%q,"repo_full_name":%q,"repo_type":"private"}}}`,
		time.Now().Unix(), operator, hex, tag, host, repo, tag, name, project, repo)
	req, _ := http.NewRequest(http.MethodPost, r.url+"/webhook/harbor", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer cluster-test-secret-"+project)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("delivering the event to %s: %v", r.name, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
