package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/pipeline/notify"
	"github.com/tsys-group/tsys-ci/rollout"
)

// defaultNotifyWait bounds how long promote waits at exit for notices
// still being delivered (retried with back-off meanwhile).
const defaultNotifyWait = 10 * time.Second

// notifyFlags are promote's and abort's: the same notifications: YAML
// serve.yaml holds, so a run from Jenkins or a laptop tells the same
// people.
func notifyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "notify-config", EnvVars: []string{"TSYS_CI_NOTIFY_CONFIG"}, Usage: "YAML file with notifications: (as in serve.yaml) to tell of this promote"},
		&cli.DurationFlag{Name: "notify-wait", Value: defaultNotifyWait, Usage: "at most this long at exit for notices still being delivered"},
	}
}

// notices tells a CLI promote's moments to the configured targets; a nil
// *notices (no --notify-config) tells no one.
type notices struct {
	n    *notify.Notifier
	base notify.Event
	wait time.Duration
	errw io.Writer
}

// newNotices reads --notify-config; nil when it is not set.
func newNotices(c *cli.Context, spec *rollout.AppSpec, strategy string) (*notices, error) {
	path := c.String("notify-config")
	if path == "" {
		return nil, nil
	}
	targets, err := notify.LoadFile(path)
	if err != nil {
		return nil, err
	}
	if strategy == "" {
		strategy = spec.Strategy.Type
	}
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return &notices{
		n:    notify.New(targets, notify.Options{Log: log}),
		base: notify.Event{Namespace: spec.Namespace, App: spec.Name, Strategy: strategy, By: runBy(os.Getenv), Source: "promote"},
		wait: c.Duration("notify-wait"), errw: c.App.ErrWriter,
	}, nil
}

// runBy says who runs this promote: the Jenkins build, else user@host.
func runBy(getenv func(string) string) string {
	if job, build := getenv("JOB_NAME"), getenv("BUILD_NUMBER"); job != "" && build != "" {
		by := "jenkins: " + job + " #" + build
		if u := getenv("BUILD_URL"); u != "" {
			by += " (" + u + ")"
		}
		return by
	}
	host, _ := os.Hostname()
	user := getenv("USER")
	if user == "" {
		user = "unknown"
	}
	return user + "@" + host
}

func (n *notices) tell(kind, image, previous, reason string) {
	if n == nil {
		return
	}
	ev := n.base
	ev.Kind, ev.Image, ev.Previous, ev.Reason, ev.At = kind, image, previous, reason, time.Now().UTC()
	n.n.Notify(ev)
}

// progress is the Promoter's Progress: the switch.
func (n *notices) progress() func(rollout.Progress) {
	if n == nil {
		return nil
	}
	return func(pr rollout.Progress) { n.tell(pr.Kind, pr.Image, pr.Previous, "") }
}

// finished tells how a promote or rollback of image ended.
func (n *notices) finished(image string, res *rollout.Result, err error) {
	if n == nil {
		return
	}
	kind, reason := outcome(res, err)
	n.tell(kind, image, "", reason)
}

// outcome maps a promote's result to a notice kind and its reason.
func outcome(res *rollout.Result, err error) (string, string) {
	var failed *rollout.ProbeFailedError
	switch {
	case errors.As(err, &failed):
		return notify.KindRolledBack, failed.Reason
	case errors.Is(err, rollout.ErrAborted):
		return notify.KindAborted, err.Error()
	case err != nil && res != nil && res.Result == rollout.ResultAborted:
		return notify.KindAborted, res.Reason
	case err != nil:
		return notify.KindRefused, err.Error()
	case res == nil:
		return notify.KindPromoted, ""
	case res.Result == rollout.ResultRolledBack:
		return notify.KindRolledBack, "rolled back by 'tsys-ci promote --rollback'"
	case res.Result == "unchanged":
		return notify.KindPromoted, "unchanged: this version was serving already"
	}
	return notify.KindPromoted, ""
}

// close waits at most --notify-wait for deliveries still under way, and
// says how many were given up; it never fails the command.
func (n *notices) close() {
	if n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.wait)
	defer cancel()
	if left := n.n.Close(ctx); left > 0 {
		fmt.Fprintf(n.errw, "warning: %d notification(s) not delivered within --notify-wait %s; the promote's result stands\n", left, n.wait)
	}
}
