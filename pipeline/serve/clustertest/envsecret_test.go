package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/apiserver"
	"github.com/tsys-group/tsys-ci/test/podstandin"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// TestServeDeploysFromEnvSecret: Harbor pushes deployed by serve, as its
// ServiceAccount with the chart's rights only, of an app whose spec reads
// fromEnv variables through the policy's envSecret (issue 28). The first
// push makes the release's env Secret with the values; a value changed in
// serve's Secret and a new push make a new Secret, which the new pods
// reference; a key removed refuses the next push before anything in the
// cluster changes; a policy without envSecret is refused naming the
// variable. The chart lets serve get the named Secret of its namespace
// and no other, and write Secrets only in the namespaces of policies with
// an envSecret. The values are in no log line, deploy record, Event or
// metric.
func TestServeDeploysFromEnvSecret(t *testing.T) {
	const password, token1, token2 = "pa55-ONE-never-shown", "tok-TWO-never-shown", "tok-THREE-never-shown"
	admin := apiserver.Client(t)
	ctx := context.Background()
	serveNS := apiserver.Namespace(t, admin, "env-serve")
	appNS := apiserver.Namespace(t, admin, "env-app")
	otherNS := apiserver.Namespace(t, admin, "env-other")
	poolNS := apiserver.Namespace(t, admin, "env-pool")

	values := fmt.Sprintf("webhookSecrets: {demo: 'Bearer 0123456789abcdef0123'}\ninsecurePlainHTTP: true\nallowUnsigned: true\n"+
		"appNamespaces: [%s, %s]\npoolNamespace: %s\nconfig:\n  registry: reg.example\n  policies:\n"+
		"  - {name: shop-main, repository: demo/shop, tags: 'main-*', app: shop, namespace: %s, spec: specs/shop.yaml, envSecret: shop-env}\n"+
		"  - {name: blog, repository: demo/blog, tags: '*', app: blog, namespace: %s, spec: specs/blog.yaml}\n",
		appNS, otherNS, poolNS, appNS, otherNS)
	sa := applyChartRights(t, admin, "envtest", serveNS, values, "rbac.yaml", "envsecrets.yaml")
	checkAccess(t, sa, []access{
		{"get", "", "secrets", "", serveNS, "shop-env", true},
		{"get", "", "secrets", "", serveNS, "envtest-serve-webhook", false},
		{"list", "", "secrets", "", serveNS, "", false},
		{"update", "", "secrets", "", serveNS, "shop-env", false},
		{"delete", "", "secrets", "", serveNS, "shop-env", false},
		{"create", "", "secrets", "", appNS, "", true},
		{"get", "", "secrets", "", appNS, "shop-env-0123456789", true},
		{"create", "", "secrets", "", otherNS, "", false},
		{"get", "", "secrets", "", otherNS, "db", false},
	})

	envSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shop-env", Namespace: serveNS},
		StringData: map[string]string{"SHOP_DB_PASSWORD": password, "SHOP_API_TOKEN": token1}}
	if _, err := admin.CoreV1().Secrets(serveNS).Create(ctx, envSecret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	podstandin.Start(t, admin, appNS)
	spec := filepath.Join(t.TempDir(), "shop.yaml")
	writeFile(t, spec, "name: shop\nnamespace: "+appNS+"\nreplicas: 2\nports: [{name: http, containerPort: 8080}]\n"+
		"env:\n  - {name: LOG_LEVEL, value: info}\n  - {name: DB_PASSWORD, fromEnv: SHOP_DB_PASSWORD}\n  - {name: API_TOKEN, fromEnv: SHOP_API_TOKEN}\n"+
		"strategy: {type: blueGreen, blueGreen: {scaleDownDelay: 1s}}\n")
	conf := &serve.Config{Registry: "reg.example", InsecurePlainHTTP: true, Policies: []serve.DeployPolicy{
		{Name: "shop-main", Repository: "demo/shop", Tags: "main-*", App: "shop", Namespace: appNS, Spec: spec, EnvSecret: "shop-env"},
		{Name: "shop-noenv", Repository: "demo/shop", Tags: "noenv-*", App: "shop", Namespace: appNS, Spec: spec},
	}}
	var logs testenv.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	d := &serve.PromoterDeployer{Log: log,
		Verify:     func(_ context.Context, image string) (string, error) { return image, nil },
		EnvSecrets: &serve.EnvSecrets{Client: sa, Namespace: serveNS},
		Promoter:   rollout.Promoter{Client: sa, Clock: rollout.RealClock{}, Holder: "serve/serve-env"}}
	le := &serve.LeaderElection{Client: sa, Namespace: serveNS, Name: "tsys-ci-serve", Identity: "serve-env",
		LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond}
	r := startServeOpts(t, le, serve.ServerOptions{Config: conf, Deployer: d, Log: log,
		Events: &serve.KubeEventSink{Client: sa, Instance: "serve-env"}}, 20*time.Second)
	testenv.Eventually(t, "serve to lead", 30*time.Second, func() bool { return r.leader(t) })

	push := func(tag, hex string) map[string]any {
		t.Helper()
		if code := deliver(t, r, "reg.example", "demo/shop", tag, strings.Repeat(hex, 64)); code != http.StatusAccepted {
			t.Fatalf("serve answered the push of %s with %d, want 202", tag, code)
		}
		var rec map[string]any
		testenv.Eventually(t, "the deploy of "+tag+" to end", 60*time.Second, func() bool {
			for _, d := range doneDeploys(t, r) {
				if d["tag"] == tag {
					rec = d
					return true
				}
			}
			return false
		})
		return rec
	}
	state := func() *rollout.State {
		t.Helper()
		s, err := rollout.Status(ctx, admin, appNS, "shop")
		if err != nil || s == nil {
			t.Fatalf("the state of shop: %v %v", s, err)
		}
		return s
	}
	image := func(hex string) string { return "reg.example/demo/shop@sha256:" + strings.Repeat(hex, 64) }

	// The first push: the release's Secret holds the values.
	if rec := push("main-1", "a"); rec["result"] != serve.ResultSucceeded {
		t.Fatalf("deploy of main-1: %v", rec)
	}
	s1 := state().Active.Secret
	sec, err := admin.CoreV1().Secrets(appNS).Get(ctx, s1, metav1.GetOptions{})
	if err != nil || !strings.HasPrefix(s1, "shop-env-") || string(sec.Data["DB_PASSWORD"]) != password || string(sec.Data["API_TOKEN"]) != token1 {
		t.Fatalf("the release's Secret %q: %v", s1, err)
	}

	// A value changed in serve's Secret: the next push makes a new Secret,
	// and the new version's pods read theirs.
	envSecret, err = admin.CoreV1().Secrets(serveNS).Get(ctx, "shop-env", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	envSecret.Data["SHOP_API_TOKEN"] = []byte(token2)
	if envSecret, err = admin.CoreV1().Secrets(serveNS).Update(ctx, envSecret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if rec := push("main-2", "b"); rec["result"] != serve.ResultSucceeded {
		t.Fatalf("deploy of main-2: %v", rec)
	}
	st := state()
	s2 := st.Active.Secret
	if s2 == s1 || st.Active.Image != image("b") || st.Previous.Secret != s1 {
		t.Fatalf("after main-2: active %+v, previous %+v; want a new Secret (v1's %s)", st.Active, st.Previous, s1)
	}
	if sec, err := admin.CoreV1().Secrets(appNS).Get(ctx, s2, metav1.GetOptions{}); err != nil || string(sec.Data["API_TOKEN"]) != token2 || string(sec.Data["DB_PASSWORD"]) != password {
		t.Fatalf("the new release's Secret %s: %v", s2, err)
	}
	pods := activePods(t, admin, appNS, "shop", st.Active.Color)
	if len(pods) != 2 {
		t.Fatalf("%d pods of %s, want 2", len(pods), st.Active.Color)
	}
	for _, p := range pods {
		if refs := secretRefs(p); !slices.Equal(refs, []string{s2 + "/API_TOKEN", s2 + "/DB_PASSWORD"}) {
			t.Errorf("pod %s reads %v, want the new Secret %s", p.Name, refs, s2)
		}
	}

	// A key gone from serve's Secret: refused, naming the Secret, its
	// namespace and the key, with nothing in the cluster changed.
	delete(envSecret.Data, "SHOP_DB_PASSWORD")
	if _, err := admin.CoreV1().Secrets(serveNS).Update(ctx, envSecret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := settledVersions(t, admin, appNS)
	rec := push("main-3", "c")
	msg, _ := rec["error"].(string)
	for _, w := range []string{"SHOP_DB_PASSWORD (env[1] DB_PASSWORD)", "Secret shop-env in serve's namespace " + serveNS, "kubectl -n " + serveNS, "nothing was changed"} {
		if rec["result"] != serve.ResultFailed || !strings.Contains(msg, w) {
			t.Errorf("deploy of main-3 with a key missing: %s %q, want failed saying %q", rec["result"], msg, w)
		}
	}
	if after := settledVersions(t, admin, appNS); !maps.Equal(before, after) {
		t.Errorf("the refused deploy changed the app's namespace:\nbefore %v\nafter  %v", before, after)
	}

	// A policy without envSecret: refused, naming the variables.
	rec = push("noenv-1", "d")
	msg, _ = rec["error"].(string)
	if rec["result"] != serve.ResultFailed || !strings.Contains(msg, "policy shop-noenv") || !strings.Contains(msg, "SHOP_API_TOKEN (env[2] API_TOKEN)") ||
		!strings.Contains(msg, "add `envSecret: NAME` to the policy") {
		t.Errorf("deploy by a policy without envSecret: %s %q", rec["result"], msg)
	}
	if st := state(); st.Active.Secret != s2 {
		t.Errorf("after the refusals the state names %s, want %s", st.Active.Secret, s2)
	}

	// No value anywhere serve writes: its log, the deploy records, the
	// Events, the metrics.
	outputs := map[string]string{"serve's log": logs.String()}
	for name, path := range map[string]string{"the deploy records": "/api/v1/deploys", "the metrics": "/metrics"} {
		resp, err := getAPI(r, path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		outputs[name] = string(b)
	}
	for _, ns := range []string{appNS, serveNS} {
		evs, err := admin.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(evs)
		outputs["the Events of "+ns] = string(b)
	}
	if !strings.Contains(outputs["serve's log"], "promote progress") || !strings.Contains(outputs["the Events of "+appNS], "main-3") {
		t.Fatalf("nothing captured to search: log %d bytes, Events %d bytes", len(outputs["serve's log"]), len(outputs["the Events of "+appNS]))
	}
	for name, out := range outputs {
		for _, v := range []string{password, token1, token2} {
			if strings.Contains(out, v) {
				t.Errorf("%s shows a value of the env Secret", name)
			}
		}
	}
}

// activePods are the pods of one color of an app.
func activePods(t *testing.T, c kubernetes.Interface, ns, app, color string) []corev1.Pod {
	t.Helper()
	dep, err := c.AppsV1().Deployments(ns).Get(context.Background(), rollout.DeploymentName(app, color), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: labels.SelectorFromSet(dep.Spec.Selector.MatchLabels).String()})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// secretRefs are the Secret/key pairs a pod's containers read env from, sorted.
func secretRefs(p corev1.Pod) []string {
	var out []string
	for _, c := range p.Spec.Containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				out = append(out, e.ValueFrom.SecretKeyRef.Name+"/"+e.ValueFrom.SecretKeyRef.Key)
			}
		}
	}
	slices.Sort(out)
	return out
}

// settledVersions waits until the pods of ns match their Deployments (the
// stand-in has caught up with the last promote's scale-down) and returns
// the resourceVersion of every object promote touches there, by
// kind/name. Events are left out: a deploy's end is recorded as a new one.
func settledVersions(t *testing.T, c kubernetes.Interface, ns string) map[string]string {
	t.Helper()
	ctx := context.Background()
	testenv.Eventually(t, "the pods of "+ns+" to match their Deployments", 30*time.Second, func() bool {
		deps, err := c.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range deps.Items {
			pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(d.Spec.Selector.MatchLabels).String()})
			if err != nil {
				t.Fatal(err)
			}
			if int32(len(pods.Items)) != *d.Spec.Replicas {
				return false
			}
		}
		return true
	})
	out := map[string]string{}
	add := func(kind, name, rv string) { out[kind+"/"+name] = rv }
	deps, err := c.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range deps.Items {
		add("Deployment", o.Name, o.ResourceVersion)
	}
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range pods.Items {
		add("Pod", o.Name, o.ResourceVersion)
	}
	svcs, err := c.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range svcs.Items {
		add("Service", o.Name, o.ResourceVersion)
	}
	cms, err := c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range cms.Items {
		add("ConfigMap", o.Name, o.ResourceVersion)
	}
	secs, err := c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range secs.Items {
		add("Secret", o.Name, o.ResourceVersion)
	}
	leases, err := c.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range leases.Items {
		add("Lease", o.Name, o.ResourceVersion)
	}
	pdbs, err := c.PolicyV1().PodDisruptionBudgets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range pdbs.Items {
		add("PodDisruptionBudget", o.Name, o.ResourceVersion)
	}
	return out
}
