//go:build e2e

package e2e

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/tsys-group/tsys-ci/rollout"
	"github.com/tsys-group/tsys-ci/test/lab"
	"github.com/tsys-group/tsys-ci/test/testenv"
)

// The node-loss drill's apps (issue 25): fixed names, so every run reuses
// their places on the promote pool.
const (
	nodeLossNS = "e2e-nodeloss"
	// nodeLossReplicasEnv lists the replica counts to drill, comma
	// separated ("2" for one; "2,3", the default, for both; "off" for
	// none), about a minute of lab time each.
	nodeLossReplicasEnv = "TSYS_CI_E2E_NODELOSS_REPLICAS"
	// nodeLossEdgeEnv=lb measures the edge on the load-balancer address
	// (edge sync without --by-version) instead of by version.
	nodeLossEdgeEnv = "TSYS_CI_E2E_NODELOSS_EDGE"
	// nodeLossResendEnv is the app's resendAfter at the edge (default
	// 1s; "off" for none): how long the edge waits on a request a frozen
	// node took before it sends it to another node (docs/edge.md).
	nodeLossResendEnv = "TSYS_CI_E2E_NODELOSS_RESEND"
	// slowRequest is where a request stops being answered at normal
	// latency: the lab answers in milliseconds; a request that waited for
	// a SYN retransmission (1 s) or a dead connection is past it.
	slowRequest = time.Second
	// quietWindow is how long every client of both loads must be answered
	// at normal latency, after the frozen node's pods left the endpoints,
	// before the node is brought back (and again after it is back).
	quietWindow = 3 * time.Second
)

func nodeLossApp(replicas int) string  { return fmt.Sprintf("nodeloss-%d", replicas) }
func nodeLossHost(replicas int) string { return nodeLossApp(replicas) + ".company.example" }

// nodeLossReplicas is the replica counts this run drills.
func nodeLossReplicas(t *testing.T) []int {
	t.Helper()
	v := cmp.Or(os.Getenv(nodeLossReplicasEnv), "2,3")
	if v == "off" {
		t.Skipf("%s=off", nodeLossReplicasEnv)
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 || n > 3 {
			t.Fatalf("%s=%q: want replica counts 2 or 3, comma separated (such as 2,3), or off", nodeLossReplicasEnv, v)
		}
		out = append(out, n)
	}
	return out
}

// TestAppSurvivesItsNodeFreezing (issue 25): a stateless app (the hello
// image, put live by tsys-ci promote) with 2, then 3 replicas
// (TSYS_CI_E2E_NODELOSS_REPLICAS=2 or =3 for one of them, =off for none) under load from the host, through a
// real HAProxy kept by `tsys-ci edge sync` and directly on the app's
// MetalLB address (each: one kept-alive and one new-connection client, a
// request every 20 ms). The www node that announces the address and holds
// a replica loses power (lab.Freeze unless TSYS_CI_E2E_STOP_MODE=kill):
// frozen until its pods have left the endpoints, every client has been
// answered at normal latency for quietWindow and the app is at full
// strength again (its pod there evicted and replaced elsewhere), then
// brought back until it is Ready, the address is announced from it again
// and every client has been answered normally for quietWindow more.
//
// Counted, not asserted: failed requests, the slowest request and the time
// until every request is answered at normal latency again, through the edge
// and directly, during the freeze and after the node is back. The test fails
// on its own errors, or when the app does not answer at the end.
//
// The edge serves the app by version (edge sync --by-version: one server
// per node on the version's NodePort, fast checks, retries on another
// node), or on its MetalLB address with TSYS_CI_E2E_NODELOSS_EDGE=lb; it
// logs the servers it found.
func TestAppSurvivesItsNodeFreezing(t *testing.T) {
	counts := nodeLossReplicas(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(4*len(counts)+2)*time.Minute)
	defer cancel()
	haproxy := testenv.LookPath(t, "haproxy")
	bin, err := tsysCI()
	if err != nil {
		t.Fatal(err)
	}
	c := client(t)
	v1 := helloImage(t, "v1")
	freshNamespace(ctx, t, c, nodeLossNS)

	// The edge host, for every app of the drill.
	var hosts []string
	for _, n := range counts {
		hosts = append(hosts, nodeLossHost(n))
	}
	e := startEdge(t, bin, haproxy, nodeLossNS, hosts...)
	e.byVersion = os.Getenv(nodeLossEdgeEnv) != "lb"

	for _, n := range counts {
		t.Run(fmt.Sprintf("replicas=%d", n), func(t *testing.T) {
			nodeLossDrill(ctx, t, c, e, n, v1)
		})
	}
}

