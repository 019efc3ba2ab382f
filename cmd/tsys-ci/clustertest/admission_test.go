package clustertest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/registry"
	"github.com/tsys-group/tsys-ci/test/apiserver"
	"github.com/tsys-group/tsys-ci/test/pki"
	"github.com/tsys-group/tsys-ci/test/podstandin"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// TestServeBinaryIsTheAdmissionWebhook: the tsys-ci binary, started as
// the chart starts it (serve.yaml with TLS, --verify-key), answers the
// real API server's admission webhook: an unsigned digest is refused with
// serve's reason, the signed one runs. The wiring of the CLI, not only
// the handler (pipeline/serve/clustertest tests that one).
func TestServeBinaryIsTheAdmissionWebhook(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var regDown atomic.Bool // the registry answers 503 to everything
	regHandler := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if regDown.Load() {
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
		regHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	push := func() name.Digest {
		img, err := random.Image(100, 1)
		if err != nil {
			t.Fatal(err)
		}
		tag, _ := name.NewTag(host + "/team/app:v1")
		if err := remote.Write(tag, img); err != nil {
			t.Fatal(err)
		}
		h, _ := img.Digest()
		return tag.Context().Digest(h.String())
	}
	priv, pub, err := registry.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	sv, err := registry.LoadPrivateKey("cosign.key", priv, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	signed, unsigned, byJenkins := push(), push(), push()
	for _, d := range []name.Digest{signed, byJenkins} {
		if err := (registry.Client{}).Sign(ctx, d, sv); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(dir, "cosign.pub"), string(pub))

	ca, err := pki.NewCA("serve test CA")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(pki.Request{CommonName: "serve", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := pki.WriteFiles(dir, "serve", pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "webhook-secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "serve.yaml"), fmt.Sprintf("registry: %s\ntls: {certFile: %s, keyFile: %s}\nwebhookSecretsDir: %s\npolicies: []\n",
		host, certFile, keyFile, filepath.Join(dir, "webhook-secrets")))

	restCfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c := kubernetes.NewForConfigOrDie(restCfg)
	serveNS := apiserver.Namespace(t, c, "serve-cli")
	addr := freeAddr(t)
	cmd := exec.Command(tsysCI, "serve", "--listen", addr, "--config", filepath.Join(dir, "serve.yaml"),
		"--verify-key", filepath.Join(dir, "cosign.pub"), "--kubeconfig", kubeconfig, "--identity", "serve-test", "--lease-namespace", serveNS)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	var logs testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("serve's log:\n%s", logs.String())
		}
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	testenv.Eventually(t, "serve to answer over TLS", 30*time.Second, func() bool {
		resp, err := client.Get("https://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	ns := apiserver.Namespace(t, c, "admission-cli")
	url := "https://" + addr + "/admission/v1/images"
	fail, none, timeout := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone, int32(5)
	hook := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "tsys-ci-images-" + ns},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "images.tsys-ci.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: ca.CertPEM},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			FailurePolicy:     &fail, SideEffects: &none, TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1"},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
		}},
	}
	if _, err := c.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, hook, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), hook.Name, metav1.DeleteOptions{})
	})
	create := func(image string) error {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Namespace: ns},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}}
		_, err := c.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		return err
	}
	// The API server learns of the webhook asynchronously.
	var last error
	testenv.Eventually(t, "the unsigned digest to be refused by serve", 30*time.Second, func() bool {
		last = create(unsigned.String())
		return last != nil && strings.Contains(last.Error(), `admission webhook "images.tsys-ci.io" denied the request`)
	})
	if !strings.Contains(last.Error(), `container "app" image "`+unsigned.String()+`" fails the signature check`) {
		t.Fatalf("refusal %v does not name the image and the reason", last)
	}
	// What a person with kubectl sees.
	if kubectl == "" {
		t.Log("no kubectl beside the API server's binaries ($TSYS_CI_K8S_BINS): kubectl run not tried")
	} else {
		out, err := exec.Command(kubectl, "--kubeconfig", kubeconfig, "-n", ns, "run", "by-hand", "--image", unsigned.String(), "--restart", "Never").CombinedOutput()
		if err == nil || !strings.Contains(string(out), `denied the request`) || !strings.Contains(string(out), "fails the signature check") {
			t.Fatalf("kubectl run of an unsigned image: %v\n%s", err, out)
		}
		t.Logf("kubectl run of the unsigned digest: %s", strings.TrimSpace(string(out)))
	}
	if err := create(signed.String()); err != nil {
		t.Fatalf("the signed digest was refused: %v", err)
	}
	// Shared with the other replica, in serve's namespace.
	shared := &serve.KubeVerifiedDigests{Client: c, Namespace: serveNS, Name: serve.DefaultVerifiedDigestsName}
	if _, ok, err := shared.Get(ctx, signed.String()); err != nil || !ok {
		t.Fatalf("the verified digest is not in %s/%s: %v, %v", serveNS, serve.DefaultVerifiedDigestsName, ok, err)
	}

	// A promote from Jenkins (the CLI, with the company key) shares the
	// digest it verified, with its signature: serve then admits that
	// digest's pods with the registry down, from the proof alone.
	appNS := apiserver.Namespace(t, c, "admission-cli-app")
	podstandin.Start(t, c, appNS)
	spec := filepath.Join(dir, "tsys-ci.yaml")
	write(t, spec, "name: shop\nnamespace: "+appNS+"\nreplicas: 1\nports: [{name: http, containerPort: 8080}]\nstrategy: {type: recreate}\n")
	out, stderr, code := runOut(t, nil, "promote", "shop", "--kubeconfig", kubeconfig, "--spec", spec, "--image", byJenkins.String(),
		"--verify-key", filepath.Join(dir, "cosign.pub"), "--verified-digests", serveNS+"/"+serve.DefaultVerifiedDigestsName)
	if code != 0 || strings.Contains(stderr, "not shared") {
		t.Fatalf("promote: exit %d\n%s\n%s", code, out, stderr)
	}
	regDown.Store(true)
	if err := create(byJenkins.String()); err != nil {
		t.Fatalf("with the registry down, the digest the CLI promote verified and shared was refused: %v", err)
	}
	if err := create(unsigned.String()); err == nil || !strings.Contains(err.Error(), "could not be checked") && !strings.Contains(err.Error(), "fails the signature check") {
		t.Fatalf("with the registry down, an unshared digest: %v", err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
