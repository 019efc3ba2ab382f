package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/tsys-group/tsys-ci/internal/contract"
	"github.com/tsys-group/tsys-ci/rollout"
)

// useEdgeStandIn configures the app's pool with an edge stats URL served
// by a stand-in of the edge: its CSV (HAProxy 2.6's columns, the ones
// promote reads) shows the app's top-level backend with one server per
// color carrying the weights the app Service's annotation asks for at the
// moment of the read, as 'edge sync --watch' would apply them, and
// counters that grow at each read by the color's weight (requests, no
// errors, rtime 12 ms), as users' requests split by those weights would.
// apply=false makes it an edge that never applies them (weights
// stay 100 on blue); a.edgeLag, one that applies them late. A stand-in: it proves promote's side of the contract;
// test/e2e's TestPromoteJudgedAtTheEdge runs the real HAProxy and edge.
func (a *app) useEdgeStandIn(apply bool) {
	var mu sync.Mutex
	requests := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		weights := map[string]int{rollout.ColorBlue: 100}
		if apply {
			svc, err := a.cs.CoreV1().Services(a.ns).Get(r.Context(), a.spec.Name, metav1.GetOptions{})
			if err == nil && svc.Annotations[contract.AnnotationEdgeWeights] != "" {
				weights = map[string]int{}
				if err := json.Unmarshal([]byte(svc.Annotations[contract.AnnotationEdgeWeights]), &weights); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
			}
		}
		a.mu.Lock()
		if a.edgeLag != nil {
			weights = a.edgeLag(weights)
		}
		a.mu.Unlock()
		be := fmt.Sprintf("tsys-ci.%s.%s.http", a.ns, a.spec.Name)
		fmt.Fprintln(w, "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,hrsp_5xx,rtime,uweight,")
		colors := make([]string, 0, len(weights))
		for c := range weights {
			colors = append(colors, c)
		}
		sort.Strings(colors)
		total := 0
		mu.Lock()
		defer mu.Unlock()
		for _, c := range colors {
			requests[c] += weights[c]
			fmt.Fprintf(w, "%s,%s,0,0,0,0,,%d,0,0,,0,,0,0,0,0,UP,%d,1,0,0,12,%d,\n", be, c, requests[c], weights[c], weights[c])
			total += weights[c]
		}
		fmt.Fprintf(w, "%s,BACKEND,0,0,0,0,,0,0,0,0,0,,0,0,0,0,UP,%d,2,0,0,0,%d,\n", be, total, total)
	}))
	a.t.Cleanup(srv.Close)
	poolConfigMap(a.t, a.cs, a.ns, rollout.Pool{Addresses: []string{"10.89.0.240"}, Ports: rollout.PortRange{Min: 30000, Max: 30099},
		Edge: &rollout.EdgeConfig{StatsURL: srv.URL + "/stats;csv"}})
}

// routing is one version of the app Service as a watch saw it.
type routing struct {
	Selector string // the color selected, "" for both
	Weights  string // the edge-weights annotation
}

// recordRouting watches the app Service and returns what each change of
// it routed, in order.
func (a *app) recordRouting() func() []routing {
	ctx, cancel := context.WithCancel(context.Background())
	w, err := a.cs.CoreV1().Services(a.ns).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", a.spec.Name).String()})
	if err != nil {
		a.t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []routing
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			svc, ok := ev.Object.(*corev1.Service)
			if !ok {
				continue
			}
			r := routing{Selector: svc.Spec.Selector[rollout.LabelColor], Weights: svc.Annotations[contract.AnnotationEdgeWeights]}
			mu.Lock()
			if n := len(seen); n == 0 || seen[n-1] != r {
				seen = append(seen, r)
			}
			mu.Unlock()
		}
	}()
	a.t.Cleanup(func() { cancel(); w.Stop(); <-done })
	return func() []routing {
		mu.Lock()
		defer mu.Unlock()
		return append([]routing(nil), seen...)
	}
}
