package clustertest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tsys-group/tsys-ci/test/testenv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/rollout"
)

// hostAddress is an address of this machine the API server may proxy to
// (it refuses loopback).
func hostAddress(t *testing.T) net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP
		}
	}
	testenv.Missing(t, "no non-loopback IPv4 address on this machine to put behind a Service")
	return nil
}

// TestProbeThroughServiceProxy runs a probe the way promote does from a
// laptop: through the API server's service proxy, to a Service whose
// endpoint is an HTTP server on this machine.
func TestProbeThroughServiceProxy(t *testing.T) {
	cs, ns := newNamespace(t)
	ip := hostAddress(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	var gotHost atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		gotHost.Store(r.Host)
		fmt.Fprint(w, "<title>Shop</title> ok")
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	port := int32(ln.Addr().(*net.TCPAddr).Port)

	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-preview", Namespace: ns},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}},
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// No kubelet or endpoints controller runs here, so the test writes
	// what they would: a pod whose IP is this machine's (the service proxy
	// only goes to addresses that are pods) and the Service's Endpoints
	// (which the proxy resolves through).
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-green-1", Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "reg/shop@sha256:v1"}}},
	}
	created, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip.String(), PodIPs: []corev1.PodIP{{IP: ip.String()}}}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 the service proxy of kube-apiserver 1.34 still reads Endpoints
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-preview", Namespace: ns},
		//lint:ignore SA1019 as above
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: ip.String(), TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod.Name}}},
			Ports:     []corev1.EndpointPort{{Name: "http", Port: port}},
		}},
	}
	if _, err := cs.CoreV1().Endpoints(ns).Create(ctx, ep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	target, err := rollout.ServiceProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base, client := target(ns, "shop-preview", "http")
	probe := rollout.HTTPProbe{Name: "health", Port: "http", Path: "/healthz", Host: "shop.company.example", ExpectStatus: 200, BodyMatch: "Shop", Successes: 2,
		Interval: rollout.Duration{Duration: 10 * time.Millisecond}, Timeout: rollout.Duration{Duration: 10 * time.Second}, MaxLatency: rollout.Duration{Duration: 2 * time.Second}}
	res := rollout.RunHTTPProbe(ctx, client, rollout.RealClock{}, base, probe)
	if !res.Passed {
		t.Fatalf("probe through the service proxy: %+v", res)
	}
	if got := gotHost.Load(); got != "shop.company.example" {
		t.Errorf("the app saw Host %v through the proxy, want the probe's shop.company.example", got)
	}
	probe.Path = "/missing"
	probe.Timeout = rollout.Duration{Duration: 50 * time.Millisecond}
	if res := rollout.RunHTTPProbe(ctx, client, rollout.RealClock{}, base, probe); res.Passed {
		t.Fatalf("a 404 through the proxy passed: %+v", res)
	}
}
