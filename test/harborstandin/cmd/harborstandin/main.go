// Command harborstandin serves the Harbor stand-in on a loopback address, so
// the stand-in can be driven by hand (curl, tsys-ci registry setup, a push)
// and compared with a real Harbor: see docs/harbor-standin.md.
//
//	go run ./test/harborstandin/cmd/harborstandin -addr 127.0.0.1:58090
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/tsys-group/tsys-ci/test/harborstandin"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:58090", "loopback HOST:PORT to listen on")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintf(os.Stderr, "harborstandin: -addr %q must be a loopback HOST:PORT such as 127.0.0.1:58090\n", *addr)
		os.Exit(2)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("harborstandin: listening on %s: %v", *addr, err)
	}
	fmt.Fprintf(os.Stderr, "%s on http://%s (admin / Harbor12345)\n", harborstandin.Name, l.Addr())
	log.Fatal(http.Serve(l, harborstandin.New(harborstandin.Options{})))
}
