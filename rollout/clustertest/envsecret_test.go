package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tsys-group/tsys-ci/rollout"
)

// secretValue is the value every test here greps the outputs for.
const secretValue = "s3cr3t-VALUE-xyz"

// newEnvApp is an app whose pods get DB_PASSWORD and API_TOKEN from
// promote's environment.
func newEnvApp(t *testing.T, mod func(*rollout.AppSpec)) *app {
	return newApp(t, func(s *rollout.AppSpec) {
		s.Env = append(s.Env,
			rollout.EnvVar{Name: "DB_PASSWORD_ENV", FromEnv: "SHOP_DB_PASSWORD"},
			rollout.EnvVar{Name: "API_TOKEN", FromEnv: "SHOP_API_TOKEN"})
		if mod != nil {
			mod(s)
		}
	})
}

// promoteEnv promotes image with env as promote's environment.
func (a *app) promoteEnv(image string, env map[string]string) (*rollout.Result, error) {
	p := a.promoter("test")
	p.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return p.Promote(context.Background(), rollout.Request{Spec: a.spec, Image: image})
}

func (a *app) mustPromoteEnv(image string, env map[string]string) *rollout.Result {
	a.t.Helper()
	res, err := a.promoteEnv(image, env)
	if err != nil {
		a.t.Fatalf("promote %s: %v\n%s", image, err, a.out)
	}
	return res
}

// envSecretOf is the Secret the color's pod template reads API_TOKEN
// from.
func (a *app) envSecretOf(color string) string {
	a.t.Helper()
	d, err := a.cs.AppsV1().Deployments(a.ns).Get(context.Background(), rollout.DeploymentName(a.spec.Name, color), metav1.GetOptions{})
	if err != nil {
		a.t.Fatal(err)
	}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "API_TOKEN" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			return e.ValueFrom.SecretKeyRef.Name
		}
	}
	a.t.Fatalf("%s's template does not read API_TOKEN from a Secret", color)
	return ""
}

