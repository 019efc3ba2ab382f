package clustertest

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/registry"
	"github.com/tsys-group/tsys-ci/test/apiserver"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// admissionLab is a real API server with serve's image admission
// registered for one namespace, a registry, and the company key.
type admissionLab struct {
	t         testing.TB
	c         kubernetes.Interface
	ns        string
	host      string // the registry's host:port
	sign      func(d name.Digest)
	admission *serve.ImageAdmission
	hook      *httptest.Server
	// verifies counts the registry round trips of the signature check.
	verifies atomic.Int64
}

func newAdmissionLab(t testing.TB, failurePolicy admissionregistrationv1.FailurePolicyType) *admissionLab {
	t.Helper()
	ctx := context.Background()
	l := &admissionLab{t: t, c: apiserver.Client(t)}
	reg := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	l.host = strings.TrimPrefix(reg.URL, "http://")

	priv, pub, err := registry.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	sv, err := registry.LoadPrivateKey("company.key", priv, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := registry.LoadPublicKey("company.pub", pub)
	if err != nil {
		t.Fatal(err)
	}
	l.sign = func(d name.Digest) {
		if err := (registry.Client{}).Sign(ctx, d, sv); err != nil {
			t.Fatalf("signing %s: %v", d, err)
		}
	}
	l.admission = &serve.ImageAdmission{Registry: l.host, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Verify: func(ctx context.Context, image string) (string, registry.SignatureProof, error) {
			l.verifies.Add(1)
			ref, err := name.ParseReference(image)
			if err != nil {
				return "", registry.SignatureProof{}, err
			}
			d, proof, err := (registry.Client{}).VerifyWithProof(ctx, ref, v)
			if err != nil {
				return "", registry.SignatureProof{}, err
			}
			return d.String(), proof, nil
		},
		CheckProof: func(digest string, proof registry.SignatureProof) error {
			d, err := name.NewDigest(digest)
			if err != nil {
				return err
			}
			return registry.CheckProof(proof, v, d)
		}}
	mux := http.NewServeMux()
	mux.Handle("POST "+serve.AdmissionPath, l.admission)
	l.hook = httptest.NewTLSServer(mux)
	t.Cleanup(l.hook.Close)

	l.ns = apiserver.Namespace(t, l.c, "admission")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: l.hook.Certificate().Raw})
	url := l.hook.URL + serve.AdmissionPath
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(5)
	all := []string{"*"}
	hook := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "tsys-ci-images-" + l.ns},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "images.tsys-ci.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: ca},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": l.ns}},
			FailurePolicy:           &failurePolicy,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{"", "apps", "batch"}, APIVersions: all,
					Resources: []string{"pods", "pods/ephemeralcontainers", "replicationcontrollers", "deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs"}},
			}},
		}},
	}
	if _, err := l.c.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, hook, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = l.c.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), hook.Name, metav1.DeleteOptions{})
	})
	// The API server learns of the webhook asynchronously: wait until a
	// pod with a tag (refused by the webhook, admitted without it) is
	// refused.
	testenv.Eventually(t, "the webhook to be in force", 30*time.Second, func() bool {
		err := l.createPod("probe", l.host+"/team/app:latest")
		return err != nil && strings.Contains(err.Error(), "not a reference by digest")
	})
	return l
}

// push pushes a new random image and returns it by digest.
func (l *admissionLab) push(repo string) name.Digest {
	l.t.Helper()
	img, err := random.Image(100, 1)
	if err != nil {
		l.t.Fatal(err)
	}
	tag, err := name.NewTag(l.host + "/" + repo + ":v1")
	if err != nil {
		l.t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		l.t.Fatal(err)
	}
	h, _ := img.Digest()
	return tag.Context().Digest(h.String())
}

func (l *admissionLab) createPod(name string, images ...string) error {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-", Namespace: l.ns}}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
	}
	_, err := l.c.CoreV1().Pods(l.ns).Create(context.Background(), p, metav1.CreateOptions{})
	return err
}