func nodeLossDrill(ctx context.Context, t *testing.T, c kubernetes.Interface, e *edgeLab, replicas int, image string) {
	app, host := nodeLossApp(replicas), nodeLossHost(replicas)
	addr := placeOnWWWAnnouncedAddress(ctx, t, c, nodeLossNS, app)
	dir := t.TempDir()
	spec := helloSpecFor(app, nodeLossNS, replicas, 3, blueGreenStrategy, host)
	resend := cmp.Or(os.Getenv(nodeLossResendEnv), "1s")
	if resend != "off" {
		spec = strings.Replace(spec, "hosts: ["+host+"]", "hosts: ["+host+"]\n    resendAfter: "+resend, 1)
	}
	t.Logf("%s: resendAfter %s at the edge (%s)", app, resend, nodeLossResendEnv)
	if err := os.WriteFile(filepath.Join(dir, "tsys-ci.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if code, out := promoteNamed(t, dir, app, "--image", image); code != 0 {
		t.Fatalf("promote %s v1: exit %d\n%s", app, code, out)
	}
	svc, err := c.CoreV1().Services(nodeLossNS).Get(ctx, app, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := svc.Annotations[rollout.AnnotationLBIPs]; got != addr || len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service %s/%s: address %q and ports %v, want the address the test placed it on (%s) and one port", nodeLossNS, app, got, svc.Spec.Ports, addr)
	}
	direct := fmt.Sprintf("http://%s:%d/", addr, svc.Spec.Ports[0].Port)
	answersFrom(ctx, t, direct, 1)
	t.Logf("%s live with %d replicas at %s in %s", app, replicas, direct, time.Since(start).Round(100*time.Millisecond))

	if code, out := e.sync(t); code != 0 {
		t.Fatalf("edge sync: exit %d\n%s", code, out)
	}
	e.reaches(t, host, app)
	states, err := e.serverStates()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("edge servers (show stat): %s", describeStates(states))

	// The node frozen: the one announcing the address, with a replica.
	announcer, _ := waitAnnouncer(ctx, t, c, app, "")
	if !strings.HasPrefix(announcer, "www") {
		t.Fatalf("%s is announced from %s, not a www node: MetalLB's choice of node differs from what placeOnWWWAnnouncedAddress computed (sha256 of node#address, lowest first)", addr, announcer)
	}
	victim := ensureReplicaOn(ctx, t, c, app, replicas, announcer)
	t.Logf("%s announced from %s, which holds replica %s", addr, announcer, victim.Name)

	tl := &drillLog{}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	wc := watchClient(t)
	tl.watchNamespace(watchCtx, t, nodeLossNS)
	announcements := watchAnnouncements(watchCtx, t, wc, app, tl)
	edgeLoad := startLoadWith("https://"+host+"/", e.clients(t, nil, host))
	directLoad := startLoad(direct)
	moreAnswers(t, edgeLoad, 100)
	moreAnswers(t, directLoad, 100)
	downs := e.downs()

	// --- the freeze: until the app is answered normally again and is back
	// at full strength (the frozen node's pod evicted and replaced), so
	// that every run brings the node back at the same point ---
	frozen := time.Now()
	tl.mark("%s stops (%s)", announcer, stopMode())
	stopNode(t, announcer, stopMode())
	notReady := watchNotReady(watchCtx, c, announcer, frozen)
	dropped := waitEndpointsWithout(ctx, t, c, app, announcer, 2*time.Minute)
	tl.mark("endpoints of %s without %s", app, announcer)
	recovered := waitQuiet(ctx, t, 90*time.Second, edgeLoad, directLoad)
	full := waitFullStrength(ctx, t, c, app, replicas, announcer, 2*time.Minute)
	tl.mark("%s at full strength (%d ready endpoints) without %s", app, replicas, announcer)

	// --- the node back ---
	back := time.Now()
	tl.mark("%s starts again", announcer)
	if err := theLab.StartNode(ctx, announcer); err != nil {
		t.Fatalf("starting %s again: %v", announcer, err)
	}
	if err := theLab.WaitNodesReadySince(ctx, back, 3*time.Minute, announcer); err != nil {
		t.Fatalf("%s did not come back: %v", announcer, err)
	}
	readyAgain := time.Since(back)
	tl.mark("%s Ready", announcer)
	_, reannounced := waitAnnouncer(ctx, t, c, app, announcer)
	tl.mark("%s announced from %s again", addr, announcer)
	waitQuiet(ctx, t, 90*time.Second, edgeLoad, directLoad)
	stopWatch()
	<-announcements

	t.Logf("%d replicas, %s (announcing %s, holding %s) frozen at %s: node not Ready %s after, endpoints without it %s after, every client answered under %s for %s %s after, full strength (%d ready endpoints elsewhere) %s after; started again then, Ready %s later, the address announced from it again %s after the start; the edge marked a server DOWN %d times",
		replicas, announcer, addr, victim.Name, frozen.UTC().Format("15:04:05.000"), durationOrNever(notReady), dropped.Sub(frozen).Round(100*time.Millisecond),
		slowRequest, quietWindow, recovered.Sub(frozen).Round(100*time.Millisecond), replicas, full.Sub(frozen).Round(100*time.Millisecond),
		readyAgain.Round(100*time.Millisecond), reannounced.Sub(back).Round(100*time.Millisecond), e.downs()-downs)
	_, _, _ = edgeLoad.finish(t)
	_, _, _ = directLoad.finish(t)
	for _, x := range []struct {
		name string
		l    *load
	}{{"through the edge", edgeLoad}, {"directly on " + addr, directLoad}} {
		during, after := drillNumbers(x.l, frozen, back)
		t.Logf("NODELOSS replicas=%d %s: frozen: %s | back: %s", replicas, x.name, during, after)
		addFailureRuns(tl, x.l, x.name)
	}
	tl.log(t, fmt.Sprintf("the freeze of %s (%d replicas)", announcer, replicas))

	// The app answers at the end, both ways.
	if got := sample(t, direct, 20); got["v1"] != 20 {
		t.Errorf("directly after the drill: 20 requests got %v, want v1 alone", got)
	}
	hc := e.clients(t, nil, host)["new-connection"]
	for i := 0; i < 20; i++ {
		if _, err := get(hc, "https://"+host+"/"); err != nil {
			t.Errorf("request %d through the edge after the drill: %v", i, err)
		}
	}
}

// placeOnWWWAnnouncedAddress gives app a place on the promote pool (before
// its first promote; an app keeps its place) on an address that MetalLB
// announces from a www node, so that the node announcing it can hold a
// replica: MetalLB v0.13.12's layer-2 speakers rank the nodes by
// sha256(node + "#" + address) and the lowest announces
// (speaker/layer2_controller.go, ShouldAnnounce). Speakers run on all six
// nodes, and the pool's first address (where promote puts new apps) is
// announced from a db node, which holds no app pods. It returns the address.
func placeOnWWWAnnouncedAddress(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, app string) string {
	t.Helper()
	var nodes []string
	for _, n := range lab.Nodes {
		nodes = append(nodes, n.Name)
	}
	key := rollout.AppKey(ns, app)
	var addr string
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := c.CoreV1().ConfigMaps(rollout.DefaultAllocNamespace).Get(ctx, rollout.DefaultAllocName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var pool rollout.Pool
		if err := json.Unmarshal([]byte(cm.Data[rollout.PoolKey]), &pool); err != nil {
			return fmt.Errorf("pool %s: %w", rollout.PoolKey, err)
		}
		allocs := map[string]rollout.Allocation{}
		if raw := cm.Data[rollout.AllocationsKey]; raw != "" {
			if err := json.Unmarshal([]byte(raw), &allocs); err != nil {
				return fmt.Errorf("allocations %s: %w", rollout.AllocationsKey, err)
			}
		}
		if al, ok := allocs[key]; ok {
			if first := metalLBRanking(al.Address, nodes)[0]; !strings.HasPrefix(first, "www") {
				return fmt.Errorf("%s already has its place at %s, announced from %s (not a www node): remove %q from %s in ConfigMap %s/%s",
					key, al.Address, first, key, rollout.AllocationsKey, rollout.DefaultAllocNamespace, rollout.DefaultAllocName)
			}
			addr = al.Address
			return nil
		}
		used := map[string]map[int32]bool{}
		for _, al := range allocs {
			if used[al.Address] == nil {
				used[al.Address] = map[int32]bool{}
			}
			for _, p := range al.Ports {
				used[al.Address][p] = true
			}
		}
		for _, a := range poolAddresses(t, pool) {
			if !strings.HasPrefix(metalLBRanking(a, nodes)[0], "www") {
				continue
			}
			for p := pool.Ports.Min; p <= pool.Ports.Max; p++ {
				if used[a][p] {
					continue
				}
				allocs[key] = rollout.Allocation{Address: a, Ports: map[string]int32{"http": p}}
				data, err := json.MarshalIndent(allocs, "", "  ")
				if err != nil {
					return err
				}
				next := cm.DeepCopy()
				next.Data[rollout.AllocationsKey] = string(data)
				if _, err := c.CoreV1().ConfigMaps(cm.Namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil {
					return err
				}
				addr = a
				return nil
			}
		}
		return fmt.Errorf("no address of the pool %v with a free port is announced from a www node", pool.Addresses)
	})
	if err != nil {
		t.Fatalf("placing %s on an address a www node announces: %v", key, err)
	}
	t.Logf("%s placed on %s (MetalLB's ranking of the nodes for it: %v)", key, addr, metalLBRanking(addr, nodes))
	return addr
}

// metalLBRanking is the order in which MetalLB v0.13.12's layer-2 speakers
// take over address: the first live one announces it.
func metalLBRanking(address string, nodes []string) []string {
	out := slices.Clone(nodes)
	sort.Slice(out, func(i, j int) bool {
		hi := sha256.Sum256([]byte(out[i] + "#" + address))
		hj := sha256.Sum256([]byte(out[j] + "#" + address))
		return bytes.Compare(hi[:], hj[:]) < 0
	})
	return out
}

// poolAddresses expands the pool's entries (addresses and first-last
// ranges, as the lab's pool is written).
func poolAddresses(t *testing.T, pool rollout.Pool) []string {
	t.Helper()
	var out []string
	for _, entry := range pool.Addresses {
		from, to, isRange := strings.Cut(entry, "-")
		first, err1 := netip.ParseAddr(strings.TrimSpace(from))
		last, err2 := first, error(nil)
		if isRange {
			last, err2 = netip.ParseAddr(strings.TrimSpace(to))
		}
		if err1 != nil || err2 != nil || last.Less(first) {
			t.Fatalf("pool entry %q: the drill reads addresses and first-last ranges only", entry)
		}
		for a := first; ; a = a.Next() {
			out = append(out, a.String())
			if a == last {
				break
			}
		}
	}
	return out
}

func describeStates(states map[string]string) string {
	var parts []string
	for k, v := range states {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// announcement is MetalLB's latest "nodeAssigned" event of a Service.
func announcement(ctx context.Context, c kubernetes.Interface, app string) (string, error) {
	evs, err := c.CoreV1().Events(nodeLossNS).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Service,involvedObject.name=" + app + ",reason=nodeAssigned"})
	if err != nil {
		return "", err
	}
	if len(evs.Items) == 0 {
		return "", fmt.Errorf("no nodeAssigned event yet")
	}
	sort.Slice(evs.Items, func(i, j int) bool {
		a, b := evs.Items[i], evs.Items[j]
		if !a.LastTimestamp.Equal(&b.LastTimestamp) {
			return a.LastTimestamp.Before(&b.LastTimestamp)
		}
		ra, _ := strconv.ParseInt(a.ResourceVersion, 10, 64)
		rb, _ := strconv.ParseInt(b.ResourceVersion, 10, 64)
		return ra < rb
	})
	return announcedNode(evs.Items[len(evs.Items)-1].Message), nil
}

// announcedNode reads the node out of `announcing from node "www1" with
// protocol "layer2"`.
func announcedNode(msg string) string {
	_, rest, ok := strings.Cut(msg, `from node "`)
	if !ok {
		return ""
	}
	node, _, _ := strings.Cut(rest, `"`)
	return node
}

// waitAnnouncer waits until MetalLB's speakers say which node announces the
// app's address (want, if not empty) and returns it and when it was seen.
func waitAnnouncer(ctx context.Context, t *testing.T, c kubernetes.Interface, app, want string) (string, time.Time) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		node, err := announcement(ctx, c, app)
		if err == nil && node != "" && (want == "" || node == want) {
			return node, time.Now()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("MetalLB did not say it announces %s/%s from %s within 2m (its latest nodeAssigned event names %q, %v): see the speakers' logs (kubectl -n metallb-system logs -l component=speaker)",
				nodeLossNS, app, orAny(want), node, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func orAny(node string) string {
	if node == "" {
		return "any node"
	}
	return node
}

// watchAnnouncements marks every nodeAssigned event of the app in the drill
// log until ctx ends; the channel is closed then.
func watchAnnouncements(ctx context.Context, t *testing.T, c kubernetes.Interface, app string, tl *drillLog) <-chan struct{} {
	t.Helper()
	w, err := c.CoreV1().Events(nodeLossNS).Watch(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Service,involvedObject.name=" + app})
	if err != nil {
		t.Fatalf("watching the events of Service %s/%s: %v", nodeLossNS, app, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				if e, ok := ev.Object.(*corev1.Event); ok && ev.Type != "DELETED" {
					tl.mark("Service event %s: %s (count %d, last %s)", e.Reason, e.Message, e.Count, e.LastTimestamp.UTC().Format("15:04:05"))
				}
			}
		}
	}()
	return done
}

// appPods lists the app's pods that run and are not being deleted.
func appPods(ctx context.Context, c kubernetes.Interface, app string) ([]corev1.Pod, error) {
	pods, err := c.CoreV1().Pods(nodeLossNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + app})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out = append(out, p)
		}
	}
	return out, nil
}

// ensureReplicaOn returns the app's pod on node. With fewer replicas than
// www nodes the scheduler may have left node empty: then one replica is
// moved there (its node cordoned, the pod deleted, the replacement goes to
// the empty node by the app's one-per-node spread; the node uncordoned).
func ensureReplicaOn(ctx context.Context, t *testing.T, c kubernetes.Interface, app string, replicas int, node string) corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	testenv.Eventually(t, fmt.Sprintf("%d running pods of %s/%s", replicas, nodeLossNS, app), 2*time.Minute, func() bool {
		var err error
		pods, err = appPods(ctx, c, app)
		return err == nil && len(pods) == replicas
	})
	for _, p := range pods {
		if p.Spec.NodeName == node {
			return p
		}
	}
	move := pods[0]
	from := move.Spec.NodeName
	cordon := func(on bool) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			n, err := c.CoreV1().Nodes().Get(ctx, from, metav1.GetOptions{})
			if err != nil {
				return err
			}
			n.Spec.Unschedulable = on
			_, err = c.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
			return err
		})
	}
	if err := cordon(true); err != nil {
		t.Fatalf("cordoning %s to move %s's pod to %s: %v", from, app, node, err)
	}
	t.Cleanup(func() {
		if err := cordon(false); err != nil {
			t.Errorf("uncordoning %s: %v (run kubectl uncordon %s)", from, err, from)
		}
	})
	if err := c.CoreV1().Pods(nodeLossNS).Delete(ctx, move.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting pod %s to move it to %s: %v", move.Name, node, err)
	}
	var moved corev1.Pod
	testenv.Eventually(t, fmt.Sprintf("a ready pod of %s on %s (moved from %s)", app, node, from), 2*time.Minute, func() bool {
		ps, err := appPods(ctx, c, app)
		if err != nil {
			return false
		}
		for _, p := range ps {
			if p.Spec.NodeName == node && podReady(p) {
				moved = p
				return true
			}
		}
		return false
	})
	if err := cordon(false); err != nil {
		t.Fatalf("uncordoning %s: %v", from, err)
	}
	// The moved pod serves before the drill starts.
	waitEndpointsReady(ctx, t, c, app, replicas, node, 2*time.Minute)
	t.Logf("moved a replica of %s from %s to %s (the node announcing its address)", app, from, node)
	return moved
}

