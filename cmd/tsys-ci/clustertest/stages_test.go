package clustertest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/test/apiserver"
)

// TestStatusShowsTheStageRecord: 'tsys-ci status APP' of a staged app
// reads serve's stage record from the cluster (the first stage's
// namespace) and shows which stage runs which digest and what waits for
// which gate; -o json carries the record under "stages".
func TestStatusShowsTheStageRecord(t *testing.T) {
	cs := apiserver.Client(t)
	ns := apiserver.Namespace(t, cs, "cli-stages")
	digest := "sha256:" + strings.Repeat("e5", 32)
	at := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	store := &serve.KubeStageStore{Client: cs}
	if _, err := store.Update(context.Background(), ns, "shop", func(r *serve.StageRecord) error {
		r.Policy, r.App = "shop", "shop"
		r.Stages = []serve.StageStatus{
			{Name: "dev", Namespace: ns, Digest: digest, Image: "reg.example/demo/shop@" + digest, Tag: "main-3", PushedBy: "alice", State: serve.StageSucceeded, Finished: at},
			{Name: "production", Namespace: ns + "-prod", Waiting: &serve.StageWait{Digest: digest, Gate: "approval", Since: at,
				Reason: "a member of directory group release-managers approves it: tsys-ci approve shop --stage production --digest " + digest}},
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runOut(t, nil, "status", "shop", "--kubeconfig", kubeconfig, "-n", ns)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"stages (policy shop):", "dev          " + ns, digest + " succeeded at 2026-12-07 22:00:00Z (tag main-3, pushed by alice)",
		"waiting: " + digest + " for gate approval since 2026-12-07 22:00:00Z: a member of directory group release-managers approves it: tsys-ci approve shop --stage production --digest " + digest} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not say %q:\n%s", want, out)
		}
	}
	out, stderr, code = runOut(t, nil, "status", "shop", "--kubeconfig", kubeconfig, "-n", ns, "-o", "json")
	if code != 0 {
		t.Fatalf("status -o json: exit %d\n%s", code, stderr)
	}
	var got struct {
		Stages serve.StageRecord `json:"stages"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if len(got.Stages.Stages) != 2 || got.Stages.Stages[1].Waiting == nil || got.Stages.Stages[1].Waiting.Gate != "approval" {
		t.Fatalf("status -o json stages: %+v", got.Stages)
	}
}
