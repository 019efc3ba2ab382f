package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tsys-group/tsys-ci/test/lab"
	"github.com/tsys-group/tsys-ci/test/labaddons"
)

// stepLabAndImage: the lab with its add-ons (idempotent: quick when up), the
// tsys-ci binary, and the whiteboard's first version built, pushed, signed.
func (d *Demo) stepLabAndImage(ctx context.Context) error {
	d.say("make lab-up: six node containers, CoreDNS, MetalLB, GlusterFS storage, registry (log: .lab/demo/lab-up.log)")
	logf, err := os.Create(filepath.Join(d.dir, "lab-up.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	t := time.Now()
	r, err := labaddons.Up(ctx, labaddons.Options{Lab: lab.Options{RepoRoot: d.o.RepoRoot, Progress: logf}, Progress: logf})
	if err != nil {
		return fmt.Errorf("%w (its log: %s)", err, logf.Name())
	}
	d.lab, d.addons = r.Lab, r
	d.say("lab up in %s; registry %s, promote pool %v", round(time.Since(t)), r.Addons.Registry, r.Pool.Addresses)
	d.number(1, "lab-up (with add-ons)", round(time.Since(t)).String())

	t = time.Now()
	d.tsysci = filepath.Join(d.o.RepoRoot, "bin", "tsys-ci")
	if _, err := d.run(ctx, "go", "build", "-trimpath", "-o", d.tsysci, "./cmd/tsys-ci"); err != nil {
		return err
	}
	d.say("built %s in %s", d.tsysci, round(time.Since(t)))

	t = time.Now()
	img, err := d.buildPush(ctx, "whiteboard", "v1", "./test/whiteboard/cmd/whiteboard", whiteboardEnv...)
	if err != nil {
		return err
	}
	d.wb[0] = img
	d.say("tsys-ci build + push --sign: %s", img.Ref)
	d.number(1, "whiteboard v1 build+push+sign", round(time.Since(t)).String())
	return nil
}

// whiteboardEnv is what make whiteboard-image bakes into the image.
var whiteboardEnv = []string{"WHITEBOARD_DATA=/data", "WHITEBOARD_ADDR=:8080"}