func podReady(p corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// readyEndpoints counts the app's ready endpoints, and those on node.
func readyEndpoints(ctx context.Context, c kubernetes.Interface, app, node string) (all, onNode int, err error) {
	list, err := c.DiscoveryV1().EndpointSlices(nodeLossNS).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + app})
	if err != nil {
		return 0, 0, err
	}
	for _, s := range list.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready == nil || !*ep.Conditions.Ready {
				continue
			}
			all++
			if ep.NodeName != nil && *ep.NodeName == node {
				onNode++
			}
		}
	}
	return all, onNode, nil
}

// waitEndpointsWithout waits until no ready endpoint of the app is on node
// and returns when that was seen.
func waitEndpointsWithout(ctx context.Context, t *testing.T, c kubernetes.Interface, app, node string, within time.Duration) time.Time {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("the endpoints of %s/%s without a ready address on %s", nodeLossNS, app, node), within, func() bool {
		_, on, err := readyEndpoints(ctx, c, app, node)
		return err == nil && on == 0
	})
	return time.Now()
}

// waitEndpointsReady waits until the app has replicas ready endpoints, one
// of them on node (unless the app's pod there is gone: evicted and replaced
// elsewhere while the node was away), and returns when that was seen.
func waitEndpointsReady(ctx context.Context, t *testing.T, c kubernetes.Interface, app string, replicas int, node string, within time.Duration) time.Time {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("%d ready endpoints of %s/%s, one on %s if a pod of it runs there", replicas, nodeLossNS, app, node), within, func() bool {
		all, on, err := readyEndpoints(ctx, c, app, node)
		if err != nil || all != replicas {
			return false
		}
		if on > 0 {
			return true
		}
		pods, err := appPods(ctx, c, app)
		if err != nil {
			return false
		}
		for _, p := range pods {
			if p.Spec.NodeName == node {
				return false
			}
		}
		return true
	})
	return time.Now()
}

