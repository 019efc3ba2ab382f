package serve

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 17 finding 1: the registry host of a deployed image is pinned to
// serve.yaml's registry, and each Harbor project has its own webhook secret.
func TestWebhookRegistryAndProjectPinned(t *testing.T) {
	ts := startTestServer(t, nil)
	now := ts.clock.Now().Unix()
	for i, host := range []string{"attacker.example:5000", "169.254.169.254", "127.0.0.1:10250", "kubernetes.default.svc:443", "10.0.0.1", "evil#x", "harbor.company.example:443", "HARBOR.company.example"} {
		body := bytes.Replace(harborPush("demo/shop", "main-1", now, byte(i)), []byte(`"harbor.company.example/`), []byte(`"`+host+`/`), 1)
		code, reply := post(t, ts.url+"/webhook/harbor", testSecret, "application/json", body)
		msg, _ := reply["error"].(string)
		if code != http.StatusBadRequest || reply["result"] != "wrong_registry" || !strings.Contains(msg, host) || !strings.Contains(msg, "harbor.company.example only") {
			t.Errorf("resource_url host %s: %d %v, want 400 wrong_registry naming both hosts", host, code, reply)
		}
	}
	// Project web's secret cannot send project demo's events, nor demo's web's.
	code, reply := post(t, ts.url+"/webhook/harbor", testSecretWeb, "application/json", harborPush("demo/shop", "main-2", now, 0x21))
	if msg, _ := reply["error"].(string); code != http.StatusForbidden || !strings.Contains(msg, "project web") || !strings.Contains(msg, "project demo") {
		t.Errorf("demo's push with web's secret: %d %v, want 403 naming both projects", code, reply)
	}
	if code, reply := post(t, ts.url+"/webhook/harbor", testSecret, "application/json", harborPush("web/blog/frontend", "v1", now, 0x22)); code != http.StatusForbidden {
		t.Errorf("web's push with demo's secret: %d %v, want 403", code, reply)
	}
	if code, reply := post(t, ts.url+"/webhook/harbor", testSecretWeb, "application/json", harborPush("web/blog/frontend", "v1", now, 0x23)); code != http.StatusAccepted {
		t.Errorf("web's push with web's secret: %d %v, want 202", code, reply)
	}
	if calls := ts.deployer.Calls(); len(calls) > 1 || len(calls) == 1 && !strings.HasPrefix(calls[0].Image, "harbor.company.example/web/") {
		t.Fatalf("deployer was asked for %+v; only web's own push may reach it", calls)
	}
}

func TestManualPromoteRegistryPinned(t *testing.T) {
	dir := ucsDirectory(t)
	ts := apiServer(t, dir, LDAPConfig{URL: dir.LDAPSURL, CAFile: dir.CAFile, BaseDN: dir.BaseDN, BindDN: dir.AdminDN, BindPasswordEnv: "X"})
	digest := "sha256:" + strings.Repeat("66", 32)
	for _, host := range []string{"attacker.example", "169.254.169.254", "127.0.0.1:10250"} {
		code, reply := manual(t, ts, "/api/v1/promote", "alice", "alice-pw", map[string]string{"namespace": "shop", "app": "shop", "image": host + "/demo/shop@" + digest})
		if msg, _ := reply["error"].(string); code != http.StatusBadRequest || !strings.Contains(msg, host) || !strings.Contains(msg, "harbor.company.example") {
			t.Errorf("promote from %s: %d %v, want 400 naming both registries", host, code, reply)
		}
	}
	if calls := ts.deployer.Calls(); len(calls) != 0 {
		t.Fatalf("deployer was asked for %+v", calls)
	}
}

func TestConfigWithoutRegistrySaysWhatToAdd(t *testing.T) {
	data, err := os.ReadFile("testdata/serve/serve.yaml")
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(data), "registry: harbor.company.example\n", "", 1)
	_, err = ParseConfig([]byte(old), "testdata/serve")
	if err == nil || !strings.Contains(err.Error(), "registry: missing; add `registry: harbor.company.example`") {
		t.Fatalf("a config without registry: %v", err)
	}
	for _, bad := range []string{"https://harbor.example", "harbor.example/demo", "Harbor.Example"} {
		if _, err := ParseConfig([]byte(old+"registry: "+bad+"\n"), "testdata/serve"); err == nil || !strings.Contains(err.Error(), "not a registry host") {
			t.Errorf("registry %q: %v", bad, err)
		}
	}
}

func TestWebhookSecretsOnePerProject(t *testing.T) {
	cfg, err := LoadConfig("testdata/serve/serve.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.WebhookSecretsDir = ""
	if _, err := NewServer(ServerOptions{Config: cfg}); err == nil || !strings.Contains(err.Error(), "add `webhookSecretsDir:") {
		t.Fatalf("no webhookSecretsDir: %v", err)
	}
	cfg.WebhookSecretsDir = dir
	os.WriteFile(filepath.Join(dir, "demo"), []byte(testSecret+"\n"), 0o600)
	if _, err := NewServer(ServerOptions{Config: cfg}); err == nil || !strings.Contains(err.Error(), "project web") || !strings.Contains(err.Error(), "registry setup --project web") {
		t.Fatalf("web's secret missing: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "web"), []byte(testSecret+"\n"), 0o600)
	if _, err := NewServer(ServerOptions{Config: cfg}); err == nil || !strings.Contains(err.Error(), "are the same") {
		t.Fatalf("one secret for two projects: %v", err)
	}
	// Issue 17 finding 12: the scheme does not count towards the length.
	os.WriteFile(filepath.Join(dir, "web"), []byte("Bearer 123456789"), 0o600)
	if _, err := NewServer(ServerOptions{Config: cfg}); err == nil || !strings.Contains(err.Error(), "9 characters after its scheme") {
		t.Fatalf("a 9-character token after Bearer: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "web"), []byte(testSecretWeb), 0o600)
	s, err := NewServer(ServerOptions{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if s.webhookSecrets["demo"] != testSecret || s.webhookSecrets["web"] != testSecretWeb {
		t.Fatalf("secrets read %v", s.webhookSecrets)
	}
}
