package serve

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

func TestWebhookValidPushDeploys(t *testing.T) {
	ts := startTestServer(t, nil)
	body := harborPush("demo/shop", "main-1a2b3c4", ts.clock.Now().Unix(), 0xab)
	code, reply := post(t, ts.url+"/webhook/harbor", testSecret, "application/json", body)
	if code != http.StatusAccepted || reply["result"] != "accepted" {
		t.Fatalf("valid push: %d %v, want 202 accepted", code, reply)
	}
	testenv.Eventually(t, "the deploy to finish", 10*time.Second, func() bool {
		r := ts.recorder.Recent()
		return len(r) == 1 && r[0].State == "done"
	})
	calls := ts.deployer.Calls()
	if len(calls) != 1 {
		t.Fatalf("deployer called %d times, want 1", len(calls))
	}
	c := calls[0]
	want := "harbor.company.example/demo/shop@sha256:" + strings.Repeat("ab", 32)
	if c.Image != want || c.Policy != "shop-main" || c.App != "shop" || c.Namespace != "shop" || c.Tag != "main-1a2b3c4" ||
		c.By != "robot$demo+ci" || c.Trigger != "harbor" || !strings.HasSuffix(c.Spec, "testdata/serve/shop.yaml") {
		t.Fatalf("deploy request %+v", c)
	}
	rec := ts.recorder.Recent()[0]
	if rec.Result != ResultSucceeded || rec.ID != reply["deploys"].([]any)[0] {
		t.Fatalf("record %+v, reply %v", rec, reply)
	}
	if got := testutil.ToFloat64(ts.metrics.WebhookEvents.WithLabelValues("accepted")); got != 1 {
		t.Fatalf("accepted events metric %v, want 1", got)
	}
	if got := testutil.ToFloat64(ts.metrics.Deploys.WithLabelValues("promote", "succeeded")); got != 1 {
		t.Fatalf("succeeded deploys metric %v, want 1", got)
	}
	if lines := ts.logs.Lines("deploy finished"); len(lines) != 1 || lines[0]["policy"] != "shop-main" || lines[0]["result"] != "succeeded" {
		t.Fatalf("deploy log lines %v", lines)
	}
}

func TestWebhookRefusals(t *testing.T) {
	ts := startTestServer(t, nil)
	now := ts.clock.Now().Unix()
	valid := harborPush("demo/shop", "main-1", now, 1)
	for _, tc := range []struct {
		name        string
		auth, ctype string
		body        []byte
		code        int
		result      string
	}{
		{"no secret", "", "application/json", valid, 401, "unauthorized"},
		{"wrong secret", "Bearer guess", "application/json", valid, 401, "unauthorized"},
		{"secret with a prefix of the right one", testSecret[:len(testSecret)-1], "application/json", valid, 401, "unauthorized"},
		{"not JSON", testSecret, "application/json", []byte("type=PUSH_ARTIFACT&repo=demo/shop"), 400, "bad_request"},
		{"truncated JSON", testSecret, "application/json", valid[:len(valid)/2], 400, "bad_request"},
		{"two JSON values", testSecret, "application/json", append(append([]byte{}, valid...), valid...), 400, "bad_request"},
		{"oversized", testSecret, "application/json", append([]byte(`{"type":"`), bytes.Repeat([]byte("A"), MaxWebhookBody+10)...), 413, "too_large"},
		{"cloudevents", testSecret, "application/cloudevents+json", valid, 415, "unsupported_media"},
		{"digest not sha256", testSecret, "application/json", bytes.Replace(valid, []byte(`"sha256:01`), []byte(`"md5:01`), 1), 400, "bad_request"},
		{"resource_url elsewhere", testSecret, "application/json", bytes.Replace(valid, []byte(`example/demo/shop:`), []byte(`example/evil/shop:`), 1), 400, "bad_request"},
		{"stale", testSecret, "application/json", harborPush("demo/shop", "main-1", now-int64(7*time.Hour/time.Second), 2), 400, "stale"},
		{"future", testSecret, "application/json", harborPush("demo/shop", "main-1", now+3600, 3), 400, "stale"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(ts.metrics.WebhookEvents.WithLabelValues(tc.result))
			code, reply := post(t, ts.url+"/webhook/harbor", tc.auth, tc.ctype, tc.body)
			if code != tc.code || reply["result"] != tc.result {
				t.Fatalf("got %d %v, want %d %s", code, reply, tc.code, tc.result)
			}
			if got := testutil.ToFloat64(ts.metrics.WebhookEvents.WithLabelValues(tc.result)); got != before+1 {
				t.Fatalf("metric %s went from %v to %v", tc.result, before, got)
			}
		})
	}
	if n := len(ts.deployer.Calls()); n != 0 {
		t.Fatalf("refused deliveries made %d deploys", n)
	}
	refused := ts.logs.Lines("webhook refused")
	if len(refused) != 12 {
		t.Fatalf("%d 'webhook refused' log lines, want 12", len(refused))
	}
	for _, l := range refused {
		if l["reason"] == "" || l["remote"] == "" || strings.Contains(l["reason"].(string), "test-webhook-secret") {
			t.Fatalf("refusal log line without reason or remote, or with the secret: %v", l)
		}
	}
}

