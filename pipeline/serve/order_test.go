package serve

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/testenv"
)

// Issue 17 finding 3: an older push delivered after a newer one is not
// deployed.
func TestWebhookOlderPushAfterNewerNotDeployed(t *testing.T) {
	ts := startTestServer(t, nil)
	now := ts.clock.Now().Unix()
	if code, reply := post(t, ts.url+"/webhook/harbor", testSecret, "application/json", harborPush("demo/shop", "main-2", now, 2)); code != http.StatusAccepted {
		t.Fatalf("main-2: %d %v", code, reply)
	}
	code, reply := post(t, ts.url+"/webhook/harbor", testSecret, "application/json", harborPush("demo/shop", "main-1", now-60, 1))
	if reason, _ := reply["reason"].(string); code != http.StatusOK || reply["result"] != "superseded" || !strings.Contains(reason, "main-1") || !strings.Contains(reason, "main-2") {
		t.Fatalf("main-1 after main-2: %d %v, want 200 superseded naming both tags", code, reply)
	}
	// A newer one still goes.
	if code, reply := post(t, ts.url+"/webhook/harbor", testSecret, "application/json", harborPush("demo/shop", "main-3", now+1, 3)); code != http.StatusAccepted {
		t.Fatalf("main-3: %d %v", code, reply)
	}
	testenv.Eventually(t, "two deploys done", 10*time.Second, func() bool {
		r := ts.recorder.Recent()
		return len(r) == 2 && r[0].State == "done" && r[1].State == "done"
	})
	var tags []string
	for _, c := range ts.deployer.Calls() {
		tags = append(tags, c.Tag)
	}
	if strings.Join(tags, ",") != "main-2,main-3" {
		t.Fatalf("deployed %v, want main-2 then main-3", tags)
	}
}

// The order is shared by every replica (in the cluster, KubePushOrder): a
// new leader refuses a delivery the old one accepted, and an older one.
func TestWebhookReplayRefusedByNextLeader(t *testing.T) {
	shared := &MemoryPushOrder{}
	a := startTestServer(t, func(o *ServerOptions) { o.PushOrder = shared })
	b := startTestServer(t, func(o *ServerOptions) { o.PushOrder = shared })
	now := a.clock.Now().Unix()
	body := harborPush("demo/shop", "main-5", now, 5)
	if code, reply := post(t, a.url+"/webhook/harbor", testSecret, "application/json", body); code != http.StatusAccepted {
		t.Fatalf("first leader: %d %v", code, reply)
	}
	if code, reply := post(t, b.url+"/webhook/harbor", testSecret, "application/json", body); code != http.StatusConflict || reply["result"] != "replay" {
		t.Fatalf("the same delivery at the next leader: %d %v, want 409 replay", code, reply)
	}
	if code, reply := post(t, b.url+"/webhook/harbor", testSecret, "application/json", harborPush("demo/shop", "main-4", now-5, 4)); code != http.StatusOK || reply["result"] != "superseded" {
		t.Fatalf("an older push at the next leader: %d %v, want 200 superseded", code, reply)
	}
	if calls := b.deployer.Calls(); len(calls) != 0 {
		t.Fatalf("the next leader deployed %+v", calls)
	}
}
