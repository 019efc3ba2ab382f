package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/apiserver"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

var cfg *rest.Config

func TestMain(m *testing.M) {
	apiserver.Main(m, &cfg)
}

func namespace(t *testing.T, c kubernetes.Interface, name string) {
	t.Helper()
	_, err := c.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

type replica struct {
	name string
	url  string
	stop context.CancelFunc
	done chan error
}

func (r *replica) leader(t *testing.T) bool {
	resp, err := http.Get(r.url + "/readyz")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s readyz: %v", r.name, err)
	}
	return m["leader"] == true
}

func startReplica(t *testing.T, c kubernetes.Interface, name, leaseNS string, d serve.Deployer) *replica {
	t.Helper()
	// The replica's pod, as the chart runs it (--label-leader): labelled
	// while it leads.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "serve"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "serve", Image: "tsys-ci"}}}}
	if _, err := c.CoreV1().Pods(leaseNS).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return startReplicaWith(t, &serve.LeaderElection{Client: c, Namespace: leaseNS, Name: "tsys-ci-serve", Identity: name,
		LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond, LabelPod: leaseNS + "/" + name})
}

// labelled returns the pods of ns carrying the leader label.
func labelled(t *testing.T, c kubernetes.Interface, ns string) []string {
	t.Helper()
	pods, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: serve.LeaderLabel + "=true"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pods.Items {
		out = append(out, p.Name)
	}
	return out
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// deliver POSTs a Harbor PUSH_ARTIFACT event of repo:tag (digest sha256:hex
// on registry host) to r's webhook with the test secret and returns the
// status code.
func deliver(t *testing.T, r *replica, host, repo, tag, hex string) int {
	t.Helper()
	project, name, _ := strings.Cut(repo, "/")
	body := fmt.Sprintf(`{"type":"PUSH_ARTIFACT","occur_at":%d,"operator":"robot$%s+ci","event_data":{"resources":[{"digest":"sha256:%s","tag":%q,"resource_url":"%s/%s:%s"}],"repository":{"name":%q,"namespace":%q,"repo_full_name":%q,"repo_type":"private"}}}`,
		time.Now().Unix(), project, hex, tag, host, repo, tag, name, project, repo)
	req, _ := http.NewRequest(http.MethodPost, r.url+"/webhook/harbor", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer cluster-test-secret-"+project)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("delivering the event to %s: %v", r.name, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// startReplicaWith runs a serve replica (deploys fail: no cluster deployer)
// electing its leader with le.
func startReplicaWith(t *testing.T, le *serve.LeaderElection) *replica {
	t.Helper()
	conf, err := serve.LoadConfig("../testdata/serve/serve.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return startServe(t, le, conf, serve.NoClusterDeployer{})
}

// readToken reads the API of the replicas startServe runs.
const readToken = "cluster-read-token-0123456789"

// getAPI GETs path of r's API with the read token.
func getAPI(r *replica, path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, r.url+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+readToken)
	return http.DefaultClient.Do(req)
}

// startServe runs a serve replica with config conf and deployer d.
func startServe(t *testing.T, le *serve.LeaderElection, conf *serve.Config, d serve.Deployer) *replica {
	t.Helper()
	return startServeFor(t, le, conf, d, 20*time.Second)
}

// startServeFor is startServe with the given shutdown timeout.
func startServeFor(t *testing.T, le *serve.LeaderElection, conf *serve.Config, d serve.Deployer, shutdown time.Duration) *replica {
	t.Helper()
	return startServeOpts(t, le, serve.ServerOptions{Config: conf, Deployer: d}, shutdown)
}

// startServeOpts runs a serve replica with o (its Config and Deployer,
// and whatever else the test sets), the test's webhook secrets and read
// token, and, unless set, the real clock and a discarding log.
func startServeOpts(t *testing.T, le *serve.LeaderElection, o serve.ServerOptions, shutdown time.Duration) *replica {
	t.Helper()
	name := le.Identity
	o.WebhookSecrets = map[string]string{}
	for _, p := range o.Config.Projects() {
		o.WebhookSecrets[p] = "Bearer cluster-test-secret-" + p
	}
	o.ReadToken = readToken
	if o.Clock == nil {
		o.Clock = rollout.RealClock{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := serve.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &replica{name: name, url: "http://" + l.Addr().String(), stop: stop, done: make(chan error, 1)}
	go func() {
		r.done <- serve.Run(ctx, serve.RunOptions{Server: s, Listener: l, ShutdownTimeout: shutdown,
			Leader: le})
	}()
	t.Cleanup(func() { stop(); <-r.done })
	return r
}

// Two replicas share one Lease: exactly one acts; when it shuts down it
// hands the Lease over and the other acts.
func TestLeaderElectionOneReplicaActs(t *testing.T) {
	c := apiserver.Client(t)
	namespace(t, c, "serve-le")
	a := startReplica(t, c, "serve-a", "serve-le", serve.NoClusterDeployer{})
	b := startReplica(t, c, "serve-b", "serve-le", serve.NoClusterDeployer{})
	var leader, follower *replica
	testenv.Eventually(t, "a leader", 30*time.Second, func() bool {
		la, lb := a.leader(t), b.leader(t)
		if la && lb {
			t.Fatal("both replicas lead")
		}
		switch {
		case la:
			leader, follower = a, b
		case lb:
			leader, follower = b, a
		}
		return la || lb
	})
	lease, err := c.CoordinationV1().Leases("serve-le").Get(context.Background(), "tsys-ci-serve", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != leader.name {
		t.Fatalf("Lease holder %v, leader %s", lease.Spec.HolderIdentity, leader.name)
	}
	// Only the leader's pod carries the label the chart's Service selects.
	testenv.Eventually(t, "the leader's pod labelled", 10*time.Second, func() bool {
		got := labelled(t, c, "serve-le")
		return len(got) == 1 && got[0] == leader.name
	})
	// The follower refuses events (Harbor retries them).
	if code := deliver(t, follower, "harbor.company.example", "demo/shop", "feature-x", strings.Repeat("a", 64)); code != http.StatusServiceUnavailable {
		t.Fatalf("follower answered %d, want 503", code)
	}
	start := time.Now()
	leader.stop()
	if err := <-leader.done; err != nil {
		t.Fatalf("leader shutdown: %v", err)
	}
	leader.done <- nil // for Cleanup
	testenv.Eventually(t, "the follower to lead", 30*time.Second, func() bool { return follower.leader(t) })
	testenv.Eventually(t, "the label on the new leader's pod alone", 10*time.Second, func() bool {
		got := labelled(t, c, "serve-le")
		return len(got) == 1 && got[0] == follower.name
	})
	t.Logf("handover after a graceful shutdown took %s (lease duration 4s; released on shutdown)", time.Since(start).Round(time.Millisecond))
}

// The Event serve writes for a deploy is accepted by a real API server's
// validation and reads back as written.
func TestDeployEventAccepted(t *testing.T) {
	c := apiserver.Client(t)
	namespace(t, c, "serve-ev")
	sink := &serve.KubeEventSink{Client: c, Instance: "serve-a"}
	now := time.Now()
	rec := serve.DeployRecord{
		DeployRequest: serve.DeployRequest{ID: "20261125T030000Z-1", Kind: serve.DeployPromote, Policy: "shop-main", App: "shop",
			Namespace: "serve-ev", Image: "h.example/demo/shop@sha256:" + strings.Repeat("b", 64), Tag: "main-1", Trigger: "harbor", By: "robot$demo+ci"},
		State: "done", Result: serve.ResultRolledBack, Error: strings.Repeat("long reason ", 200), Queued: now, Started: now, Finished: now, Seconds: 42,
	}
	if err := sink.DeployFinished(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	evs, err := c.CoreV1().Events("serve-ev").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=shop"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs.Items) != 1 {
		t.Fatalf("%d events, want 1", len(evs.Items))
	}
	ev := evs.Items[0]
	if ev.Reason != "DeployRolledBack" || ev.Type != corev1.EventTypeWarning || ev.InvolvedObject.Kind != "Service" ||
		!strings.Contains(ev.Message, "policy shop-main") || ev.Source.Component != serve.EventComponent || ev.Annotations["tsys-ci.io/deploy-id"] != rec.ID {
		t.Fatalf("event %+v", ev)
	}
}

// A deploy goes through rollout's promote: a rollback of an app that has
// no previous version fails with promote's own reason, under promote's
// per-app Lease, and is recorded as failed with an Event.
func TestPromoterDeployerRunsPromote(t *testing.T) {
	c := apiserver.Client(t)
	namespace(t, c, "shop")
	d := &serve.PromoterDeployer{Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Verify:   func(_ context.Context, image string) (string, error) { return image, nil },
		Promoter: rollout.Promoter{Client: c, Clock: rollout.RealClock{}, Holder: "serve/test"}}
	err := d.Deploy(context.Background(), serve.DeployRequest{ID: "1", Kind: serve.DeployRollback, Policy: "shop-main",
		App: "shop", Namespace: "shop", Spec: "../testdata/serve/shop.yaml"})
	if err == nil || !strings.Contains(err.Error(), "no previous version") || errors.Is(err, serve.ErrRolledBack) {
		t.Fatalf("rollback of a new app: %v, want promote's 'no previous version'", err)
	}
	if _, err := c.CoordinationV1().Leases("shop").Get(context.Background(), rollout.LeaseName("shop"), metav1.GetOptions{}); err != nil {
		t.Fatalf("promote's lease for shop: %v", err)
	}
	bad := d.Deploy(context.Background(), serve.DeployRequest{ID: "2", Kind: serve.DeployPromote, Policy: "p",
		App: "blog", Namespace: "shop", Spec: "../testdata/serve/blog.yaml"})
	if bad == nil || !strings.Contains(bad.Error(), "now describes web/blog") {
		t.Fatalf("spec for another namespace: %v", bad)
	}
}

// serve.yaml read from a ConfigMap through the API, with the same strict
// checks as a file.
func TestServeConfigFromConfigMap(t *testing.T) {
	c := apiserver.Client(t)
	namespace(t, c, "serve-cm")
	good := "registry: harbor.company.example\ninsecurePlainHTTP: true\npolicies:\n- {name: shop-main, repository: demo/shop, tags: 'main-*', app: shop, namespace: shop, spec: shop.yaml}\n"
	for name, data := range map[string]map[string]string{
		"good":  {serve.ConfigKey: good},
		"bad":   {serve.ConfigKey: good + "polices: []\n"},
		"nokey": {"config.yaml": good},
	} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "serve-cm"}, Data: data}
		if _, err := c.CoreV1().ConfigMaps("serve-cm").Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := serve.ConfigFromConfigMap(context.Background(), c, "serve-cm", "good", "../testdata/serve")
	if err != nil || len(cfg.Policies) != 1 || !strings.HasSuffix(cfg.Policies[0].Spec, "testdata/serve/shop.yaml") {
		t.Fatalf("good ConfigMap: %v %+v", err, cfg)
	}
	for name, words := range map[string]string{"bad": `unknown field "polices"`, "nokey": "has no key serve.yaml", "missing": "not found"} {
		if _, err := serve.ConfigFromConfigMap(context.Background(), c, "serve-cm", name, "."); err == nil || !strings.Contains(err.Error(), words) {
			t.Errorf("ConfigMap %s: %v, want %q", name, err, words)
		}
	}
}
