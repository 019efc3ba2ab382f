// Command echo is the e2e tests' tiny HTTP app, built static and put in an
// image FROM scratch by the tests:
//
//	echo serve ADDR            answer every request with this pod's name
//	echo get URL N TIMEOUT     GET URL until N different answers were seen
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: echo serve ADDR | echo get URL N TIMEOUT")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		name, _ := os.Hostname()
		http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, name) })
		fmt.Fprintln(os.Stderr, http.ListenAndServe(os.Args[2], nil))
		os.Exit(1)
	case "get":
		want, _ := strconv.Atoi(os.Args[3])
		timeout, _ := time.ParseDuration(os.Args[4])
		// A new connection per request: a kept-alive one stays with the
		// replica it first reached, and the other is never seen.
		client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		seen := map[string]bool{}
		deadline := time.Now().Add(timeout)
		for len(seen) < want {
			if time.Now().After(deadline) {
				fmt.Printf("saw %d of %d answers within %s: %v\n", len(seen), want, timeout, seen)
				os.Exit(1)
			}
			resp, err := client.Get(os.Args[2])
			if err != nil {
				fmt.Println(err)
				time.Sleep(200 * time.Millisecond)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !seen[string(body)] {
				fmt.Printf("answer from %s\n", body)
			}
			seen[string(body)] = true
		}
	default:
		os.Exit(2)
	}
}
