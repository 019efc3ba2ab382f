// Package clustertest runs the edge against a real kube-apiserver and etcd
// (test/apiserver): listing for render, and the informer behind
// `edge sync --watch`. It is its own test binary so the edge's fast unit and
// HAProxy tests do not wait for an API server to start.
package clustertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/platform/edge"
	"github.com/tsys-group/tsys-ci/test/apiserver"
)

func TestMain(m *testing.M) { apiserver.Main(m, nil) }

// createApp writes a Service as promote does and gives it the address
// MetalLB would (status.loadBalancer.ingress).
func createApp(t *testing.T, c kubernetes.Interface, ns, name, annotation, ip string, port int32) *corev1.Service {
	t.Helper()
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels:      map[string]string{contract.LabelManagedBy: contract.ManagedBy, contract.LabelAppName: name},
			Annotations: map[string]string{contract.AnnotationEdge: annotation}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: port, Protocol: corev1.ProtocolTCP}}},
	}
	svc, err := c.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return setIP(t, c, svc, ip)
}

func setIP(t testing.TB, c kubernetes.Interface, svc *corev1.Service, ip string) *corev1.Service {
	t.Helper()
	svc = svc.DeepCopy()
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	svc, err := c.CoreV1().Services(svc.Namespace).UpdateStatus(context.Background(), svc, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestRenderFromTheAPIServer(t *testing.T) {
	c := apiserver.Client(t)
	ns := apiserver.Namespace(t, c, "edge-render")
	createApp(t, c, ns, "shop", `[{"port":"http","hosts":["shop.company.example"]}]`, "10.0.0.30", 8080)
	// Not managed by tsys-ci: the label selector leaves it out.
	other := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other",
		Annotations: map[string]string{contract.AnnotationEdge: `[{"port":"http","hosts":["shop.company.example"]}]`}},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	if _, err := c.CoreV1().Services(ns).Create(context.Background(), other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	m, files, err := edge.RenderCluster(context.Background(), c, ns, edge.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Backends) != 1 || m.Backends[0].Name != "tsys-ci."+ns+".shop.http" || m.Backends[0].Servers[0].Addr.String() != "10.0.0.30" {
		t.Fatalf("model from the API server: %+v", m)
	}
	if want := "shop.company.example tsys-ci." + ns + ".shop.http\n"; !contains(files.HostMap, want) {
		t.Fatalf("host map %q lacks %q", files.HostMap, want)
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// TestWatchFollowsTheCluster runs the Watcher against the API server and
// checks each cluster change reaches Sync as a Model.
func TestWatchFollowsTheCluster(t *testing.T) {
	c := apiserver.Client(t)
	ns := apiserver.Namespace(t, c, "edge-watch")
	models := make(chan *edge.Model, 100)
	w := &edge.Watcher{Client: c, Namespace: ns, Options: edge.DefaultOptions(), Debounce: 50 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Sync: func(_ context.Context, m *edge.Model) (edge.Result, error) {
			models <- m
			return edge.Result{Action: edge.ActionReload}, nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watcher.Run: %v", err)
		}
	}()

	waitModel(t, models, "the sync at start, with no apps", func(m *edge.Model) error {
		return want(len(m.Backends) == 0, "backends %v", m.Backends)
	})
	svc := createApp(t, c, ns, "shop", `[{"port":"http","hosts":["shop.company.example"]}]`, "10.0.0.31", 8080)
	waitModel(t, models, "the new app", func(m *edge.Model) error {
		return want(len(m.Backends) == 1 && len(m.Backends[0].Servers) == 1 && m.Backends[0].Servers[0].Addr.String() == "10.0.0.31", "backends %+v", m.Backends)
	})
	setIP(t, c, svc, "10.0.0.32")
	waitModel(t, models, "the new address", func(m *edge.Model) error {
		return want(len(m.Backends) == 1 && len(m.Backends[0].Servers) == 1 && m.Backends[0].Servers[0].Addr.String() == "10.0.0.32", "backends %+v", m.Backends)
	})
	if err := c.CoreV1().Services(ns).Delete(context.Background(), "shop", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitModel(t, models, "the app gone", func(m *edge.Model) error {
		return want(len(m.Backends) == 0, "backends %+v", m.Backends)
	})
}

func want(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}

// waitModel reads synced Models until one satisfies cond.
func waitModel(t *testing.T, models <-chan *edge.Model, what string, cond func(*edge.Model) error) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	var last error
	for {
		select {
		case m := <-models:
			if last = cond(m); last == nil {
				return
			}
		case <-deadline:
			t.Fatalf("no sync with %s: last %v", what, last)
		}
	}
}
