package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/tsys-group/tsys-ci/test/slapd"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// The dashboard's directory login: a person in the group that may deploy
// the demo's apps. The password is made per demo and kept in the folder.
const (
	dashboardUser  = "demo"
	dashboardGroup = "demo-deployers"
)

// stepDashboard starts tsys-ci serve on this machine against the lab, with
// a directory (a real slapd, shaped like the company's UCS) to log in
// against, and opens its dashboard as a person would: log in, then the
// whiteboard's page, which must show the version the demo left serving.
// Both programs keep running after the demo (make demo-down stops them), so
// the address printed at the end can be opened from a browser.
//
// serve runs on the host, not in the lab: the lab has no directory server
// of its own, and the dashboard needs one. What it shows it reads from the
// lab's API server (the apps' rollout state), as serve in the cluster does.
func (d *Demo) stepDashboard(ctx context.Context) error {
	dir := filepath.Join(d.dir, "dashboard")
	if err := stopDashboard(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	t := time.Now()
	dirSrv, pid, err := slapd.Daemon(filepath.Join(dir, "slapd"))
	if err != nil {
		return fmt.Errorf("starting the dashboard's directory: %w", err)
	}
	if err := writePid(filepath.Join(dir, "slapd.pid"), pid); err != nil {
		return err
	}
	password, bindPassword := randomHex(12), randomHex(16)
	if err := dirSrv.ApplyLDIF(dirSrv.UserLDIF(dashboardUser, password) + "\n" +
		dirSrv.BindAccountLDIF("svc-tsys-ci", bindPassword) + "\n" +
		dirSrv.GroupLDIF(dashboardGroup, dashboardUser)); err != nil {
		return fmt.Errorf("adding the demo's user and group: %w", err)
	}
	d.say("directory: slapd on %s (UCS-shaped), user %q in group %q", dirSrv.URL, dashboardUser, dashboardGroup)

	files := map[string]string{
		"password":      password + "\n",
		"bind-password": bindPassword + "\n",
		"session-key":   randomHex(32) + "\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	addr, err := testenv.FreeAddr()
	if err != nil {
		return err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", addr.Port)
	// No Harbor calls the demo's serve: the policies' project (demo) gets
	// a random webhook secret nobody is given, so every webhook is refused.
	if err := os.MkdirAll(filepath.Join(dir, "webhook-secrets"), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "webhook-secrets", "demo"), []byte("Bearer "+randomHex(24)+"\n"), 0o600); err != nil {
		return err
	}
	cfg, err := d.serveConfig(dir, dirSrv)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "serve.yaml"), cfg, 0o600); err != nil {
		return err
	}
	_, pub, err := d.ensureKeys()
	if err != nil {
		return err
	}
	serveLog, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return err
	}
	defer serveLog.Close()
	cmd := exec.Command(d.tsysci, "serve", "--config", filepath.Join(dir, "serve.yaml"), "--verify-key", pub,
		"--listen", listen, "--kubeconfig", d.lab.Kubeconfig(),
		"--lease-namespace", "tsys-ci-system", "--lease-name", "tsys-ci-demo-serve", "--identity", "make-demo")
	cmd.Stdout, cmd.Stderr = serveLog, serveLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives the demo
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting tsys-ci serve: %w", err)
	}
	if err := writePid(filepath.Join(dir, "serve.pid"), cmd.Process.Pid); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	base := "http://" + listen
	if err := waitReady(ctx, base, exited); err != nil {
		log, _ := os.ReadFile(serveLog.Name())
		return fmt.Errorf("%w\n--- serve's log (%s):\n%s", err, serveLog.Name(), indent(string(testenv.Tail(log, 3000))))
	}
	d.say("tsys-ci serve on %s in %s (log: %s)", listen, round(time.Since(t)), serveLog.Name())

	t = time.Now()
	page := fmt.Sprintf("%s/ui/apps/%s/%s", base, "whiteboard", "whiteboard")
	body, err := openAsPerson(ctx, base, page, dashboardUser, password)
	if err != nil {
		return fmt.Errorf("opening the dashboard: %w", err)
	}
	serving := d.wb[1].Ref
	if !strings.Contains(body, serving) {
		return fmt.Errorf("the dashboard's whiteboard page does not show the serving version %s:\n%s", serving, indent(string(testenv.Tail([]byte(body), 2000))))
	}
	d.say("logged in as %s and opened %s: it shows %s serving", dashboardUser, page, serving)
	d.number(6, "dashboard: log in and open the whiteboard's page", round(time.Since(t)).String())
	d.res.Dashboard = Dashboard{URL: base + "/ui/", User: dashboardUser, PasswordFile: filepath.Join(dir, "password"), Password: password, Serving: serving}
	return nil
}

