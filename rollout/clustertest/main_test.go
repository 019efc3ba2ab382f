// Package clustertest tests rollout against a real etcd and kube-apiserver
// (test/apiserver): server-side apply of rendered objects, the promote
// Lease and the load-balancer allocation under races, and the promote state
// machine. No controller-manager or kubelet runs there, so a stand-in
// (standin_test.go) plays both for the promote tests: it makes the pods a
// Deployment asks for and marks them ready or crash-looping. Real pods and
// traffic are the lab's end-to-end tests.
package clustertest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tsys-group/tsys-ci/test/apiserver"
)

var cfg *rest.Config

func TestMain(m *testing.M) {
	os.Exit(apiserver.RunTests(m, func(s *apiserver.Server) { cfg = s.Config }))
}

var nsCounter atomic.Int64

// newNamespace gives a test a fresh namespace and a client.
func newNamespace(t *testing.T) (kubernetes.Interface, string) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("%s-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), nsCounter.Add(1))
	if len(name) > 60 {
		name = name[len(name)-60:]
		name = strings.TrimLeft(name, "-")
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return cs, name
}
