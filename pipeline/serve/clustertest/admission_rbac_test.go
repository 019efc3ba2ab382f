package clustertest

import (
	"context"
	"strings"
	"testing"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/registry"
	"github.com/tsys-group/tsys-ci/test/apiserver"
)

// TestChartAdmissionRBAC: with admission.enabled the chart lets serve's
// ServiceAccount share verified digests in its one ConfigMap, and no
// other ConfigMap of its namespace; without admission it gets nothing of
// the kind (TestChartRBACIsEnoughAndNoMore).
func TestChartAdmissionRBAC(t *testing.T) {
	admin := apiserver.Client(t)
	ctx := context.Background()
	ns := apiserver.Namespace(t, admin, "serve-adm")
	c := applyChartRights(t, admin, "tsys-ci", ns, "webhookSecrets: {demo: 'Bearer 0123456789abcdef0123'}\nconfig: {registry: harbor.company.example}\n"+
		"tls: {secretName: serve-tls}\nverifyKey: x\nappNamespaces: [shop]\nadmission: {enabled: true, caBundle: x}\n", "admission.yaml")
	shared := &serve.KubeVerifiedDigests{Client: c, Namespace: ns, Name: serve.DefaultVerifiedDigestsName}
	ref := "harbor.company.example/demo/shop@sha256:" + strings.Repeat("ab", 32)
	for i := 0; i < 2; i++ { // create, then patch
		if err := shared.Add(ctx, ref, registry.SignatureProof{Payload: []byte("{}"), Signature: []byte("sig")}); err != nil {
			t.Fatalf("sharing a digest as the ServiceAccount (round %d): %v", i, err)
		}
	}
	if _, ok, err := shared.Get(ctx, ref); err != nil || !ok {
		t.Fatalf("reading it back as the ServiceAccount: %v, %v", ok, err)
	}
	checkAccess(t, c, []access{
		{"get", "", "configmaps", "", ns, serve.DefaultVerifiedDigestsName, true},
		{"patch", "", "configmaps", "", ns, serve.DefaultVerifiedDigestsName, true},
		{"get", "", "configmaps", "", ns, "another-configmap", false},
		{"patch", "", "configmaps", "", ns, "another-configmap", false},
		{"delete", "", "configmaps", "", ns, serve.DefaultVerifiedDigestsName, false},
	})
}
