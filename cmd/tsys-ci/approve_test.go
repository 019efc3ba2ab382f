package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/rollout"
)

var testDigest = "sha256:" + strings.Repeat("c", 64)

func TestApproveFlags(t *testing.T) {
	good := approveFlags{app: "shop", stage: "production", digest: testDigest, serve: "https://serve.example", user: "bob"}
	if err := good.validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mutate func(*approveFlags)
		want   string
	}{
		{func(f *approveFlags) { f.stage = "" }, "say which stage: --stage NAME"},
		{func(f *approveFlags) { f.digest = "c0ffee" }, `--digest "c0ffee" is not sha256:<64 hex digits>; 'tsys-ci status shop' shows the digest waiting for production`},
		{func(f *approveFlags) { f.serve = "" }, "--serve https://HOST or TSYS_CI_SERVE"},
		{func(f *approveFlags) { f.serve = "serve.example" }, `--serve "serve.example" is not https://HOST[:PORT]`},
		{func(f *approveFlags) { f.user = "" }, "--user LOGIN or TSYS_CI_USER"},
	} {
		f := good
		tc.mutate(&f)
		err := f.validate()
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want exit 2 saying %q", f, err, tc.want)
		}
	}
}

// approve goes to serve's API with the person's login; serve's refusal
// comes back in its words, exit 2; its record is printed on success.
func TestApproveThroughServe(t *testing.T) {
	var got []serve.ApproveRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		var req serve.ApproveRequest
		if r.URL.Path != "/api/v1/approve" || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&req) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got = append(got, req)
		w.Header().Set("Content-Type", "application/json")
		if user != "bob" || pass != "bob-pw" {
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]string{"error": "the approval gate of stage production: " + user + " is not in directory group release-managers; a member of release-managers must approve " + req.Digest})
			return
		}
		json.NewEncoder(w).Encode(serve.StageRecord{Policy: "shop", App: "shop", Stages: []serve.StageStatus{
			{Name: "production", Namespace: "shop-prod", Approvals: []serve.Approval{{Digest: req.Digest, By: "bob", Group: "release-managers", At: time.Date(2026, 12, 7, 23, 0, 0, 0, time.UTC)}}}}})
	}))
	defer srv.Close()
	pw := filepath.Join(t.TempDir(), "pw")
	writeFile(t, pw, "carol-pw\n")
	t.Setenv("TSYS_CI_PASSWORD", "")
	_, err := runPromoteCLI(t, "approve", "shop", "--stage", "production", "--digest", testDigest, "--serve", srv.URL, "--user", "carol", "--password-file", pw)
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "serve refused the approval (403 Forbidden): the approval gate of stage production: carol is not in directory group release-managers") {
		t.Fatalf("carol approves: %v, want serve's 403 in its words, exit 2", err)
	}
	t.Setenv("TSYS_CI_PASSWORD", "bob-pw")
	out, err := runPromoteCLI(t, "approve", "shop", "--stage", "production", "--digest", testDigest, "--serve", srv.URL, "--user", "bob")
	if err != nil {
		t.Fatalf("bob approves: %v\n%s", err, out)
	}
	for _, want := range []string{"shop: bob approved " + testDigest + " for stage production", "approved: " + testDigest + " by bob (group release-managers) at 2026-12-07 23:00:00Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if len(got) != 2 || got[1] != (serve.ApproveRequest{App: "shop", Stage: "production", Digest: testDigest}) {
		t.Errorf("serve was asked %+v", got)
	}
}

func TestStatusShowsStages(t *testing.T) {
	at := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	rec := &serve.StageRecord{Policy: "shop", App: "shop", Stages: []serve.StageStatus{
		{Name: "dev", Namespace: "shop-dev", Digest: testDigest, Tag: "main-7", PushedBy: "alice", State: serve.StageSucceeded, Finished: at},
		{Name: "staging", Namespace: "shop-staging", Waiting: &serve.StageWait{Digest: testDigest, Gate: "after", Since: at, Reason: "stage dev has served it since 2026-12-07T22:00:00Z; the 10m0s soak ends at 2026-12-07T22:10:00Z if dev keeps serving it, not rolled back"}},
		{Name: "production", Namespace: "shop-prod"},
	}}
	var out bytes.Buffer
	printStages(&out, rec)
	for _, want := range []string{
		"  dev          shop-dev             " + testDigest + " succeeded at 2026-12-07 22:00:00Z (tag main-7, pushed by alice)",
		"    waiting: " + testDigest + " for gate after since 2026-12-07 22:00:00Z: stage dev has served it since 2026-12-07T22:00:00Z; the 10m0s soak ends at 2026-12-07T22:10:00Z",
		"  production   shop-prod            nothing yet",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stages do not say %q:\n%s", want, out.String())
		}
	}
	// -o json: the rollout state's fields as for any app, and the record.
	b, err := json.Marshal(stagedStatus{State: &rollout.State{App: "shop", Phase: rollout.PhaseStable}, Stages: rec})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	stages, _ := m["stages"].(map[string]any)
	if m["app"] != "shop" || m["phase"] != "Stable" || stages == nil || len(stages["stages"].([]any)) != 3 {
		t.Errorf("status -o json of a staged app: %s", b)
	}
}