// waitQuiet waits until every client of every load has been answered, and
// only at normal latency (under slowRequest), for quietWindow. It returns
// when it saw that; if that does not happen within the bound, it says so
// and returns (the drill counts, it does not assert).
func waitQuiet(ctx context.Context, t *testing.T, within time.Duration, loads ...*load) time.Time {
	t.Helper()
	quiet := func() bool {
		now := time.Now()
		for _, l := range loads {
			l.mu.Lock()
			latest := map[string]time.Time{}
			bad := false
			for i := len(l.hits) - 1; i >= 0; i-- {
				h := l.hits[i]
				if h.at.Before(now.Add(-quietWindow)) {
					break
				}
				if h.version == "" || h.at.Sub(h.began) >= slowRequest {
					bad = true
					break
				}
				if latest[h.client].IsZero() {
					latest[h.client] = h.at
				}
			}
			l.mu.Unlock()
			if bad {
				return false
			}
			// Each client answered well within the last half second: none
			// is stuck on a request that has not come back yet.
			for _, name := range []string{"keep-alive", "new-connection"} {
				if now.Sub(latest[name]) > 500*time.Millisecond {
					return false
				}
			}
		}
		return true
	}
	deadline := time.Now().Add(within)
	for !quiet() {
		if time.Now().After(deadline) {
			t.Logf("the loads were not answered at normal latency for %s within %s: going on (counted, not asserted)", quietWindow, within)
			return time.Now()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for the loads to be answered at normal latency: %v", ctx.Err())
		case <-time.After(testenv.PollInterval * 10):
		}
	}
	return time.Now()
}

