//go:build e2e

// Package e2e holds the end-to-end tests that run on the lab (test/lab):
// real nodes, real pods, real failures. Run with
//
//	go test -tags e2e ./test/e2e/
//
// TestMain brings the lab up with its add-ons (test/labaddons; quick when
// it is already up) and leaves it up afterwards for the next run; make
// lab-down removes it. Nodes a test stops
// are started again before it ends.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/test/lab"
	"github.com/tsys-group/tsys-ci/test/labaddons"
)

var (
	theLab *lab.Lab
	// theAddons says where the add-ons are (registry, MetalLB pool).
	theAddons *labaddons.Result
	// host-wide sysctls as they were before the lab came up
	hostSysctls map[string]string
)

var watchedSysctls = []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops"}

func TestMain(m *testing.M) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hostSysctls = readSysctls()
	r, err := labaddons.Up(ctx, labaddons.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: the lab did not come up: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "e2e: add-ons ready in %s; registry %s\n", r.Took.Round(100*time.Millisecond), r.Addons.Registry)
	theLab, theAddons = r.Lab, r
	os.Exit(m.Run())
}

func readSysctls() map[string]string {
	out := map[string]string{}
	for _, s := range watchedSysctls {
		b, err := os.ReadFile("/proc/sys/" + s)
		if err == nil {
			out[s] = strings.TrimSpace(string(b))
		}
	}
	return out
}

func client(t *testing.T) *kubernetes.Clientset {
	t.Helper()
	cfg, err := theLab.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	// Short per-request timeouts: a request stuck on a frozen API server
	// must fail and be retried, not hang the test.
	cfg.Timeout = 5 * time.Second
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stopMode is how the drills stop a node: lab.Freeze (the honest power
// loss) unless TSYS_CI_E2E_STOP_MODE=kill asks for docker kill, to compare.
func stopMode() lab.StopMode {
	if os.Getenv("TSYS_CI_E2E_STOP_MODE") == string(lab.Kill) {
		return lab.Kill
	}
	return lab.Freeze
}

// stopNode stops a node and makes sure it is back (and Ready) when the test
// ends, whatever happens in between.
func stopNode(t *testing.T, name string, mode lab.StopMode) {
	t.Helper()
	ctx := context.Background()
	if err := theLab.StopNode(ctx, name, mode); err != nil {
		t.Fatalf("stopping %s (%s): %v", name, mode, err)
	}
	t.Cleanup(func() {
		start := time.Now()
		if err := theLab.StartNode(ctx, name); err != nil {
			t.Errorf("starting %s again: %v", name, err)
			return
		}
		if err := theLab.WaitNodesReadySince(ctx, start, 3*time.Minute, name); err != nil {
			t.Errorf("%s did not come back: %v", name, err)
			return
		}
		t.Logf("%s Ready again %s after it was started", name, time.Since(start).Round(100*time.Millisecond))
	})
}

// freshNamespace waits for an earlier run's namespace name to be gone
// (deleting it if it is still there), then makes it again; it is deleted
// when the test ends. Tests that keep fixed names (their places on the
// promote pool stay the same from run to run) start from it.
func freshNamespace(ctx context.Context, t *testing.T, c kubernetes.Interface, name string) {
	t.Helper()
	for {
		_, err := c.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if err == nil {
			err = c.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
		}
		select {
		case <-ctx.Done():
			t.Fatalf("namespace %s of an earlier run is still there (last error: %v)", name, err)
		case <-time.After(time.Second):
		}
	}
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := c.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", name, err)
		}
	})
}
