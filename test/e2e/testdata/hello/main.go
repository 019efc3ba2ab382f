// Command hello is the lab's test app: a small static HTTP server the e2e
// tests build into a scratch image with tsys-ci build.
//
//	hello                      serve on :8080 ("VERSION POD" on /, 200 on /healthz)
//	hello write PATH TEXT      write TEXT to PATH (folders made), then exit
//	hello read PATH            print PATH's contents, then exit
//
// HELLO_VERSION names the version; HELLO_BROKEN=1 makes /healthz answer 500;
// HELLO_FAIL_AFTER=DURATION makes / answer 500 from that long after the
// start on, while /healthz keeps answering 200: a version that passes its
// probes and then fails its users (issue 23). HELLO_SHOW_ENV=NAME makes
// /env answer the value of the variable NAME: the e2e test of promote's
// fromEnv secrets reads what the pods were given (test apps only).
// /metrics counts the answers of / by status code (hello_requests_total),
// which a real Prometheus scrapes in the test of analysis.prometheus.
package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	if len(os.Args) > 1 {
		if err := tool(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "hello:", err)
			os.Exit(1)
		}
		return
	}
	version, pod := os.Getenv("HELLO_VERSION"), os.Getenv("POD_NAME")
	if pod == "" {
		pod, _ = os.Hostname()
	}
	broken := os.Getenv("HELLO_BROKEN") == "1"
	var failFrom time.Time
	if v := os.Getenv("HELLO_FAIL_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "hello: HELLO_FAIL_AFTER=%q: %v\n", v, err)
			os.Exit(2)
		}
		failFrom = time.Now().Add(d)
	}
	requests := promauto.NewCounterVec(prometheus.CounterOpts{Name: "hello_requests_total", Help: "Answers of / by status code."}, []string{"code"})
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if !failFrom.IsZero() && time.Now().After(failFrom) {
			requests.WithLabelValues(strconv.Itoa(http.StatusInternalServerError)).Inc()
			http.Error(w, version+" "+pod+" failing on purpose", http.StatusInternalServerError)
			return
		}
		requests.WithLabelValues(strconv.Itoa(http.StatusOK)).Inc()
		fmt.Fprintf(w, "%s %s\n", version, pod)
	})
	http.Handle("/metrics", promhttp.Handler())
	if show := os.Getenv("HELLO_SHOW_ENV"); show != "" {
		http.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s\n", version, os.Getenv(show))
		})
	}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if broken {
			http.Error(w, "broken on purpose", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if err := http.ListenAndServe(":8080", nil); err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
}

func tool(args []string) error {
	switch {
	case args[0] == "write" && len(args) == 3:
		if err := os.MkdirAll(filepath.Dir(args[1]), 0o755); err != nil {
			return err
		}
		return os.WriteFile(args[1], []byte(args[2]), 0o644)
	case args[0] == "read" && len(args) == 2:
		b, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(b)
		return err
	}
	return fmt.Errorf("usage: hello [write PATH TEXT | read PATH]")
}
