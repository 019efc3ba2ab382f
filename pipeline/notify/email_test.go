package notify

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tsys-group/tsys-ci/test/pki"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// smtpServer is Debian's aiosmtpd (python3-aiosmtpd) on loopback, storing
// what it receives in a Maildir: a real SMTP server, with STARTTLS when
// given a certificate.
type smtpServer struct {
	addr    string
	maildir string
}

func startSMTP(t *testing.T, tlsCert, tlsKey string) *smtpServer {
	t.Helper()
	python := testenv.LookPath(t, "/usr/bin/python3")
	if out, err := exec.Command(python, "-c", "import aiosmtpd").CombinedOutput(); err != nil {
		testenv.Missing(t, "Debian's python3-aiosmtpd is not installed (scripts/deps.sh installs it): "+strings.TrimSpace(string(out)))
	}
	s := &smtpServer{addr: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)), maildir: filepath.Join(t.TempDir(), "Maildir")}
	args := []string{"-m", "aiosmtpd", "-n", "-l", s.addr, "-c", "aiosmtpd.handlers.Mailbox"}
	if tlsCert != "" {
		args = append(args, "--tlscert", tlsCert, "--tlskey", tlsKey)
	}
	cmd := exec.Command(python, append(args, s.maildir)...)
	var log testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testenv.Eventually(t, "aiosmtpd answering on "+s.addr, 20*time.Second, func() bool {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			return false
		}
		defer c.Close()
		line, err := bufio.NewReader(c).ReadString('\n')
		return err == nil && strings.HasPrefix(line, "220 ")
	})
	return s
}

// messages are the files of the Maildir's new/ folder.
func (s *smtpServer) messages(t *testing.T) []string {
	entries, _ := os.ReadDir(filepath.Join(s.maildir, "new"))
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(s.maildir, "new", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func TestEmailOverSTARTTLSReachesARealSMTPServer(t *testing.T) {
	ca, err := pki.NewCA("tsys-ci test mail CA")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(pki.Request{CommonName: "127.0.0.1", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key, err := pki.WriteFiles(dir, "smtp", pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startSMTP(t, cert, key)
	target := Target{Name: "mail", Email: &Email{SMTP: srv.addr, From: "tsys-ci@company.example", To: []string{"shop-team@company.example"}, CAFile: caFile}}
	if err := Validate("notifications", []Target{target}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	n := New([]Target{target}, fast(reg))
	n.Notify(rolledBack)
	n.Close(testContext(t))
	if v := testutil.ToFloat64(n.opts.Metrics.Deliveries.WithLabelValues("mail", "delivered")); v != 1 {
		t.Fatalf("delivered = %v, want 1", v)
	}
	msgs := srv.messages(t)
	if len(msgs) != 1 {
		t.Fatalf("the Maildir holds %d messages, want 1", len(msgs))
	}
	for _, want := range []string{
		"Subject: [tsys-ci] shop/web: web@sha256:1a2b3c4d5e6f rolled back",
		"To: shop-team@company.example",
		"reason: v4: 37 % of 212 requests answered 5xx in the last 10 s",
		"by: jenkins shop/main #42",
	} {
		if !strings.Contains(msgs[0], want) {
			t.Errorf("message lacks %q:\n%s", want, msgs[0])
		}
	}
	t.Logf("received:\n%s", msgs[0])
}

// TestEmailIsNotSentInClear: a relay without STARTTLS gets nothing unless
// the target opts out knowingly.
func TestEmailIsNotSentInClear(t *testing.T) {
	srv := startSMTP(t, "", "")
	reg := prometheus.NewRegistry()
	opts := fast(reg)
	opts.Attempts = 1
	n := New([]Target{
		{Name: "refused", Email: &Email{SMTP: srv.addr, From: "a@b.example", To: []string{"c@d.example"}}},
		{Name: "opted-out", Email: &Email{SMTP: srv.addr, From: "a@b.example", To: []string{"c@d.example"}, InsecurePlaintext: true}},
	}, opts)
	n.Notify(rolledBack)
	n.Close(testContext(t))
	m := n.opts.Metrics
	if testutil.ToFloat64(m.Deliveries.WithLabelValues("refused", "failed")) != 1 || testutil.ToFloat64(m.Deliveries.WithLabelValues("opted-out", "delivered")) != 1 {
		t.Errorf("refused failed %v, opted-out delivered %v", testutil.ToFloat64(m.Deliveries.WithLabelValues("refused", "failed")), testutil.ToFloat64(m.Deliveries.WithLabelValues("opted-out", "delivered")))
	}
	if got := len(srv.messages(t)); got != 1 {
		t.Errorf("%d messages, want only the opted-out one", got)
	}
}
