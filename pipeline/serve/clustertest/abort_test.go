package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/apiserver"
)

// TestPromoterDeployerAbort: serve's abort (the dashboard's button, POST
// /api/v1/abort) while serve's own deploy of the app holds its promote
// lease asks that deploy to roll back (AbortRequested in the state) under
// a lease holder of its own, never taking the lease from it as the same
// holder would; with no promote in progress it says there is nothing to
// abort.
func TestPromoterDeployerAbort(t *testing.T) {
	c := apiserver.Client(t)
	ctx := context.Background()
	ns := "abort-serve"
	namespace(t, c, ns)
	spec := filepath.Join(t.TempDir(), "hello.yaml")
	writeFile(t, spec, "name: hello\nnamespace: "+ns+"\nreplicas: 1\nports: [{name: http, containerPort: 8080}]\n")
	holder := "serve/abort-test"
	d := &serve.PromoterDeployer{Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Verify:   func(_ context.Context, image string) (string, error) { return image, nil },
		Promoter: rollout.Promoter{Client: c, Clock: rollout.RealClock{}, Holder: holder, LeaseDuration: 5 * time.Second}}
	abort := serve.DeployRequest{ID: "1", Kind: serve.DeployAbort, Policy: "hello", App: "hello", Namespace: ns, Spec: spec}

	err := d.Deploy(ctx, abort)
	if !errors.Is(err, serve.ErrNothingToAbort) {
		t.Fatalf("abort of a new app: %v, want ErrNothingToAbort", err)
	}

	st := rollout.State{App: "hello", Phase: rollout.PhaseProbing, Strategy: rollout.StrategyBlueGreen,
		Active:    &rollout.Release{Color: rollout.ColorBlue, Image: "reg.example/e2e/hello@sha256:" + strings.Repeat("a0", 32)},
		Candidate: &rollout.Release{Color: rollout.ColorGreen, Image: "reg.example/e2e/hello@sha256:" + strings.Repeat("b1", 32)}}
	b, _ := json.Marshal(st)
	cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, rollout.StateName("hello"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{"state.json": string(b)}
	if _, err := c.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// serve's own deploy of hello runs: it holds the lease as holder.
	lock, err := rollout.AcquireLock(ctx, c, rollout.RealClock{}, ns, "hello", holder, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Release(ctx) }()
	err = d.Deploy(ctx, abort)
	if !errors.Is(err, serve.ErrAbortRequested) || !strings.Contains(err.Error(), holder) {
		t.Fatalf("abort while serve's deploy runs: %v, want ErrAbortRequested naming %s", err, holder)
	}
	got, err := rollout.Status(ctx, c, ns, "hello")
	if err != nil || !got.AbortRequested || got.Phase != rollout.PhaseProbing || got.Candidate == nil {
		t.Fatalf("state after the abort: %+v %v; want the promote left to its runner with AbortRequested", got, err)
	}
	lease, err := c.CoordinationV1().Leases(ns).Get(ctx, rollout.LeaseName("hello"), metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != holder {
		t.Fatalf("the lease after the abort: %+v %v; want it still %s's", lease, err, holder)
	}
}

// The Events of an aborted promote (Warning DeployAborted) and of the
// abort itself (action Abort), as the API server stores them.
func TestAbortEventsAccepted(t *testing.T) {
	c := apiserver.Client(t)
	ctx := context.Background()
	namespace(t, c, "abort-ev")
	sink := &serve.KubeEventSink{Client: c, Instance: "serve-a"}
	now := time.Now()
	for _, rec := range []serve.DeployRecord{
		{DeployRequest: serve.DeployRequest{ID: "1", Kind: serve.DeployPromote, App: "shop", Namespace: "abort-ev", Image: "reg/shop:v2", By: "ci", Trigger: "harbor"},
			State: "done", Result: serve.ResultAborted, Error: "promote of shop rolled back: aborted by 'tsys-ci abort'", Finished: now},
		{DeployRequest: serve.DeployRequest{ID: "2", Kind: serve.DeployAbort, App: "shop", Namespace: "abort-ev", By: "alice", Trigger: "api"},
			State: "done", Result: serve.ResultSucceeded, Finished: now},
	} {
		if err := sink.DeployFinished(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := c.CoreV1().Events("abort-ev").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=shop"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, ev := range evs.Items {
		got[ev.Annotations["tsys-ci.io/deploy-id"]] = ev.Type + " " + ev.Reason + " " + ev.Action
	}
	if len(got) != 2 || got["1"] != "Warning DeployAborted Promote" || got["2"] != "Normal DeploySucceeded Abort" {
		t.Fatalf("events %v", got)
	}
}