// Issue 21 part 3: only images by digest from the registry, signed with
// the company key, run in a namespace the webhook is registered for,
// whether a Pod is made by hand or by a workload's template.
func TestAdmissionRunsOnlySignedDigests(t *testing.T) {
	l := newAdmissionLab(t, admissionregistrationv1.Fail)
	signed := l.push("team/app")
	l.sign(signed)
	unsigned := l.push("team/app")

	if err := l.createPod("signed", signed.String()); err != nil {
		t.Fatalf("a signed digest was refused: %v", err)
	}
	for _, tc := range []struct {
		what   string
		images []string
		want   []string
	}{
		{"unsigned digest", []string{unsigned.String()}, []string{unsigned.String(), "fails the signature check"}},
		{"tag", []string{l.host + "/team/app:v1"}, []string{"is not a reference by digest"}},
		{"another registry", []string{"other.example/team/app@" + signed.DigestStr()}, []string{"is from other.example, not from " + l.host}},
		{"one unsigned container among signed ones", []string{signed.String(), unsigned.String()}, []string{`container "c1" image "` + unsigned.String() + `" fails the signature check`}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			err := l.createPod("refused", tc.images...)
			if err == nil {
				t.Fatalf("%s admitted", tc.what)
			}
			for _, w := range append(tc.want, "tsys-ci admits in this namespace only images by digest from "+l.host) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q does not say %q", err, w)
				}
			}
		})
	}

	t.Run("a Deployment with one unsigned container", func(t *testing.T) {
		replicas := int32(1)
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: l.ns}, Spec: appsv1.DeploymentSpec{
			Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "migrate", Image: unsigned.String()}},
				Containers:     []corev1.Container{{Name: "web", Image: signed.String()}}}}}}
		_, err := l.c.AppsV1().Deployments(l.ns).Create(context.Background(), d, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), `container "migrate" image "`+unsigned.String()+`" fails the signature check`) {
			t.Fatalf("deployment with an unsigned init container: %v", err)
		}
		d.Spec.Template.Spec.InitContainers = nil
		if _, err := l.c.AppsV1().Deployments(l.ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
			t.Fatalf("deployment of the signed image refused: %v", err)
		}
	})

	t.Run("a label patch on an admitted pod is not judged again", func(t *testing.T) {
		pods, err := l.c.CoreV1().Pods(l.ns).List(context.Background(), metav1.ListOptions{})
		if err != nil || len(pods.Items) == 0 {
			t.Fatalf("no pod to patch: %v", err)
		}
		before := l.verifies.Load()
		p := pods.Items[0]
		if _, err := l.c.CoreV1().Pods(l.ns).Patch(context.Background(), p.Name, "application/merge-patch+json", []byte(`{"metadata":{"labels":{"patched":"yes"}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatalf("label patch refused: %v", err)
		}
		if l.verifies.Load() != before {
			t.Fatalf("the patch cost %d signature checks", l.verifies.Load()-before)
		}
	})
}

// TestAdmissionServeDownFailsClosed: with failurePolicy Fail (the chart's
// default) and serve not answering, no new pod starts in the namespace,
// with the API server's message; with Ignore, pods start unchecked.
func TestAdmissionServeDownFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		policy admissionregistrationv1.FailurePolicyType
		admit  bool
	}{{admissionregistrationv1.Fail, false}, {admissionregistrationv1.Ignore, true}} {
		t.Run(string(tc.policy), func(t *testing.T) {
			l := newAdmissionLab(t, tc.policy)
			signed := l.push("team/app")
			l.sign(signed)
			l.hook.Close()
			err := l.createPod("serve-down", signed.String())
			if tc.admit && err != nil {
				t.Fatalf("failurePolicy Ignore, serve down: %v", err)
			}
			if !tc.admit && (err == nil || !strings.Contains(err.Error(), `failed calling webhook "images.tsys-ci.io"`)) {
				t.Fatalf("failurePolicy Fail, serve down: %v, want the API server's refusal naming the webhook", err)
			}
		})
	}
}

// BenchmarkAdmission measures pod creations through the real API server
// (make bench, -benchtime 200x): without the webhook, with it on each
// digest's first sight (a registry round trip and a signature check), and
// with digests it verified before. p50 and p99 are reported per creation.
func BenchmarkAdmission(b *testing.B) {
	l := newAdmissionLab(b, admissionregistrationv1.Fail)
	plain := apiserver.Namespace(b, l.c, "no-admission")
	for _, bc := range []struct {
		name   string
		ns     string
		cached bool
	}{{"without-webhook", plain, true}, {"uncached", l.ns, false}, {"cached", l.ns, true}} {
		b.Run(bc.name, func(b *testing.B) {
			digests := make([]name.Digest, b.N)
			for i := range digests {
				digests[i] = l.push(fmt.Sprintf("team/app%d", i%10))
				l.sign(digests[i])
				if bc.cached {
					l.admission.Remember(digests[i].String())
				}
			}
			before := l.verifies.Load()
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-", Namespace: bc.ns},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: digests[i].String()}}}}
				start := time.Now()
				if _, err := l.c.CoreV1().Pods(bc.ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
					b.Fatalf("pod %d: %v", i, err)
				}
				took = append(took, time.Since(start))
			}
			b.StopTimer()
			if checks, want := l.verifies.Load()-before, map[bool]int64{true: 0, false: int64(b.N)}[bc.cached]; checks != want {
				b.Fatalf("%d signature checks, want %d", checks, want)
			}
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[max(0, len(took)*99/100-1)].Microseconds())/1000, "p99-ms")
		})
	}
}

// TestAdmissionSharesVerifiedDigests: a digest one replica verified is
// admitted by the other (or a restarted one) from the ConfigMap they
// share in serve's namespace, with no registry round trip: the signature
// kept beside it is checked offline. A signature copied under another
// digest does not pass.
func TestAdmissionSharesVerifiedDigests(t *testing.T) {
	l := newAdmissionLab(t, admissionregistrationv1.Fail)
	ctx := context.Background()
	serveNS := apiserver.Namespace(t, l.c, "serve")
	shared := &serve.KubeVerifiedDigests{Client: l.c, Namespace: serveNS, Name: serve.DefaultVerifiedDigestsName}
	l.admission.Shared = shared
	other := &serve.ImageAdmission{Registry: l.host, Verify: l.admission.Verify, CheckProof: l.admission.CheckProof, Log: l.admission.Log, Shared: shared}

	signed := l.push("team/app")
	l.sign(signed)
	unsigned := l.push("team/app")
	if err := l.createPod("first", signed.String()); err != nil {
		t.Fatalf("the signed digest through the webhook: %v", err)
	}
	if n := l.verifies.Load(); n != 1 {
		t.Fatalf("%d signature checks for one new digest", n)
	}
	proof, ok, err := shared.Get(ctx, signed.String())
	if err != nil || !ok {
		t.Fatalf("the verified digest was not shared: %v, %v", ok, err)
	}
	review := func(image string) *admissionv1.AdmissionResponse {
		raw, _ := json.Marshal(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: l.ns},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}})
		return other.Review(ctx, &admissionv1.AdmissionRequest{Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Operation: admissionv1.Create, Namespace: l.ns, Object: runtime.RawExtension{Raw: raw}})
	}
	if r := review(signed.String()); !r.Allowed || l.verifies.Load() != 1 {
		t.Fatalf("the other replica: allowed %v, %d signature checks; want it admitted from the shared list, no new check", r.Allowed, l.verifies.Load())
	}
	if r := review(unsigned.String()); r.Allowed || !strings.Contains(r.Result.Message, "fails the signature check") {
		t.Fatalf("the other replica admitted the unsigned digest: %+v", r)
	}

	// Anyone who may write the ConfigMap (Jenkins' promotes may) can
	// record a signature under another digest: it does not check with the
	// key for that digest, so the registry decides, and refuses it.
	forged := l.push("team/app")
	if err := shared.Add(ctx, forged.String(), proof); err != nil {
		t.Fatal(err)
	}
	before := l.verifies.Load()
	if r := review(forged.String()); r.Allowed || !strings.Contains(r.Result.Message, "fails the signature check") {
		t.Fatalf("the other replica admitted an unsigned digest on a signature copied from %s: %+v", signed, r)
	}
	if l.verifies.Load() != before+1 {
		t.Fatalf("%d registry checks for the forged entry, want 1", l.verifies.Load()-before)
	}
}
