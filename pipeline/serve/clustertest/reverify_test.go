package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/apiserver"
)

// Issue 17 finding 8: a resume and a rollback deploy images read from the
// rollout state ConfigMap, which more than serve can write; serve's image
// policy checks them again, and a refused one is not deployed.
func TestResumeAndRollbackVerifyRecordedImages(t *testing.T) {
	c := apiserver.Client(t)
	ctx := context.Background()
	good := "reg.example/e2e/hello@sha256:" + strings.Repeat("a0", 32)
	planted := "reg.example/e2e/hello@sha256:" + strings.Repeat("bd", 32)
	var checked []string
	d := &serve.PromoterDeployer{Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Verify: func(_ context.Context, image string) (string, error) {
			checked = append(checked, image)
			if image == planted {
				return "", errors.New("no signature verifies with the key")
			}
			return image, nil
		},
		ResumeWait: 10 * time.Second,
		Promoter:   rollout.Promoter{Client: c, Clock: rollout.RealClock{}, Holder: "serve/reverify", LeaseDuration: 2 * time.Second}}
	for _, tc := range []struct {
		name  string
		kind  string
		state rollout.State
	}{
		{"resume", serve.DeployResume, rollout.State{Phase: rollout.PhaseDeploying, Strategy: rollout.StrategyBlueGreen,
			Active:    &rollout.Release{Color: rollout.ColorBlue, Image: good},
			Candidate: &rollout.Release{Color: rollout.ColorGreen, Image: planted}}},
		{"rollback", serve.DeployRollback, rollout.State{Phase: rollout.PhaseStable, Strategy: rollout.StrategyBlueGreen,
			Active:   &rollout.Release{Color: rollout.ColorBlue, Image: good},
			Previous: &rollout.Release{Color: rollout.ColorGreen, Image: planted}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := "reverify-" + tc.name
			namespace(t, c, ns)
			tc.state.App = "hello"
			b, _ := json.Marshal(tc.state)
			if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: rollout.StateName("hello")},
				Data: map[string]string{"state.json": string(b)}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			spec := filepath.Join(t.TempDir(), "hello.yaml")
			writeFile(t, spec, "name: hello\nnamespace: "+ns+"\nreplicas: 1\nports: [{name: http, containerPort: 8080}]\n")
			checked = nil
			err := d.Deploy(ctx, serve.DeployRequest{ID: "1", Kind: tc.kind, Policy: "hello", App: "hello", Namespace: ns, Spec: spec})
			if err == nil || !strings.Contains(err.Error(), planted) || !strings.Contains(err.Error(), "fails the image check") {
				t.Fatalf("%s of a planted image: %v, want it refused naming the image", tc.name, err)
			}
			if len(checked) != 1 || checked[0] != planted {
				t.Fatalf("images checked %v, want the planted one", checked)
			}
			if _, err := c.AppsV1().Deployments(ns).Get(ctx, rollout.DeploymentName("hello", rollout.ColorGreen), metav1.GetOptions{}); err == nil {
				t.Fatal("the planted image's Deployment was made")
			}
			st, err := rollout.Status(ctx, c, ns, "hello")
			if err != nil || st.Phase != tc.state.Phase || st.Active.Image != good {
				t.Fatalf("state after the refusal: %+v %v", st, err)
			}
		})
	}
}
