package serve

import (
	"strings"
	"testing"
	"time"
)

func TestParseHarborEvent(t *testing.T) {
	ev, err := ParseHarborEvent(harborPush("web/blog/frontend", "v2", 1764039600, 0x3c))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Image() != "harbor.company.example/web/blog/frontend@sha256:"+strings.Repeat("3c", 32) || ev.Tag() != "v2" ||
		ev.Operator != "robot$web+ci" || !ev.Time().Equal(time.Unix(1764039600, 0)) {
		t.Fatalf("parsed %+v image %s", ev, ev.Image())
	}
	byDigest, err := ParseHarborEvent(harborPush("demo/shop", "", 1764039600, 1))
	if err != nil || byDigest.Tag() != "" {
		t.Fatalf("by digest: %v tag %q", err, byDigest.Tag())
	}
	// Other event types are parsed only far enough to be ignored.
	if ev, err := ParseHarborEvent([]byte(`{"type":"QUOTA_WARNING","occur_at":1764039600,"event_data":{"custom_attributes":{}}}`)); err != nil || ev.Type != "QUOTA_WARNING" {
		t.Fatalf("quota event: %v", err)
	}
	for _, bad := range []string{
		``, `null`, `[]`, `{}`, `{"type":"PUSH_ARTIFACT"}`,
		`{"type":"PUSH_ARTIFACT","occur_at":1,"event_data":{"resources":[],"repository":{"repo_full_name":"demo/shop"}}}`,
		strings.Replace(string(harborPush("demo/shop", "v1", 1764039600, 1)), `"tag":"v1"`, `"tag":"v1;rm -rf"`, 1),
		strings.Replace(string(harborPush("demo/shop", "v1", 1764039600, 1)), `harbor.company.example/`, `user@evil/`, 1),
		strings.Replace(string(harborPush("demo/shop", "v1", 1764039600, 1)), `demo/shop:v1`, `demo/shopx:v1`, 1),
	} {
		if _, err := ParseHarborEvent([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// FuzzParseHarborEvent: the parser never panics, and whatever it accepts
// as an artifact event yields a digest reference built only from checked
// parts.
func FuzzParseHarborEvent(f *testing.F) {
	f.Add(harborPush("demo/shop", "main-1", 1764039600, 1))
	f.Add(harborPush("web/blog/frontend", "", 1764039600, 2))
	f.Add(harborPush("demo/shop", "sha256-"+strings.Repeat("a", 64)+".sig", 1764039600, 3))
	f.Add([]byte(`{"type":"PUSH_ARTIFACT","occur_at":1,"event_data":{"resources":[{}]}}`))
	f.Add([]byte(`{"type":"TAG_RETENTION","occur_at":5}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseHarborEvent(body)
		if err != nil {
			return
		}
		_ = ev.ReplayKey()
		if ev.Type != HarborPushArtifact {
			return
		}
		img := ev.Image()
		if m := imageByDigestRE.FindStringSubmatch(img); m == nil || m[2] != ev.EventData.Repository.RepoFullName {
			t.Fatalf("accepted event gives image %q", img)
		}
		if tag := ev.Tag(); tag != "" && !tagRE.MatchString(tag) {
			t.Fatalf("accepted tag %q", tag)
		}
	})
}

func TestReplayCacheBoundedAndExpires(t *testing.T) {
	c := NewReplayCache(time.Hour, 3)
	t0 := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	for i, k := range []string{"a", "b", "c", "d"} {
		c.Record(k, t0.Add(time.Duration(i)*time.Minute))
	}
	now := t0.Add(5 * time.Minute)
	if c.Len() != 3 || c.Seen("a", now) || !c.Seen("b", now) || !c.Seen("d", now) {
		t.Fatalf("after 4 records in a cache of 3: len %d, a %v b %v d %v", c.Len(), c.Seen("a", now), c.Seen("b", now), c.Seen("d", now))
	}
	later := t0.Add(time.Hour + 2*time.Minute) // b and c expired, d not
	if c.Seen("b", later) || c.Seen("c", later) || !c.Seen("d", later) || c.Len() != 1 {
		t.Fatalf("expiry wrong: len %d", c.Len())
	}
}
