package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// serveTestConfig writes a serve.yaml of the pipeline/serve test config
// with its webhook secrets directory (project demo's and web's secrets,
// the given extra lines appended) and returns its path.
func serveTestConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	src := "../../pipeline/serve/testdata/serve"
	for _, f := range []string{"serve.yaml", "shop.yaml", "blog.yaml"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "serve.yaml" {
			b = append(b, []byte("webhookSecretsDir: "+filepath.Join(dir, "webhook")+"\nreadTokenFile: "+filepath.Join(dir, "read-token")+"\n"+extra)...)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "read-token"), []byte(cmdReadToken+"\n"), 0o600)
	os.Mkdir(filepath.Join(dir, "webhook"), 0o700)
	os.WriteFile(filepath.Join(dir, "webhook", "demo"), []byte("Bearer 0123456789abcdef0123\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "webhook", "web"), []byte("Bearer web-0123456789abcdef0123\n"), 0o600)
	return filepath.Join(dir, "serve.yaml")
}

const cmdReadToken = "cmd-test-read-token-0123"

func TestServeUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("Bearer 0123456789abcdef0123\n"), 0o600)
	cfg := serveTestConfig(t, "")
	for _, tc := range []struct {
		args  []string
		words string
	}{
		{[]string{"--config", cfg, "--webhook-secret-file", secret, "--no-cluster"}, "set webhookSecretsDir in serve.yaml"},
		{[]string{"--config", cfg}, "--verify-key cosign.pub, or --allow-unsigned"},
		{[]string{"--config", cfg, "--verify-key", "k.pub", "--allow-unsigned"}, "not both"},
		{[]string{"--no-cluster"}, "one of --config"},
		{[]string{"--config", filepath.Join(dir, "none.yaml"), "--no-cluster"}, "reading serve config"},
	} {
		app := newApp()
		var out bytes.Buffer
		app.Writer, app.ErrWriter = &out, &out
		err := runCLI(context.Background(), app, append([]string{"tsys-ci", "serve", "--listen", "127.0.0.1:0"}, tc.args...))
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), tc.words) {
			t.Errorf("serve %v: %v (exit %d), want exit 2 saying %q", tc.args, err, exitCode(err), tc.words)
		}
	}
}

// tsys-ci serve --no-cluster takes a Harbor push, records the deploy as
// failed ("nothing was deployed"), and stops cleanly when its context ends.
func TestServeNoClusterRunsAndStops(t *testing.T) {
	cfg := serveTestConfig(t, "")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	app := newApp()
	var logs testenv.SyncBuffer
	app.Writer, app.ErrWriter = io.Discard, &logs
	done := make(chan error, 1)
	go func() {
		done <- runCLI(ctx, app, []string{"tsys-ci", "serve", "--listen", addr, "--no-cluster",
			"--config", cfg})
	}()
	base := "http://" + addr
	testenv.Eventually(t, "serve to answer", 20*time.Second, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	body := fmt.Sprintf(`{"type":"PUSH_ARTIFACT","occur_at":%d,"operator":"robot$demo+ci","event_data":{"resources":[{"digest":"sha256:%s","tag":"main-1","resource_url":"harbor.company.example/demo/shop:main-1"}],"repository":{"name":"shop","namespace":"demo","repo_full_name":"demo/shop","repo_type":"private"}}}`,
		time.Now().Unix(), strings.Repeat("c", 64))
	req, _ := http.NewRequest(http.MethodPost, base+"/webhook/harbor", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer 0123456789abcdef0123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}
	var deploys struct{ Deploys []serve.DeployRecord }
	testenv.Eventually(t, "serve to answer", 20*time.Second, func() bool {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/deploys", nil)
		req.Header.Set("Authorization", "Bearer "+cmdReadToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		deploys.Deploys = nil
		json.NewDecoder(resp.Body).Decode(&deploys)
		return len(deploys.Deploys) == 1 && deploys.Deploys[0].State == "done"
	})
	if d := deploys.Deploys[0]; d.Result != serve.ResultFailed || !strings.Contains(d.Error, "nothing was deployed") {
		t.Fatalf("deploy without a cluster: %+v", d)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve after its context ended: %v\n%s", err, logs.String())
	}
}
