// Package imagerun checks that an image made by tsys-ci build runs in a real
// container runtime (the Docker engine on this machine): a static Go server
// in a scratch image, pushed to the embedded registry, pulled and started
// by dockerd, answering HTTP. The same check in the lab's Kubernetes comes
// with the lab (test/e2e).
package imagerun

import (
	"context"
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

	"github.com/tsys-group/tsys-ci/registry"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

const server = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		wd, _ := os.Getwd()
		fmt.Fprintf(w, "hello from a tsys-ci image, uid %d, wd %s, GREETING=%s", os.Getuid(), wd, os.Getenv("GREETING"))
	})
	http.ListenAndServe(":8080", nil)
}
`

func TestBuiltImageRunsInDocker(t *testing.T) {
	docker := testenv.LookPath(t, "docker")
	if err := exec.Command(docker, "version").Run(); err != nil {
		testenv.Missing(t, "the Docker engine does not answer (scripts/deps.sh starts it)")
	}
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "server.go")
	os.WriteFile(src, []byte(server), 0o644)
	app := filepath.Join(dir, "app")
	os.MkdirAll(app, 0o755)
	build := exec.Command("go", "build", "-o", filepath.Join(app, "server"), src)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the test server: %v\n%s", err, out)
	}

	e, err := registry.OpenEmbedded(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	reg := httptest.NewServer(e)
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")

	layoutDir := filepath.Join(dir, "image")
	built, err := registry.BuildToLayout(ctx, registry.BuildOptions{
		Context: app, Base: registry.Scratch, Platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Workdir: "/app", Entrypoint: []string{"/app/server"}, Env: []string{"GREETING=hi"},
		User: "65534:65534", Ports: []string{"8080"}, Created: time.Unix(1700000000, 0),
	}, layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := registry.ReadLayout(layoutDir, built.Digest)
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := registry.ParseRepository(host + "/library/imagerun")
	pushed, err := registry.Client{}.Push(ctx, img, repo, nil, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}

	name := fmt.Sprintf("registry-imagerun-%d", os.Getpid())
	t.Cleanup(func() {
		exec.Command(docker, "rm", "-f", name).Run()
		exec.Command(docker, "rmi", "-f", pushed.Ref.String()).Run()
	})
	if out, err := exec.Command(docker, "run", "-d", "--name", name, "-p", "127.0.0.1::8080", pushed.Ref.String()).CombinedOutput(); err != nil {
		t.Fatalf("docker run %s: %v\n%s", pushed.Ref, err, out)
	}
	out, err := exec.Command(docker, "port", name, "8080/tcp").Output()
	if err != nil {
		t.Fatalf("docker port: %v", err)
	}
	addr := strings.TrimSpace(strings.Split(string(out), "\n")[0])
	deadline := time.Now().Add(30 * time.Second)
	var body string
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if time.Now().After(deadline) {
			logs, _ := exec.Command(docker, "logs", name).CombinedOutput()
			t.Fatalf("the container did not answer on %s within 30 s: %v\nlogs: %s", addr, err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := "hello from a tsys-ci image, uid 65534, wd /app, GREETING=hi"
	if body != want {
		t.Fatalf("the container answered %q, want %q", body, want)
	}
}