func TestWebhookReplayRefused(t *testing.T) {
	ts := startTestServer(t, nil)
	body := harborPush("demo/shop", "main-1", ts.clock.Now().Unix(), 7)
	if code, reply := post(t, ts.url+"/webhook/harbor", testSecret, "application/json", body); code != 202 {
		t.Fatalf("first delivery: %d %v", code, reply)
	}
	ts.clock.Advance(time.Hour)
	code, reply := post(t, ts.url+"/webhook/harbor", testSecret, "application/json", body)
	if code != http.StatusConflict || reply["result"] != "replay" {
		t.Fatalf("replayed delivery: %d %v, want 409 replay", code, reply)
	}
	// A re-push of the same tag is a new event (new occur_at): it deploys.
	again := harborPush("demo/shop", "main-1", ts.clock.Now().Unix(), 7)
	if code, reply := post(t, ts.url+"/webhook/harbor", testSecret, "application/json", again); code != 202 {
		t.Fatalf("re-push: %d %v, want 202", code, reply)
	}
	testenv.Eventually(t, "two deploys", 10*time.Second, func() bool {
		r := ts.recorder.Recent()
		return len(r) == 2 && r[0].State == "done" && r[1].State == "done"
	})
	if n := len(ts.deployer.Calls()); n != 2 {
		t.Fatalf("%d deploys, want 2 (the replay must not deploy)", n)
	}
}

func TestWebhookNoLeaderIsRetryable(t *testing.T) {
	ts := startTestServer(t, nil)
	ts.SetLeader(false)
	body := harborPush("demo/shop", "main-1", ts.clock.Now().Unix(), 9)
	code, reply := post(t, ts.url+"/webhook/harbor", testSecret, "application/json", body)
	if code != http.StatusServiceUnavailable || reply["result"] != "not_leader" {
		t.Fatalf("on a follower: %d %v, want 503 not_leader", code, reply)
	}
	// Harbor retries; the delivery was not recorded, so the leader takes it.
	ts.SetLeader(true)
	if code, reply := post(t, ts.url+"/webhook/harbor", testSecret, "application/json", body); code != 202 {
		t.Fatalf("retry on the leader: %d %v, want 202", code, reply)
	}
}

func TestWebhookIgnored(t *testing.T) {
	ts := startTestServer(t, nil)
	now := ts.clock.Now().Unix()
	sig := harborPush("demo/shop", "sha256-"+strings.Repeat("cd", 32)+".sig", now, 5)
	pull := bytes.Replace(harborPush("demo/shop", "main-1", now, 6), []byte("PUSH_ARTIFACT"), []byte("PULL_ARTIFACT"), 1)
	for _, tc := range []struct {
		name   string
		body   []byte
		reason string
	}{
		{"tag matching no policy", harborPush("demo/shop", "feature-x", now, 1), `tag "feature-x" of demo/shop matches no policy`},
		{"repository without policy", harborPush("demo/other", "main-1", now, 2), "no policy for repository demo/other"},
		{"pushed by digest", harborPush("demo/shop", "", now, 3), "pushed by digest"},
		{"cosign signature", sig, "cosign signature"},
		{"pull event", pull, "PULL_ARTIFACT does not trigger deploys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, reply := post(t, ts.url+"/webhook/harbor", testSecret, "application/json", tc.body)
			if code != http.StatusOK || reply["result"] != "ignored" || !strings.Contains(reply["reason"].(string), tc.reason) {
				t.Fatalf("got %d %v, want 200 ignored with reason %q", code, reply, tc.reason)
			}
		})
	}
	if n := len(ts.deployer.Calls()); n != 0 {
		t.Fatalf("ignored events made %d deploys", n)
	}
	if lines := ts.logs.Lines("webhook ignored"); len(lines) != 5 {
		t.Fatalf("%d 'webhook ignored' log lines, want 5", len(lines))
	}
}

func TestSecretMatches(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{{testSecret, true}, {"", false}, {testSecret + " ", false}, {strings.ToLower(testSecret), false}, {"test-webhook-secret", false}} {
		if got := secretMatches(tc.header, testSecret); got != tc.want {
			t.Errorf("secretMatches(%q) = %v", tc.header, got)
		}
	}
}
