package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// helloSpec is the stateless app's tsys-ci.yaml: two copies, blue/green.
const helloSpec = `# The demo's stateless app (test/demo/cmd/hello), written by make demo.
name: demo-hello
replicas: 2
ports:
  - name: http
    containerPort: 8080
    expose: true
    hosts: [hello.company.example]
health:
  readiness: {http: /healthz, port: http, period: 1s}
resources:
  requests: {cpu: 10m, memory: 16Mi}
  limits: {memory: 64Mi}
shutdown:
  drain: 3s
  gracePeriod: 15s
strategy:
  type: blueGreen
  # The old copies stay this long after the switch (instant rollback while
  # they run); the load keeps going through their removal.
  blueGreen: {scaleDownDelay: 15s}
probes:
  - name: hello
    port: http
    path: /
    bodyMatch: hello
    successes: 3
    interval: 1s
    timeout: 1m
`

// stepNewVersion: the whiteboard's v2 with recreate (its outage measured
// under load, since a single writer cannot overlap with itself), then the
// stateless app promoted blue/green under load (failed requests counted).
func (d *Demo) stepNewVersion(ctx context.Context) error {
	t := time.Now()
	var err error
	if d.wb[1], err = d.buildPush(ctx, "whiteboard", "v2", "./test/whiteboard/cmd/whiteboard", whiteboardEnv...); err != nil {
		return err
	}
	d.say("built, pushed and signed whiteboard v2 in %s: %s", round(time.Since(t)), d.wb[1].Ref)

	ld := startLoad(ctx, d.wbAddr+"/api/boards/"+d.board, 2, 100*time.Millisecond)
	out, took, err := d.promote(ctx, "whiteboard", "whiteboard", d.whiteboardSpec(), d.wb[1], "")
	if err != nil {
		ld.stop()
		return err
	}
	// The load runs until the board answers again, so the outage is whole.
	if _, err := waitServed(ctx, d.wbAddr+"/api/boards/"+d.board, 2*time.Minute); err != nil {
		ld.stop()
		return err
	}
	time.Sleep(time.Second) // a few good answers after the return, so the outage has its end
	st := ld.stop()
	d.say("tsys-ci promote whiteboard v2 (recreate) in %s:\n%s", round(took), lastLines(out, 3))
	d.say("WHITEBOARD (recreate, single writer): %d of %d reads failed; unavailable for %s (old pod stopped, log closed, new pod replayed it)",
		st.Failed, st.Total, round(st.Outage))
	d.sayErrors(st)
	d.number(3, "whiteboard v2 promote (recreate)", round(took).String())
	d.number(3, "whiteboard unavailable during recreate", fmt.Sprintf("%s (%d/%d reads failed)", round(st.Outage), st.Failed, st.Total))
	if _, err := readBoard(ctx, d.wbAddr, d.board, d.res.Acked); err != nil {
		return err
	}
	d.say("the board after v2: every acknowledged stroke still there")

	// The stateless app: v1 (placed or switched back), then v2 under load.
	spec := filepath.Join(d.dir, "hello.yaml")
	if err := os.WriteFile(spec, []byte(helloSpec), 0o644); err != nil {
		return err
	}
	var hello [2]image
	for i, v := range []string{"v1", "v2"} {
		if hello[i], err = d.buildPush(ctx, "hello", v, "./test/demo/cmd/hello"); err != nil {
			return err
		}
	}
	d.say("built, pushed and signed the stateless app demo-hello v1 and v2")
	if _, took, err = d.promote(ctx, "demo-hello", "demo-hello", spec, hello[0], ""); err != nil {
		return err
	}
	d.say("tsys-ci promote demo-hello v1 (blue/green, 2 replicas) in %s", round(took))
	addr, err := d.serviceAddr(ctx, "demo-hello", "demo-hello")
	if err != nil {
		return err
	}
	if _, err := waitServed(ctx, addr+"/", 2*time.Minute); err != nil {
		return err
	}
	ld = startLoad(ctx, addr+"/", 4, 20*time.Millisecond)
	time.Sleep(2 * time.Second) // load before the switch, so the count covers it whole
	out, took, err = d.promote(ctx, "demo-hello", "demo-hello", spec, hello[1], "")
	time.Sleep(2 * time.Second)
	st = ld.stop()
	if err != nil {
		return err
	}
	d.say("tsys-ci promote demo-hello v2 (blue/green) in %s under load through %s:\n%s", round(took), addr, lastLines(out, 3))
	d.say("STATELESS APP demo-hello (blue/green, two copies): %d of %d requests failed during the switch", st.Failed, st.Total)
	d.sayErrors(st)
	d.number(3, "demo-hello v2 promote (blue/green)", round(took).String())
	d.number(3, "demo-hello failed requests during blue/green", fmt.Sprintf("%d of %d", st.Failed, st.Total))
	b, err := get(ctx, addr+"/")
	if err != nil {
		return err
	}
	d.say("demo-hello now answers: %s", trimNL(b))
	return nil
}

func (d *Demo) sayErrors(st LoadStats) {
	var ks []string
	for k := range st.Errors {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		d.say("    %dx %s", st.Errors[k], k)
	}
}

func trimNL(b []byte) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return string(b)
}
