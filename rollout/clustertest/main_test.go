// Package clustertest tests rollout against a real etcd and kube-apiserver
// (test/apiserver): server-side apply of rendered objects, the promote
// Lease and the load-balancer allocation under races, and the promote state
// machine. No controller-manager or kubelet runs there, so a stand-in
// (standin_test.go) plays both for the promote tests: it makes the pods a
// Deployment asks for and marks them ready or crash-looping. Real pods and
// traffic are the lab's end-to-end tests.
package clustertest

import (
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tsys-group/tsys-ci/test/apiserver"
)

var cfg *rest.Config

func TestMain(m *testing.M) { apiserver.Main(m, &cfg) }

// newNamespace gives a test a fresh namespace and a client.
func newNamespace(t *testing.T) (kubernetes.Interface, string) {
	t.Helper()
	cs := apiserver.Client(t)
	return cs, apiserver.Namespace(t, cs, t.Name())
}
