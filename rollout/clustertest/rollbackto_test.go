package clustertest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/rollout"
)

// Issue 20 item 3: any recorded version comes back, by its number in the
// history or its digest, through the strategy and probes; a version that
// fails them now is rolled back as any other.
func TestRollbackToARecordedVersion(t *testing.T) {
	a := newApp(t, nil)
	ctx := context.Background()
	for _, v := range []string{"v1", "v2", "v3"} {
		mustPromote(t, a, "reg/shop@sha256:"+v)
	}
	// [1] is v3 (serving), [3] is v1: two versions back.
	res, err := a.promoter("test").RollbackTo(ctx, a.spec, "3")
	if err != nil || res.Result != rollout.ResultPromoted || res.Image != "reg/shop@sha256:v1" {
		t.Fatalf("rollback --to 3: %+v, %v\n%s", res, err, a.out)
	}
	if s := a.state(); s.Active.Image != "reg/shop@sha256:v1" || s.Previous.Image != "reg/shop@sha256:v3" {
		t.Fatalf("after --to 3: active %+v, previous %+v", s.Active, s.Previous)
	}
	if !strings.Contains(a.out.String(), "probe home passed") {
		t.Errorf("v1 came back without its probes:\n%s", a.out)
	}
	// By digest alone.
	if res, err := a.promoter("test").RollbackTo(ctx, a.spec, "sha256:v2"); err != nil || res.Image != "reg/shop@sha256:v2" {
		t.Fatalf("rollback --to sha256:v2: %+v, %v", res, err)
	}
	// Names no recorded version: the user's to fix, nothing changes.
	for _, to := range []string{"9", "0", "sha256:never"} {
		_, err := a.promoter("test").RollbackTo(ctx, a.spec, to)
		var bad interface{ BadInput() bool }
		if !errors.As(err, &bad) || !strings.Contains(err.Error(), "--to "+to) {
			t.Errorf("--to %s: %v, want bad input naming it", to, err)
		}
	}
	if s := a.state(); s.Active.Image != "reg/shop@sha256:v2" {
		t.Fatalf("a refused --to changed the app: %+v", s.Active)
	}
}

// TestRollbackToRunsWithItsRecordedSecret: the version comes back with the
// env Secret it ran with, read from the cluster, not from an environment
// that no longer has the variables at all.
func TestRollbackToRunsWithItsRecordedSecret(t *testing.T) {
	a := newEnvApp(t, nil)
	env := map[string]string{"SHOP_DB_PASSWORD": secretValue, "SHOP_API_TOKEN": "token-1"}
	a.mustPromoteEnv("reg/shop@sha256:v1", env)
	s1 := a.state().Active.Secret
	env["SHOP_API_TOKEN"] = "token-2"
	a.mustPromoteEnv("reg/shop@sha256:v2", env)
	a.mustPromoteEnv("reg/shop@sha256:v3", env)

	p := a.promoter("test") // LookupEnv unset: no variable at all
	res, err := p.RollbackTo(context.Background(), a.spec, "sha256:v1")
	if err != nil || res.Secret != s1 {
		t.Fatalf("rollback to v1: %+v, %v\n%s", res, err, a.out)
	}
	s := a.state()
	if s.Active.Image != "reg/shop@sha256:v1" || s.Active.Secret != s1 {
		t.Fatalf("active %+v, want v1 with %s", s.Active, s1)
	}
	a.podsSecret(s.Active.Color, s1)
	if string(a.secret(s1).Data["API_TOKEN"]) != "token-1" {
		t.Fatal("v1's Secret does not hold v1's value")
	}
}
