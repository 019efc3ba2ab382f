package apiserver

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// current is the Config of the server RunTests started for this test binary.
var current *rest.Config

// Main is a whole TestMain: it starts one Server for the test binary, keeps
// its Config in *cfg (when cfg is not nil) and for Client, runs the tests,
// stops the server and exits with the tests' code:
//
//	var cfg *rest.Config
//	func TestMain(m *testing.M) { apiserver.Main(m, &cfg) }
func Main(m *testing.M, cfg **rest.Config) {
	os.Exit(RunTests(m, func(s *Server) {
		if cfg != nil {
			*cfg = s.Config
		}
	}))
}

// RunTests is a TestMain body: it starts one Server for the test binary,
// hands it to use (keep its Config in a package variable), runs the tests
// and stops the server. It returns the exit code for os.Exit:
//
//	var cfg *rest.Config
//	func TestMain(m *testing.M) {
//		os.Exit(apiserver.RunTests(m, func(s *apiserver.Server) { cfg = s.Config }))
//	}
//
// A server that cannot start fails the whole binary with the reason: the
// binaries are built from this repository, so nothing outside it is missing.
// Under -short (`make test-unit`) no server starts and no test of the
// binary runs: they are integration tests, and building Kubernetes cold
// takes minutes.
func RunTests(m *testing.M, use func(*Server)) int {
	flag.Parse()
	if testing.Short() {
		fmt.Println("apiserver: -short: the tests of this package need a real API server and are skipped")
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := Start(ctx, Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "apiserver: %v\n", err)
		return 1
	}
	defer s.Stop()
	current = s.Config
	use(s)
	return m.Run()
}

// Client is a clientset for the server Main (or RunTests) started.
func Client(t testing.TB) *kubernetes.Clientset {
	t.Helper()
	if current == nil {
		t.Fatal("apiserver.Client: no server; start one with apiserver.Main(m, &cfg) in TestMain")
	}
	c, err := kubernetes.NewForConfig(current)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var notInName = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a fresh namespace for one test and returns its name:
// prefix (made a valid name: lower case, other characters as "-", cut to
// leave room) plus a suffix the server picks, so -count=N, which reuses the
// server, never meets an old one. Pass t.Name() when nothing shorter says
// more.
func Namespace(t testing.TB, c kubernetes.Interface, prefix string) string {
	t.Helper()
	p := strings.Trim(notInName.ReplaceAllString(strings.ToLower(prefix), "-"), "-")
	if len(p) > 50 {
		p = strings.Trim(p[len(p)-50:], "-")
	}
	if p == "" {
		p = "test"
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: p + "-"}}
	ns, err := c.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a namespace for %s: %v", t.Name(), err)
	}
	return ns.Name
}
