package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// testRegistry is go-containerregistry's real registry on loopback, behind
// basic auth (user "ci", password "secret") like a robot account, with a hook
// that may refuse a request before the registry sees it.
type testRegistry struct {
	*httptest.Server
	host   string
	refuse func(*http.Request) bool
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	r := &testRegistry{}
	reg := ggcrregistry.New(ggcrregistry.Logger(nopLogger()))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if u, p, ok := req.BasicAuth(); !ok || u != "ci" || p != "secret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test registry"`)
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		if r.refuse != nil && r.refuse(req) {
			w.WriteHeader(http.StatusInsufficientStorage)
			return
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	r.host = strings.TrimPrefix(r.URL, "http://")
	return r
}

func basicClient(user, pass string) Client {
	return Client{Keychain: staticKeychain{authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})}}
}

func (r *testRegistry) tags(t *testing.T, repo string) []string {
	t.Helper()
	rp, _ := name.NewRepository(r.host + "/" + repo)
	tags, err := remote.List(rp, basicClient("ci", "secret").options(context.Background())...)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return nil // the repository does not exist at all
	}
	if err != nil {
		t.Fatal(err)
	}
	return tags
}

func TestPushPullBackSameDigest(t *testing.T) {
	reg := newTestRegistry(t)
	img, _ := random.Image(1000, 3)
	repo, _ := ParseRepository(reg.host + "/demo/app")
	tags, err := ParseTags(repo, []string{"0123456", "build-7"})
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	c := basicClient("ci", "secret")
	p, err := c.Push(context.Background(), img, repo, tags, nil, &log)
	if err != nil {
		t.Fatalf("push: %v\n%s", err, log.String())
	}
	want, _ := img.Digest()
	if p.Digest != want || p.Ref.DigestStr() != want.String() {
		t.Fatalf("pushed %v, want digest %s", p, want)
	}
	for _, ref := range []string{p.Ref.String(), reg.host + "/demo/app:0123456", reg.host + "/demo/app:build-7"} {
		r, _ := name.ParseReference(ref)
		back, err := remote.Image(r, c.options(context.Background())...)
		if err != nil {
			t.Fatalf("pulling back %s: %v", ref, err)
		}
		got, _ := back.Digest()
		if got != want {
			t.Errorf("pulled %s: digest %s, want %s", ref, got, want)
		}
		// Every layer comes back whole, not only the manifest.
		layers, _ := back.Layers()
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatalf("reading a pulled layer of %s: %v", ref, err)
			}
			rc.Close()
		}
	}
}

func TestPushWrongCredentials(t *testing.T) {
	reg := newTestRegistry(t)
	img, _ := random.Image(100, 1)
	repo, _ := ParseRepository(reg.host + "/demo/app")
	tags, _ := ParseTags(repo, []string{"v1"})
	_, err := basicClient("ci", "wrong").Push(context.Background(), img, repo, tags, nil, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "refused the credentials") || !strings.Contains(err.Error(), "TSYS_CI_REGISTRY_USERNAME") {
		t.Fatalf("error %v, want one about the credentials", err)
	}
	if got := reg.tags(t, "demo/app"); len(got) != 0 {
		t.Fatalf("tags %v exist after a refused push", got)
	}
}

func TestPushUnreachableRegistry(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) // nothing listens there now
	img, _ := random.Image(100, 1)
	repo, _ := ParseRepository(addr + "/demo/app")
	_, err := basicClient("ci", "secret").Push(context.Background(), img, repo, nil, nil, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "cannot reach registry "+addr) {
		t.Fatalf("error %v, want one saying the registry cannot be reached", err)
	}
}

func TestPushInvalidTagPushesNothing(t *testing.T) {
	reg := newTestRegistry(t)
	repo, _ := ParseRepository(reg.host + "/demo/app")
	for _, bad := range []string{"-lead", "has space", "a:b", strings.Repeat("x", 129), ""} {
		if _, err := ParseTags(repo, []string{"good", bad}); err == nil || !IsUsage(err) {
			t.Errorf("tag %q accepted (%v)", bad, err)
		}
	}
	if _, err := ParseRepository("Upper/Case"); err == nil {
		t.Error("repository Upper/Case accepted")
	}
}

func TestPushFailingMidwayLeavesNoTag(t *testing.T) {
	reg := newTestRegistry(t)
	// The registry runs out of space on the manifest: every blob is there,
	// the image is not, and no tag may claim it is.
	reg.refuse = func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
	}
	img, _ := random.Image(100, 2)
	repo, _ := ParseRepository(reg.host + "/demo/app")
	tags, _ := ParseTags(repo, []string{"v1"})
	if _, err := basicClient("ci", "secret").Push(context.Background(), img, repo, tags, nil, io.Discard); err == nil {
		t.Fatal("push succeeded although the registry refused the manifest")
	}
	reg.refuse = nil
	if got := reg.tags(t, "demo/app"); len(got) != 0 {
		t.Fatalf("tags %v exist after a failed push", got)
	}
	d, _ := img.Digest()
	ref, _ := name.NewDigest(reg.host + "/demo/app@" + d.String())
	if _, err := remote.Head(ref, basicClient("ci", "secret").options(context.Background())...); err == nil {
		t.Fatal("the manifest exists after a refused manifest upload")
	}
}
