package clustertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tsys-group/tsys-ci/pipeline/notify"
	"github.com/tsys-group/tsys-ci/test/apiserver"
	"github.com/tsys-group/tsys-ci/test/podstandin"
)

// receiver is a loopback webhook receiver keeping the events it got.
type receiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []notify.Event
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var ev notify.Event
		b, _ := io.ReadAll(req.Body)
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("notification body %q: %v", b, err)
		}
		r.mu.Lock()
		r.got = append(r.got, ev)
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

// take returns the events received so far and forgets them.
func (r *receiver) take() []notify.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

// run runs the tsys-ci binary with env added to a clean environment and
// returns its stderr and exit code.
func run(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(tsysCI, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "USER=dev"}, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stderr.String(), 0
	case errors.As(err, &exit):
		return stderr.String(), exit.ExitCode()
	}
	t.Fatalf("running tsys-ci %v: %v", args, err)
	return "", 0
}

// TestPromoteNotifiesFromTheCLI: 'tsys-ci promote --notify-config FILE'
// (or $TSYS_CI_NOTIFY_CONFIG), run as Jenkins or a developer would, tells
// the file's targets started, switched and promoted, naming the Jenkins
// build; a target that is down costs the promote at most --notify-wait at
// exit, and its result and exit code stand; a bad file is refused before
// anything is deployed.
func TestPromoteNotifiesFromTheCLI(t *testing.T) {
	cs := apiserver.Client(t)
	ns := apiserver.Namespace(t, cs, "cli-notify")
	podstandin.Start(t, cs, ns)
	dir := t.TempDir()
	spec := filepath.Join(dir, "tsys-ci.yaml")
	write(t, spec, "name: shop\nnamespace: "+ns+"\nreplicas: 2\nports: [{name: http, containerPort: 8080}]\n"+
		"strategy: {type: blueGreen, blueGreen: {scaleDownDelay: 1s}}\n")
	recv := newReceiver(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // nothing listens there any more
	good := filepath.Join(dir, "notify.yaml")
	write(t, good, "notifications:\n  - name: team\n    webhook: {url: "+recv.URL+"}\n")
	withDown := filepath.Join(dir, "notify-down.yaml")
	write(t, withDown, "notifications:\n  - name: team\n    webhook: {url: "+recv.URL+"}\n  - name: down\n    webhook: {url: "+down.URL+"}\n")
	promote := func(image string, env []string, extra ...string) (string, int) {
		args := append([]string{"promote", "shop", "--kubeconfig", kubeconfig, "--spec", spec, "--image", image, "--allow-unsigned"}, extra...)
		return run(t, env, args...)
	}
	v1 := "reg.example/shop/shop@sha256:" + strings.Repeat("a1", 32)
	v2 := "reg.example/shop/shop@sha256:" + strings.Repeat("b2", 32)

	jenkins := []string{"JOB_NAME=shop/main", "BUILD_NUMBER=7", "BUILD_URL=https://jenkins.example/job/shop/7/"}
	if out, code := promote(v1, jenkins, "--notify-config", good); code != 0 {
		t.Fatalf("promote v1: exit %d\n%s", code, out)
	}
	// Close waited for them: all three are in before the exit.
	got := recv.take()
	var kinds []string
	for _, ev := range got {
		kinds = append(kinds, ev.Kind)
		if ev.Namespace != ns || ev.App != "shop" || ev.Image != v1 || ev.Source != "promote" || ev.Strategy != "blueGreen" ||
			ev.By != "jenkins: shop/main #7 (https://jenkins.example/job/shop/7/)" {
			t.Errorf("notice %+v", ev)
		}
	}
	slices.Sort(kinds)
	if want := []string{notify.KindPromoted, notify.KindStarted, notify.KindSwitched}; !slices.Equal(kinds, want) {
		t.Fatalf("notices %q, want %q", kinds, want)
	}

	// v2 from a laptop, the file named by the environment, with a target
	// that is down.
	out, code := promote(v2, []string{"TSYS_CI_NOTIFY_CONFIG=" + withDown}, "--notify-wait", "1s")
	if code != 0 || !strings.Contains(out, "notification(s) not delivered within --notify-wait 1s; the promote's result stands") {
		t.Fatalf("promote v2 with a target down: exit %d\n%s", code, out)
	}
	var switched *notify.Event
	got = recv.take()
	kinds = nil
	for i, ev := range got {
		kinds = append(kinds, ev.Kind)
		if ev.Kind == notify.KindSwitched {
			switched = &got[i]
		}
		if !strings.HasPrefix(ev.By, "dev@") {
			t.Errorf("notice by %q, want dev@<host>", ev.By)
		}
	}
	slices.Sort(kinds)
	if want := []string{notify.KindPromoted, notify.KindStarted, notify.KindSwitched}; !slices.Equal(kinds, want) {
		t.Fatalf("notices of v2 %q, want %q", kinds, want)
	}
	if switched.Image != v2 || switched.Previous != v1 {
		t.Errorf("switched notice %+v, want %s after %s", switched, v2, v1)
	}

	bad := filepath.Join(dir, "bad.yaml")
	write(t, bad, "notifications:\n  - name: team\n    webhok: {url: "+recv.URL+"}\n")
	out, code = promote(v1, nil, "--notify-config", bad)
	if code != 2 || !strings.Contains(out, "bad.yaml") || !strings.Contains(out, "webhok") {
		t.Fatalf("promote with a misspelt notify file: exit %d, want 2 naming the field\n%s", code, out)
	}
	if got := recv.take(); len(got) != 0 {
		t.Fatalf("a refused config still notified: %+v", got)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
