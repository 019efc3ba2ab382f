package registry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// EmbeddedAddr is where `tsys-ci registry serve` listens by default, and so
// where push goes when no registry is configured: a newcomer can run the
// whole pipeline with nothing else set up.
const EmbeddedAddr = "127.0.0.1:5055"

// Embedded is go-containerregistry's registry with its data on disk: blobs
// under DIR/blobs (the library's disk handler), manifests and tags in an
// append-only journal DIR/manifests.jsonl that is replayed at start, so
// images survive a restart.
type Embedded struct {
	dir     string
	reg     http.Handler
	mu      sync.Mutex
	journal *os.File
}

// journalEntry is one manifest PUT or DELETE.
type journalEntry struct {
	Op        string `json:"op"` // "put" or "delete"
	Repo      string `json:"repo"`
	Ref       string `json:"ref"`
	MediaType string `json:"mediaType,omitempty"`
	Body      []byte `json:"body,omitempty"`
}

// OpenEmbedded opens (or creates) the registry data in dir.
func OpenEmbedded(dir string, logger *log.Logger) (*Embedded, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o755); err != nil {
		return nil, fmt.Errorf("creating the registry data folder %s: %w", dir, err)
	}
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	e := &Embedded{dir: dir, reg: ggcrregistry.New(
		ggcrregistry.WithBlobHandler(ggcrregistry.NewDiskBlobHandler(filepath.Join(dir, "blobs"))),
		ggcrregistry.Logger(logger),
	)}
	path := filepath.Join(dir, "manifests.jsonl")
	if err := e.replay(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the registry journal %s: %w", path, err)
	}
	e.journal = f
	return e, nil
}

// Close closes the journal.
func (e *Embedded) Close() error { return e.journal.Close() }

func (e *Embedded) replay(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the registry journal %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var je journalEntry
		if err := json.Unmarshal(sc.Bytes(), &je); err != nil {
			// A crash can leave a torn last line; anything else is damage.
			if !sc.Scan() {
				break
			}
			return fmt.Errorf("registry journal %s line %d is damaged: %v", path, line, err)
		}
		method := map[string]string{"put": http.MethodPut, "delete": http.MethodDelete}[je.Op]
		if method == "" || !manifestPath.MatchString("/v2/"+je.Repo+"/manifests/"+je.Ref) || strings.ContainsAny(je.Repo+je.Ref, " \t\r\n?#") {
			return fmt.Errorf("registry journal %s line %d is damaged: op %q, repository %q, reference %q", path, line, je.Op, je.Repo, je.Ref)
		}
		req, err := http.NewRequest(method, "/v2/"+je.Repo+"/manifests/"+je.Ref, bytes.NewReader(je.Body))
		if err != nil {
			return fmt.Errorf("registry journal %s line %d is damaged: %v", path, line, err)
		}
		req.Header.Set("Content-Type", je.MediaType)
		rec := httptest.NewRecorder()
		e.reg.ServeHTTP(rec, req)
		if rec.Code >= 300 && je.Op == "put" {
			return fmt.Errorf("registry journal %s line %d: replaying %s:%s gave %d: %s", path, line, je.Repo, je.Ref, rec.Code, rec.Body.String())
		}
	}
	return sc.Err()
}

var manifestPath = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)

// ServeHTTP serves the registry and journals every manifest change that
// succeeded, before the client hears of it.
func (e *Embedded) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := manifestPath.FindStringSubmatch(r.URL.Path)
	if m == nil || (r.Method != http.MethodPut && r.Method != http.MethodDelete) {
		e.reg.ServeHTTP(w, r)
		return
	}
	var body []byte
	if r.Method == http.MethodPut {
		var err error
		if body, err = io.ReadAll(io.LimitReader(r.Body, 16<<20)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	rec := httptest.NewRecorder()
	e.mu.Lock()
	e.reg.ServeHTTP(rec, r)
	var jerr error
	if rec.Code < 300 {
		je := journalEntry{Op: "put", Repo: m[1], Ref: m[2], MediaType: r.Header.Get("Content-Type"), Body: body}
		if r.Method == http.MethodDelete {
			je = journalEntry{Op: "delete", Repo: m[1], Ref: m[2]}
		}
		b, _ := json.Marshal(je)
		if _, jerr = e.journal.Write(append(b, '\n')); jerr == nil {
			jerr = e.journal.Sync()
		}
	}
	e.mu.Unlock()
	if jerr != nil {
		http.Error(w, "registry journal: "+jerr.Error(), http.StatusInsufficientStorage)
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// CheckLoopback refuses addresses other machines could reach: the embedded
// registry has no authentication.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return &UsageError{fmt.Sprintf("--addr %q must be HOST:PORT, e.g. %s", addr, EmbeddedAddr)}
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return &UsageError{fmt.Sprintf("--addr %q: the embedded registry has no authentication, so it listens on loopback only (127.0.0.1)", addr)}
	}
	return nil
}

// ServeEmbedded serves the embedded registry with data in dir on the
// loopback address addr until ctx ends; ready (if not nil) is told the
// address once it listens.
func ServeEmbedded(ctx context.Context, addr, dir string, ready func(net.Addr)) error {
	if err := CheckLoopback(addr); err != nil {
		return err
	}
	e, err := OpenEmbedded(dir, nil)
	if err != nil {
		return err
	}
	defer e.Close()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w; is another registry running there? pass --addr", addr, err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 30 * time.Second}
	served := make(chan struct{})
	stopped := make(chan error, 1)
	go func() {
		select {
		case <-ctx.Done():
		case <-served: // Serve failed on its own: nothing to shut down
			stopped <- nil
			return
		}
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), embeddedShutdownTimeout)
		defer cancel()
		stopped <- srv.Shutdown(shutdown)
	}()
	if ready != nil {
		ready(l.Addr())
	}
	err = srv.Serve(l)
	close(served)
	if !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving the embedded registry on %s: %w", addr, err)
	}
	if err := <-stopped; err != nil {
		return fmt.Errorf("stopping the embedded registry: requests still running after %s were cut off (%w); a push cut off must be run again", embeddedShutdownTimeout, err)
	}
	return nil
}

// embeddedShutdownTimeout is how long a stopping embedded registry lets
// running requests (a blob upload) finish.
const embeddedShutdownTimeout = 10 * time.Second
