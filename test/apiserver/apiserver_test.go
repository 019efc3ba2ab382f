package apiserver_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/tsys-group/tsys-ci/test/apiserver"
)

func TestMain(m *testing.M) { apiserver.Main(m, nil) }

// The server reports a version clients can parse (kubectl and client-go's
// discovery refuse "v0.0.0-master+$Format:%H$").
func TestServerVersionParses(t *testing.T) {
	info, err := apiserver.Client(t).Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	v, err := version.ParseSemantic(info.GitVersion)
	if err != nil {
		t.Fatalf("server version %q does not parse: %v", info.GitVersion, err)
	}
	if v.Major() != 1 || v.Minor() != 34 || info.Major != "1" || info.Minor != "34" {
		t.Fatalf("server version %+v, want 1.34.x", info)
	}
}

// Server-side apply works as on a real cluster: the object is created and
// updated by its field manager, and a second manager changing an owned field
// without force gets a conflict, which a fake clientset would not produce.
func TestConfigMapServerSideApply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := apiserver.Client(t)
	ns := "ssa-test"
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	apply := func(manager, value string, force bool) (*corev1.ConfigMap, error) {
		cm := corev1ac.ConfigMap("settings", ns).WithData(map[string]string{"color": value})
		return c.CoreV1().ConfigMaps(ns).Apply(ctx, cm, metav1.ApplyOptions{FieldManager: manager, Force: force})
	}
	got, err := apply("tsys-ci", "blue", false)
	if err != nil {
		t.Fatalf("first apply: %v", err)
	}
	if got.Data["color"] != "blue" || got.UID == "" {
		t.Fatalf("applied ConfigMap = %+v", got)
	}
	if _, err := apply("someone-else", "red", false); !apierrors.IsConflict(err) {
		t.Fatalf("apply by another manager without force: err = %v, want a conflict", err)
	}
	if _, err := apply("someone-else", "red", true); err != nil {
		t.Fatalf("forced apply: %v", err)
	}
	read, err := c.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if read.Data["color"] != "red" {
		t.Fatalf("after the forced apply color = %q, want red", read.Data["color"])
	}
	owners := map[string]bool{}
	for _, f := range read.ManagedFields {
		owners[f.Manager] = true
	}
	if !owners["someone-else"] {
		t.Fatalf("managed fields %v do not name someone-else", owners)
	}
}