// drillNumbers sums up one load: the requests that ended after the freeze
// and were sent before the node was started again, and those sent after.
func drillNumbers(l *load, frozen, back time.Time) (during, after string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	type sum struct {
		total, failed int
		byClient      map[string]int
		slowest       time.Duration // of every request, failed ones included
		slowestOK     time.Duration // of the answered ones
		lastBad       time.Time
		pods          map[string]int
	}
	d, a := sum{byClient: map[string]int{}, pods: map[string]int{}}, sum{byClient: map[string]int{}, pods: map[string]int{}}
	for _, h := range l.hits {
		var s *sum
		switch {
		case !h.began.Before(back):
			s = &a
		case h.at.After(frozen):
			s = &d
		default:
			continue
		}
		s.total++
		took := h.at.Sub(h.began)
		s.slowest = max(s.slowest, took)
		if h.version == "" {
			s.failed++
			s.byClient[h.client]++
		} else {
			s.pods[h.pod]++
			s.slowestOK = max(s.slowestOK, took)
		}
		if h.version == "" || took >= slowRequest {
			s.lastBad = h.at
		}
	}
	normal := "every request at normal latency"
	if !d.lastBad.IsZero() {
		normal = "every request at normal latency from +" + d.lastBad.Sub(frozen).Round(10*time.Millisecond).String()
	}
	during = fmt.Sprintf("%d requests, %d failed (keep-alive %d, new-connection %d), slowest %s (answered: %s), %s",
		d.total, d.failed, d.byClient["keep-alive"], d.byClient["new-connection"], d.slowest.Round(time.Millisecond), d.slowestOK.Round(time.Millisecond), normal)
	after = fmt.Sprintf("%d requests, %d failed (keep-alive %d, new-connection %d), slowest %s (answered: %s), answers by pod %v",
		a.total, a.failed, a.byClient["keep-alive"], a.byClient["new-connection"], a.slowest.Round(time.Millisecond), a.slowestOK.Round(time.Millisecond), a.pods)
	return during, after
}

