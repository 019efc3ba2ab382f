// Package prometheus starts a real Prometheus server (Debian's package)
// for tests: one child process per Start, on a loopback port, scraping the
// targets the test names, with its data in a temporary folder; it is
// stopped when the test ends.
package prometheus

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/testenv"
)

// Server is a running Prometheus.
type Server struct {
	// URL is http://127.0.0.1:<port>, the API's base address.
	URL string
	// Dir holds the config, the data and the log.
	Dir string
}

// Job is one scrape job: host:port targets whose /metrics are read every
// Interval, each series labelled with Labels.
type Job struct {
	Name     string
	Targets  []string
	Interval time.Duration
	Labels   map[string]string
}

// Start runs Prometheus scraping jobs and waits until it is ready. Without
// Prometheus installed the test skips (fails under make test).
func Start(t testing.TB, jobs ...Job) *Server {
	t.Helper()
	return StartConfig(t, config(jobs))
}

// StartConfig is Start with prometheus.yml as the caller writes it (e.g.
// Kubernetes service discovery, for the lab).
func StartConfig(t testing.TB, yml string) *Server {
	t.Helper()
	bin := testenv.LookPath(t, "prometheus")
	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Dir: dir}
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("prometheus fixture: starting %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logFile.Close()
		if t.Failed() {
			if log, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("prometheus log (last 3000 bytes):\n%s", testenv.Tail(log, 3000))
			}
		}
	})
	if err := waitReady(s.URL, exited, 30*time.Second); err != nil {
		log, _ := os.ReadFile(logFile.Name())
		t.Fatalf("prometheus fixture: %v\nprometheus log:\n%s", err, testenv.Tail(log, 3000))
	}
	return s
}

// config writes prometheus.yml: a scrape timeout of the interval (it may
// not be longer), so intervals below Prometheus' 10 s default timeout work.
func config(jobs []Job) string {
	var b strings.Builder
	b.WriteString("scrape_configs:\n")
	for _, j := range jobs {
		fmt.Fprintf(&b, "  - job_name: %q\n    scrape_interval: %s\n    scrape_timeout: %s\n    static_configs:\n      - targets: [", j.Name, j.Interval, j.Interval)
		for i, tg := range j.Targets {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", tg)
		}
		b.WriteString("]\n")
		if len(j.Labels) > 0 {
			b.WriteString("        labels:\n")
			for k, v := range j.Labels {
				fmt.Fprintf(&b, "          %s: %q\n", k, v)
			}
		}
	}
	return b.String()
}

// waitReady waits until /-/ready answers 200, Prometheus exits, or the
// deadline passes.
func waitReady(base string, exited <-chan error, within time.Duration) error {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/-/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		cancel()
		select {
		case err := <-exited:
			return fmt.Errorf("prometheus exited before it was ready: %v", err)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("prometheus not ready at %s after %s: %s", base, within, last)
		}
	}
}