// serveConfig is serve.yaml for the demo: the two apps (so the dashboard
// lists them; no Harbor sends their pushes in the lab), the directory, and
// who may deploy.
func (d *Demo) serveConfig(dir string, dirSrv *slapd.Server) ([]byte, error) {
	group := dirSrv.GroupDN(dashboardGroup)
	cfg := map[string]any{
		"registry": d.addons.Addons.Registry,
		// Loopback only: the session cookie and password cross no network.
		"insecurePlainHTTP": true,
		"webhookSecretsDir": filepath.Join(dir, "webhook-secrets"),
		"policies": []map[string]any{
			{"name": "whiteboard", "repository": "demo/whiteboard", "tags": "v*", "app": "whiteboard", "namespace": "whiteboard", "spec": d.whiteboardSpec()},
			{"name": "demo-hello", "repository": "demo/hello", "tags": "v*", "app": "demo-hello", "namespace": "demo-hello", "spec": filepath.Join(d.dir, "hello.yaml")},
		},
		"ldap": map[string]any{
			"url": dirSrv.LDAPSURL, "caFile": dirSrv.CAFile, "baseDN": dirSrv.BaseDN,
			"userBase": dirSrv.UserBase(), "groupBase": dirSrv.GroupBase(),
			"bindDN": dirSrv.UserDN("svc-tsys-ci"), "bindPasswordFile": filepath.Join(dir, "bind-password"),
		},
		"access":    map[string]string{"whiteboard": group, "demo-hello": group},
		"dashboard": map[string]any{"sessionKeyFile": filepath.Join(dir, "session-key")},
	}
	return yaml.Marshal(cfg)
}

// waitReady waits for serve's /readyz, or its exit.
func waitReady(ctx context.Context, base string, exited <-chan error) error {
	deadline := time.Now().Add(time.Minute)
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
		} else {
			last = err.Error()
		}
		select {
		case err := <-exited:
			return fmt.Errorf("tsys-ci serve exited before it was ready: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tsys-ci serve not ready after a minute (last answer: %s)", last)
		}
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// openAsPerson logs in through the dashboard's form, as a browser does
// (the login form's CSRF token and cookie, then the session cookie), and
// returns the page's HTML.
func openAsPerson(ctx context.Context, base, page, user, password string) (string, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	get := func(u string) (string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("GET %s: %s: %s", u, resp.Status, testenv.Tail(b, 500))
		}
		return string(b), err
	}
	form, err := get(base + "/ui/login")
	if err != nil {
		return "", err
	}
	m := csrfField.FindStringSubmatch(form)
	if m == nil {
		return "", fmt.Errorf("the login page has no CSRF field:\n%s", form)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/ui/login",
		strings.NewReader(url.Values{"csrf": {m[1]}, "login": {user}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Contains(string(b), `class="error"`) {
		return "", fmt.Errorf("logging in as %s: %s: %s", user, resp.Status, testenv.Tail(b, 800))
	}
	return get(page)
}

// StopDashboard ends the dashboard's serve and slapd a demo of the
// checkout at repoRoot left running, if any (TestDemo's cleanup; make
// demo-down through Down).
func StopDashboard(repoRoot string) error {
	return stopDashboard(filepath.Join(repoRoot, ".lab", "demo", "dashboard"))
}

// stopDashboard ends the serve and slapd a previous demo left running in
// dir, if any.
func stopDashboard(dir string) error {
	var errs []error
	for _, name := range []string{"serve.pid", "slapd.pid"} {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			err = stopOurs(strings.TrimSpace(string(b)))
		}
		if err == nil {
			err = os.Remove(path)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	return errors.Join(errs...)
}

// stopOurs sends SIGTERM to pid if it is still a slapd or a tsys-ci (after
// a reboot the number may be another program's) and waits up to 10 s for
// it to end (serve drains first).
func stopOurs(pidText string) error {
	pid, err := strconv.Atoi(pidText)
	if err != nil {
		return fmt.Errorf("not a process id: %q", pidText)
	}
	running := func() bool {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return err == nil && (strings.Contains(string(cmdline), "slapd") || strings.Contains(string(cmdline), "tsys-ci"))
	}
	if !running() {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stopping process %d: %w", pid, err)
	}
	for deadline := time.Now().Add(10 * time.Second); running(); {
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d still runs 10 s after SIGTERM", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func writePid(path string, pid int) error {
	return os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o600)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