// watchClient is a client for watches: the tests' client gives up on any
// request after 5 s, a watch included.
func watchClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg, err := theLab.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFullStrength waits until the app has replicas ready endpoints, none
// on node, and returns when that was seen.
func waitFullStrength(ctx context.Context, t *testing.T, c kubernetes.Interface, app string, replicas int, node string, within time.Duration) time.Time {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("%d ready endpoints of %s/%s, none on %s", replicas, nodeLossNS, app, node), within, func() bool {
		all, on, err := readyEndpoints(ctx, c, app, node)
		return err == nil && on == 0 && all == replicas
	})
	return time.Now()
}

// addFailureRuns puts the load's failed requests into the drill log, one
// line per run of failures of one client with the same error (a dead
// backend fails hundreds of requests alike).
func addFailureRuns(tl *drillLog, l *load, what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	type run struct {
		first, last hit
		n           int
	}
	open := map[string]*run{}
	flush := func(client string) {
		r := open[client]
		if r == nil {
			return
		}
		delete(open, client)
		tl.markAt(r.first.began, fmt.Sprintf("FAILED %s, client %s: %d request(s) sent from here to %s, each failed after %s-%s: %s", what, client, r.n,
			r.last.began.UTC().Format("15:04:05.000"), r.first.at.Sub(r.first.began).Round(time.Millisecond), r.last.at.Sub(r.last.began).Round(time.Millisecond), r.first.err))
	}
	for _, h := range l.hits {
		if h.version != "" {
			flush(h.client)
			continue
		}
		if r := open[h.client]; r != nil && errorKind(r.first.err) == errorKind(h.err) {
			r.last, r.n = h, r.n+1
			continue
		}
		flush(h.client)
		open[h.client] = &run{first: h, last: h, n: 1}
	}
	for client := range open {
		flush(client)
	}
}

// errorKind is an error text without the parts that differ between
// requests failing alike (source ports).
func errorKind(err string) string {
	if i := strings.Index(err, "read tcp "); i >= 0 {
		return err[:i] + "read tcp"
	}
	if i := strings.Index(err, "dial tcp "); i >= 0 {
		return err[:i] + "dial tcp" + err[strings.LastIndex(err, ":"):]
	}
	return err
}

// durationOrNever is the value watchNotReady sent, if it did.
func durationOrNever(ch <-chan time.Duration) string {
	select {
	case d, ok := <-ch:
		if ok {
			return d.Round(100 * time.Millisecond).String()
		}
	default:
	}
	return "(not seen)"
}
