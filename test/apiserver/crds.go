package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/tsys-group/tsys-ci/test/testenv"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRDs applies the CustomResourceDefinitions in the YAML files
// (several documents each; a project's published CRD files, vendored into
// testdata) to the server Main started, and waits until each is
// established and served, so a test can use its kind at once. Applying
// again is harmless: tests of one binary share the server.
func InstallCRDs(t testing.TB, paths ...string) {
	t.Helper()
	if current == nil {
		t.Fatal("apiserver.InstallCRDs: no server; start one with apiserver.Main(m, &cfg) in TestMain")
	}
	dyn, err := dynamic.NewForConfig(current)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(current)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	force := true
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("reading CRDs: %v", err)
		}
		for _, doc := range bytes.Split(data, []byte("\n---")) {
			var obj map[string]any
			if err := yaml.Unmarshal(doc, &obj); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if obj == nil {
				continue
			}
			u := &unstructured.Unstructured{Object: obj}
			body, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dyn.Resource(crdResource).Patch(ctx, u.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "apiserver-test", Force: &force}); err != nil {
				t.Fatalf("applying CRD %s from %s: %v", u.GetName(), path, err)
			}
			group, _, _ := unstructured.NestedString(obj, "spec", "group")
			plural, _, _ := unstructured.NestedString(obj, "spec", "names", "plural")
			versions, _, _ := unstructured.NestedSlice(obj, "spec", "versions")
			for _, v := range versions {
				name, _, _ := unstructured.NestedString(v.(map[string]any), "name")
				testenv.Eventually(t, "the API server serving "+plural+"."+group+"/"+name, 30*time.Second, func() bool {
					return served(dc, group+"/"+name, plural)
				})
			}
		}
	}
}

func served(dc discovery.DiscoveryInterface, groupVersion, plural string) bool {
	l, err := dc.ServerResourcesForGroupVersion(groupVersion)
	if err != nil {
		return false
	}
	for _, r := range l.APIResources {
		if r.Name == plural {
			return true
		}
	}
	return false
}
