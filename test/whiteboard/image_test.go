package whiteboard

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/tsys-group/tsys-ci/pipeline"
	"github.com/tsys-group/tsys-ci/registry"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// imageRequest is what `make whiteboard-image` passes to tsys-ci build.
func imageRequest(ctxDir, out string) pipeline.BuildRequest {
	return pipeline.BuildRequest{
		Context: ctxDir, Base: "scratch", Platform: "linux/" + runtime.GOARCH, Workdir: "/app",
		Entrypoint: []string{"/app/whiteboard"}, Env: []string{"WHITEBOARD_DATA=/data", "WHITEBOARD_ADDR=:8080"},
		Ports: []string{"8080"}, Commit: "0123456789abcdef0123456789abcdef01234567", Branch: "main",
		BuildNumber: "1", Job: "whiteboard", BuildTime: "2026-01-01T00:00:00Z",
		Out: filepath.Join(out, "image"), Result: filepath.Join(out, "build.json"),
	}
}

// buildImage compiles the static binary into a fresh context folder and
// builds the scratch image from it.
func buildImage(t *testing.T, version string) (pipeline.BuildResult, [32]byte) {
	t.Helper()
	dir := t.TempDir()
	ctxDir := filepath.Join(dir, "context")
	if err := goBuild(filepath.Join(ctxDir, "whiteboard"), version); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(filepath.Join(ctxDir, "whiteboard"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := pipeline.Build(context.Background(), imageRequest(ctxDir, dir), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return res, sha256.Sum256(bin)
}

// TestImageReproducesAndRuns builds the whiteboard image twice from scratch
// folders (same binary hash, same image digest), then runs it in Docker
// with a volume: a stroke survives `docker kill` and a restart, and `docker
// stop` (SIGTERM) ends it with exit code 0.
func TestImageReproducesAndRuns(t *testing.T) {
	testenv.LookPath(t, "go") // goBuild runs the go command; under -short this skips
	first, binA := buildImage(t, "image-test")
	second, binB := buildImage(t, "image-test")
	if binA != binB || first.Digest != second.Digest {
		t.Fatalf("not reproducible: binaries %x vs %x, images %s vs %s", binA[:8], binB[:8], first.Digest, second.Digest)
	}
	t.Logf("image %s, built twice", first.Digest)

	docker := testenv.LookPath(t, "docker")
	if err := exec.Command(docker, "version").Run(); err != nil {
		testenv.Missing(t, "the Docker engine does not answer (scripts/deps.sh starts it)")
	}
	ref := pushToEmbedded(t, first)
	name := fmt.Sprintf("whiteboard-image-%d", os.Getpid())
	dockerRun := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(docker, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	t.Cleanup(func() {
		exec.Command(docker, "rm", "-f", name).Run()
		exec.Command(docker, "volume", "rm", "-f", name).Run()
		exec.Command(docker, "rmi", "-f", ref).Run()
	})
	dockerRun("run", "-d", "--name", name, "-v", name+":/data", "-p", "127.0.0.1::8080", ref)
	base := waitContainer(t, docker, name)
	if _, body := get(t, base+"/api/version"); string(body) != `{"version":"image-test"}`+"\n" {
		t.Fatalf("version: %s", body)
	}
	if code, body := postStroke(t, base, "img", `{"kind":"text","text":"in a container"}`); code != 201 {
		t.Fatalf("post: %d %s", code, body)
	}
	_, before := get(t, base+"/api/boards/img")
	dockerRun("kill", "--signal", "KILL", name)
	dockerRun("start", name)
	base = waitContainer(t, docker, name)
	if _, after := get(t, base+"/api/boards/img"); string(after) != string(before) {
		t.Fatalf("after docker kill and start:\n%s\nwant\n%s", after, before)
	}
	dockerRun("stop", "--time", "20", name)
	if code := dockerRun("inspect", "--format", "{{.State.ExitCode}}", name); code != "0" {
		logs, _ := exec.Command(docker, "logs", name).CombinedOutput()
		t.Fatalf("exit code %s after SIGTERM:\n%s", code, logs)
	}
}

func pushToEmbedded(t *testing.T, res pipeline.BuildResult) string {
	t.Helper()
	e, err := registry.OpenEmbedded(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	reg := httptest.NewServer(e)
	t.Cleanup(reg.Close)
	img, err := registry.ReadLayout(res.Layout, mustHash(t, res.Digest))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := registry.ParseRepository(strings.TrimPrefix(reg.URL, "http://") + "/demo/whiteboard")
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := registry.Client{}.Push(context.Background(), img, repo, nil, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return pushed.Ref.String()
}

// waitContainer returns the container's URL once /readyz answers 200.
func waitContainer(t *testing.T, docker, name string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		out, err := exec.Command(docker, "port", name, "8080/tcp").Output()
		if addr := strings.TrimSpace(strings.Split(string(out), "\n")[0]); err == nil && addr != "" {
			if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return "http://" + addr
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	logs, _ := exec.Command(docker, "logs", name).CombinedOutput()
	t.Fatalf("container %s not ready within 60s:\n%s", name, logs)
	return ""
}

func mustHash(t *testing.T, digest string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(digest)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
