package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/pipeline/notify"
	"github.com/tsys-group/tsys-ci/rollout"
)

func TestPromoteOutcomeNotices(t *testing.T) {
	for _, c := range []struct {
		res        *rollout.Result
		err        error
		kind, want string
	}{
		{&rollout.Result{Result: rollout.ResultPromoted}, nil, notify.KindPromoted, ""},
		{&rollout.Result{Result: "unchanged"}, nil, notify.KindPromoted, "unchanged"},
		{&rollout.Result{Result: rollout.ResultRolledBack}, nil, notify.KindRolledBack, "--rollback"},
		{&rollout.Result{Result: rollout.ResultRolledBack}, &rollout.ProbeFailedError{App: "shop", Image: "v2", Reason: "probe http: 500"}, notify.KindRolledBack, "probe http: 500"},
		{&rollout.Result{Result: rollout.ResultAborted}, fmt.Errorf("promote of shop rolled back: %w", rollout.ErrAborted), notify.KindAborted, "aborted by"},
		{&rollout.Result{Result: rollout.ResultAborted, Reason: "stopped during a canary step"}, errors.New("promote of shop stopped during a canary step; rolled back"), notify.KindAborted, "stopped during a canary step"},
		{&rollout.Result{}, errors.New("another promote of shop is running"), notify.KindRefused, "another promote"},
	} {
		kind, reason := outcome(c.res, c.err)
		if kind != c.kind || !strings.Contains(reason, c.want) {
			t.Errorf("outcome(%+v, %v) = %s %q, want %s with %q", c.res, c.err, kind, reason, c.kind, c.want)
		}
	}
}

func TestRunByNamesTheJenkinsBuild(t *testing.T) {
	env := map[string]string{"JOB_NAME": "shop/main", "BUILD_NUMBER": "12", "USER": "jenkins"}
	if got := runBy(func(k string) string { return env[k] }); got != "jenkins: shop/main #12" {
		t.Errorf("by %q", got)
	}
	env = map[string]string{"USER": "alice"}
	if got := runBy(func(k string) string { return env[k] }); !strings.HasPrefix(got, "alice@") {
		t.Errorf("by %q, want alice@<host>", got)
	}
}