// podsSecret waits until the color's pods (the stand-in's) all read their
// env from secret, and returns how many there are.
func (a *app) podsSecret(color, secret string) {
	a.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pods, err := a.cs.CoreV1().Pods(a.ns).List(context.Background(), metav1.ListOptions{LabelSelector: rollout.LabelColor + "=" + color})
		if err != nil {
			a.t.Fatal(err)
		}
		var seen []string
		for _, p := range pods.Items {
			for _, e := range p.Spec.Containers[0].Env {
				if e.Name == "API_TOKEN" {
					seen = append(seen, e.ValueFrom.SecretKeyRef.Name)
				}
			}
		}
		if len(seen) > 0 && !slices.ContainsFunc(seen, func(s string) bool { return s != secret }) {
			return
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("pods of %s read their env from %v, want all from %s", color, seen, secret)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (a *app) secret(name string) *corev1.Secret {
	a.t.Helper()
	s, err := a.cs.CoreV1().Secrets(a.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		a.t.Fatalf("Secret %s: %v", name, err)
	}
	return s
}

// TestEnvSecretsTravelWithTheRelease: the first promote writes the
// environment's values into an immutable Secret named by their hash and
// records its name; a promote that changes one value makes a new Secret
// that the new pods read; a manual and an automatic rollback bring the
// old release's Secret back with its image; the value shows up in none of
// the outputs.
func TestEnvSecretsTravelWithTheRelease(t *testing.T) {
	a := newEnvApp(t, nil)
	env := map[string]string{"SHOP_DB_PASSWORD": secretValue, "SHOP_API_TOKEN": "token-1"}
	res := a.mustPromoteEnv("reg/shop@sha256:v1", env)
	s1 := a.state().Active.Secret
	if !strings.HasPrefix(s1, "shop-env-") || len(s1) != len("shop-env-")+10 || res.Secret != s1 {
		t.Fatalf("first promote recorded Secret %q, result %q", s1, res.Secret)
	}
	sec := a.secret(s1)
	owner := sec.OwnerReferences
	if sec.Immutable == nil || !*sec.Immutable || string(sec.Data["DB_PASSWORD_ENV"]) != secretValue || string(sec.Data["API_TOKEN"]) != "token-1" ||
		sec.Labels[rollout.LabelEnvSecret] != "true" || len(owner) != 1 || owner[0].Kind != "ConfigMap" || owner[0].Name != rollout.StateName("shop") {
		t.Fatalf("Secret %s: immutable %v, labels %v, owners %+v, keys %v", s1, sec.Immutable, sec.Labels, owner, slices.Sorted(maps.Keys(sec.Data)))
	}
	if got := a.envSecretOf(rollout.ColorBlue); got != s1 {
		t.Fatalf("blue reads %s, want %s", got, s1)
	}
	a.podsSecret(rollout.ColorBlue, s1)

	// The same image and values again: nothing to do.
	if res := a.mustPromoteEnv("reg/shop@sha256:v1", env); res.Result != "unchanged" {
		t.Fatalf("re-run with the same values: %+v", res)
	}
	// One value changed, same image: a new release on green with a new Secret.
	env["SHOP_API_TOKEN"] = "token-2"
	if res := a.mustPromoteEnv("reg/shop@sha256:v1", env); res.Result != rollout.ResultPromoted {
		t.Fatalf("promote of changed values: %+v\n%s", res, a.out)
	}
	s := a.state()
	s2 := s.Active.Secret
	if s2 == s1 || s.Active.Color != rollout.ColorGreen || s.Previous.Secret != s1 || a.serviceColor() != rollout.ColorGreen {
		t.Fatalf("after the changed value: active %+v, previous %+v, service on %s", s.Active, s.Previous, a.serviceColor())
	}
	if string(a.secret(s2).Data["API_TOKEN"]) != "token-2" || string(a.secret(s1).Data["API_TOKEN"]) != "token-1" {
		t.Fatal("the Secrets do not hold their releases' values")
	}
	if got := a.envSecretOf(rollout.ColorGreen); got != s2 {
		t.Fatalf("green reads %s, want %s", got, s2)
	}
	a.podsSecret(rollout.ColorGreen, s2)
	if got := a.envSecretOf(rollout.ColorBlue); got != s1 {
		t.Fatalf("blue (kept at zero) reads %s, want %s", got, s1)
	}

	// Manual rollback: blue's pods come back reading the first Secret.
	if _, err := a.promoter("test").Rollback(context.Background(), a.spec); err != nil {
		t.Fatalf("rollback: %v\n%s", err, a.out)
	}
	if s := a.state(); s.Active.Secret != s1 || s.Previous.Secret != s2 || a.serviceColor() != rollout.ColorBlue {
		t.Fatalf("after the rollback: active %+v, previous %+v", s.Active, s.Previous)
	}
	a.podsSecret(rollout.ColorBlue, s1)

	// A version that fails its probes with new values is rolled back on
	// its own; the serving release keeps its Secret, the failed one's is
	// kept while the history names it.
	env["SHOP_API_TOKEN"] = "token-3"
	_, err := a.promoteEnv("reg/shop@sha256:bad3", env)
	var failed *rollout.ProbeFailedError
	if !errors.As(err, &failed) {
		t.Fatalf("want a probe failure, got %v\n%s", err, a.out)
	}
	s = a.state()
	last := s.History[len(s.History)-1]
	if s.Active.Secret != s1 || a.serviceColor() != rollout.ColorBlue || last.Result != rollout.ResultRolledBack || last.Secret == "" || last.Secret == s1 || last.Secret == s2 {
		t.Fatalf("after the automatic rollback: active %+v, last %+v", s.Active, last)
	}
	a.podsSecret(rollout.ColorBlue, s1)
	a.secret(last.Secret)

	noValueAnywhere(t, a, res)

	// delete takes the releases' Secrets with the app.
	if _, err := a.promoter("test").Delete(context.Background(), a.ns, "shop", rollout.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	left, err := a.cs.CoreV1().Secrets(a.ns).List(context.Background(), metav1.ListOptions{LabelSelector: rollout.LabelEnvSecret + "=true"})
	if err != nil || len(left.Items) != 0 {
		t.Fatalf("%d env Secrets left after delete (%v)", len(left.Items), err)
	}
}

// TestEnvSecretRollingRollback: with a strategy that replaces pods in
// place, an automatic rollback re-applies the previous release, whose
// pods read its own Secret again.
func TestEnvSecretRollingRollback(t *testing.T) {
	a := newEnvApp(t, func(s *rollout.AppSpec) { s.Strategy.Type = rollout.StrategyRolling })
	env := map[string]string{"SHOP_DB_PASSWORD": secretValue, "SHOP_API_TOKEN": "token-1"}
	a.mustPromoteEnv("reg/shop@sha256:v1", env)
	s1 := a.state().Active.Secret
	env["SHOP_API_TOKEN"] = "token-2"
	_, err := a.promoteEnv("reg/shop@sha256:crash2", env)
	var failed *rollout.ProbeFailedError
	if !errors.As(err, &failed) {
		t.Fatalf("want a crash-loop failure, got %v\n%s", err, a.out)
	}
	if s := a.state(); s.Active.Secret != s1 || s.Active.Color != rollout.ColorBlue {
		t.Fatalf("after the rollback: active %+v", s.Active)
	}
	if got := a.envSecretOf(rollout.ColorBlue); got != s1 {
		t.Fatalf("blue reads %s after the rollback, want %s", got, s1)
	}
	a.podsSecret(rollout.ColorBlue, s1)
	noValueAnywhere(t, a, nil)
}

// objectVersions is every object's resourceVersion in the namespace, by
// kind and name, and the number of Events.
func objectVersions(t *testing.T, a *app) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	add := func(kind, name, rv string) { out[kind+"/"+name] = rv }
	cms, err := a.cs.CoreV1().ConfigMaps(a.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range cms.Items {
		add("ConfigMap", o.Name, o.ResourceVersion)
	}
	secrets, err := a.cs.CoreV1().Secrets(a.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range secrets.Items {
		add("Secret", o.Name, o.ResourceVersion)
	}
	deps, err := a.cs.AppsV1().Deployments(a.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range deps.Items {
		add("Deployment", o.Name, o.ResourceVersion)
	}
	svcs, err := a.cs.CoreV1().Services(a.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range svcs.Items {
		add("Service", o.Name, o.ResourceVersion)
	}
	leases, err := a.cs.CoordinationV1().Leases(a.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range leases.Items {
		add("Lease", o.Name, o.ResourceVersion)
	}
	evs, err := a.cs.CoreV1().Events(a.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out["Events"] = fmt.Sprint(len(evs.Items))
	return out
}

// TestMissingEnvChangesNothing: a variable the spec reads that promote's
// environment lacks fails the promote before anything is written, on a
// first promote and on a later one, naming the variable and no value.
func TestMissingEnvChangesNothing(t *testing.T) {
	a := newEnvApp(t, nil)
	a.promoter("setup") // the test's load-balancer pool, made once
	before := objectVersions(t, a)
	_, err := a.promoteEnv("reg/shop@sha256:v1", map[string]string{"SHOP_DB_PASSWORD": secretValue})
	var missing *rollout.MissingEnvError
	if !errors.As(err, &missing) || !strings.Contains(err.Error(), "SHOP_API_TOKEN") || strings.Contains(err.Error(), secretValue) {
		t.Fatalf("first promote without SHOP_API_TOKEN: %v", err)
	}
	if after := objectVersions(t, a); !maps.Equal(before, after) {
		t.Fatalf("the refused first promote changed the namespace:\nbefore %v\nafter  %v", before, after)
	}
	if a.state() != nil {
		t.Fatal("the refused first promote wrote a rollout state")
	}

	env := map[string]string{"SHOP_DB_PASSWORD": secretValue, "SHOP_API_TOKEN": "token-1"}
	a.mustPromoteEnv("reg/shop@sha256:v1", env)
	before = objectVersions(t, a)
	_, err = a.promoteEnv("reg/shop@sha256:v2", map[string]string{"SHOP_API_TOKEN": "token-1", "SHOP_DB_PASSWORD": ""})
	if !errors.As(err, &missing) || !strings.Contains(err.Error(), "SHOP_DB_PASSWORD (env[") {
		t.Fatalf("promote with SHOP_DB_PASSWORD empty: %v", err)
	}
	if after := objectVersions(t, a); !maps.Equal(before, after) {
		t.Fatalf("the refused promote changed the namespace:\nbefore %v\nafter  %v", before, after)
	}
}

// TestEnvSecretDeletedWithItsHistory: a Secret no release in the state
// names any more is deleted once the history entry naming it is dropped
// (the history keeps 20 entries); the Secrets the state still names stay.
func TestEnvSecretDeletedWithItsHistory(t *testing.T) {
	a := newEnvApp(t, nil)
	ctx := context.Background()
	// A state whose oldest of 20 entries names a Secret, as if that
	// release had been promoted 20 promotes ago.
	old := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shop-env-0000000000", Namespace: a.ns,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "tsys-ci", "app.kubernetes.io/name": "shop", rollout.LabelEnvSecret: "true"}},
		Data: map[string][]byte{"API_TOKEN": []byte("token-0")}}
	if _, err := a.cs.CoreV1().Secrets(a.ns).Create(ctx, old, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	st := rollout.State{App: "shop", Phase: rollout.PhaseStable}
	for i := 0; i < 20; i++ {
		e := rollout.HistoryEntry{Release: rollout.Release{Color: rollout.ColorBlue, Image: fmt.Sprintf("reg/shop@sha256:old%d", i)}, Strategy: "blueGreen", Result: rollout.ResultRolledBack, At: time.Now().UTC()}
		if i == 0 {
			e.Secret = old.Name
		}
		st.History = append(st.History, e)
	}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.cs.CoreV1().ConfigMaps(a.ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: rollout.StateName("shop"), Namespace: a.ns},
		Data:       map[string]string{"state.json": string(data)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	a.mustPromoteEnv("reg/shop@sha256:v1", map[string]string{"SHOP_DB_PASSWORD": secretValue, "SHOP_API_TOKEN": "token-1"})
	s := a.state()
	if len(s.History) != 20 || s.History[0].Image != "reg/shop@sha256:old1" {
		t.Fatalf("history not trimmed to 20: %d entries, oldest %s", len(s.History), s.History[0].Image)
	}
	list, err := a.cs.CoreV1().Secrets(a.ns).List(ctx, metav1.ListOptions{LabelSelector: rollout.LabelEnvSecret + "=true"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sec := range list.Items {
		names = append(names, sec.Name)
	}
	if len(names) != 1 || names[0] != s.Active.Secret {
		t.Fatalf("env Secrets %v, want only the active release's %s", names, s.Active.Secret)
	}
	if !strings.Contains(a.out.String(), "deleted Secret shop-env-0000000000: no release in the history uses it") {
		t.Errorf("the deletion is not in the progress:\n%s", a.out)
	}
}

// noValueAnywhere greps what a promote leaves readable for the secret
// value: its progress, its result, the rollout state, the namespace's
// Events and the objects' annotations and labels.
func noValueAnywhere(t *testing.T, a *app, res *rollout.Result) {
	t.Helper()
	ctx := context.Background()
	check := func(what, text string) {
		if strings.Contains(text, secretValue) {
			t.Errorf("the secret value is in %s:\n%s", what, text)
		}
	}
	check("the promote's progress", a.out.String())
	if res != nil {
		b, _ := json.Marshal(res)
		check("the promote's result", string(b))
	}
	cm, err := a.cs.CoreV1().ConfigMaps(a.ns).Get(ctx, rollout.StateName(a.spec.Name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(cm)
	check("the rollout state ConfigMap", string(b))
	evs, err := a.cs.CoreV1().Events(a.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs.Items) == 0 {
		t.Error("no Events to check: the rolled-back version should have written one")
	}
	b, _ = json.Marshal(evs)
	check("the Events", string(b))
	deps, err := a.cs.AppsV1().Deployments(a.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(deps)
	check("the Deployments", string(b))
	pods, err := a.cs.CoreV1().Pods(a.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(pods)
	check("the pods", string(b))
	secrets, err := a.cs.CoreV1().Secrets(a.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		b, _ := json.Marshal(s.ObjectMeta)
		check("Secret "+s.Name+"'s metadata", string(b))
	}
}
