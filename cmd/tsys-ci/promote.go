package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/dynamic"

	"github.com/tsys-group/tsys-ci/pipeline"
	"github.com/tsys-group/tsys-ci/pipeline/notify"
	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/rollout"
)

// appFlags are the flags of promote, status and abort: the cluster and the
// app's spec.
func appFlags() []cli.Flag {
	return append(kubeFlags(),
		&cli.StringFlag{Name: "spec", Value: rollout.DefaultSpecFile, Usage: "the app spec"},
		outputFlag("text", "json"),
	)
}

func promoteCommand() *cli.Command {
	return &cli.Command{
		Name:  "promote",
		Usage: "put an image live with blue/green, canary, rolling or recreate; roll back on failed probes",
		UsageText: "tsys-ci promote APP (--image REF | --from .tsys-ci/push.json) [--spec tsys-ci.yaml] [--strategy S] (--verify-key PUBFILE | --allow-unsigned) [--report junit.xml] [--notify-config FILE] [-o json]\n" +
			"   tsys-ci promote APP --rollback [--to N|DIGEST] [--notify-config FILE]",
		Flags: slices.Concat(appFlags(), imagePolicyFlags(), notifyFlags(), []cli.Flag{
			&cli.StringFlag{Name: "image", Usage: "image to promote, by digest (HOST/PROJECT/NAME@sha256:...)"},
			&cli.StringFlag{Name: "from", Usage: "push result to take the image from (" + pipeline.DefaultPushResult + ")"},
			&cli.StringFlag{Name: "revision", EnvVars: []string{"GIT_COMMIT"}, Usage: "commit of the image, for the history"},
			&cli.StringFlag{Name: "strategy", Usage: "override the spec: blueGreen, canary, rolling or recreate"},
			&cli.StringFlag{Name: "report", Usage: "write a JUnit report of the probes here"},
			&cli.BoolFlag{Name: "rollback", Usage: "put the previous version back instead"},
			&cli.StringFlag{Name: "to", Usage: "with --rollback: the recorded version to put back, by its number in 'tsys-ci status' ([1] is the newest) or its digest; promoted again with the strategy and probes"},
			&cli.StringFlag{Name: "pool-namespace", Value: rollout.DefaultAllocNamespace, Usage: "namespace of the load-balancer pool ConfigMap"},
			&cli.StringFlag{Name: "pool-configmap", Value: rollout.DefaultAllocName, Usage: "name of the load-balancer pool ConfigMap"},
			verifiedDigestsFlag(),
		}),
		Before: oneArg("the app's name"),
		Action: runPromote,
	}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "what runs, what is in progress, and the history of versions of an app",
		UsageText: "tsys-ci status APP [--spec tsys-ci.yaml | --namespace NS] [-o json]",
		Flags:     append(appFlags(), namespaceFlag("the app's namespace, to ask without its spec (default: the app's name)")),
		Before:    oneArg("the app's name"),
		Action:    runStatus,
	}
}

func abortCommand() *cli.Command {
	return &cli.Command{
		Name:      "abort",
		Usage:     "stop a promote in progress and roll it back",
		UsageText: "tsys-ci abort APP [--spec tsys-ci.yaml] [--notify-config FILE]",
		Flags:     append(appFlags(), notifyFlags()...),
		Before:    oneArg("the app's name"),
		Action:    runAbort,
	}
}

// promoteFlags is what promote was asked to do.
type promoteFlags struct {
	app, spec, image, from, revision, strategy, report, to string
	rollback                                               bool
	policy                                                 imagePolicy
	poolNamespace, poolConfigMap                           string
	poolSet                                                bool
}

func promoteFlagsFrom(c *cli.Context) promoteFlags {
	return promoteFlags{
		app: c.Args().First(), spec: c.String("spec"), image: c.String("image"), from: c.String("from"),
		revision: c.String("revision"), strategy: c.String("strategy"), report: c.String("report"),
		rollback: c.Bool("rollback"), to: c.String("to"), policy: imagePolicyFrom(c),
		poolNamespace: c.String("pool-namespace"), poolConfigMap: c.String("pool-configmap"),
		poolSet: c.IsSet("pool-namespace") || c.IsSet("pool-configmap"),
	}
}

// validate checks the flags against each other, without I/O.
func (f promoteFlags) validate() error {
	if f.to != "" && !f.rollback {
		return usageErrorf("--to %s names a recorded version to roll back to: pass it with --rollback", f.to)
	}
	if f.rollback {
		return nil // the version comes from the cluster's state
	}
	switch {
	case f.image != "" && f.from != "":
		return usageErrorf("pass --image or --from, not both")
	case f.image == "" && f.from == "":
		return usageErrorf("say what to promote: --image HOST/PROJECT/NAME@sha256:... or --from " + pipeline.DefaultPushResult)
	}
	return f.policy.validate()
}

// loadAppSpec reads the spec, which must describe the app named.
func loadAppSpec(app, path string) (*rollout.AppSpec, error) {
	spec, err := rollout.LoadSpec(path)
	if err != nil {
		return nil, asUsage(err)
	}
	if spec.Name != app {
		return nil, usageErrorf("%s describes app %q, not %q; pass --spec with the right file", path, spec.Name, app)
	}
	return spec, nil
}

// newPromoter connects to the cluster of the kubeconfig and returns the
// Promoter promote and abort share; the lease holder names this host and
// process, so a lease left behind says who held it.
func newPromoter(c *cli.Context, f promoteFlags) (*rollout.Promoter, error) {
	cfg, cs, err := kubeConnect(c)
	if err != nil {
		return nil, err
	}
	probe, err := rollout.ServiceProxy(cfg)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	alloc := &rollout.Allocator{Client: cs, Namespace: rollout.DefaultAllocNamespace, Name: rollout.DefaultAllocName}
	if f.poolSet {
		alloc.Namespace, alloc.Name = f.poolNamespace, f.poolConfigMap
	}
	checkSource, err := f.policy.sourceChecker(c.App.ErrWriter)
	if err != nil {
		return nil, err
	}
	// The gateway's objects of an api: section (Traefik's CRDs).
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a Kubernetes client: %w", err)
	}
	return &rollout.Promoter{
		Client: cs, Dynamic: dyn, Clock: rollout.RealClock{}, Out: c.App.ErrWriter, Allocator: alloc, Probe: probe,
		Holder:      fmt.Sprintf("%s/%d", host, os.Getpid()),
		EdgeStats:   edgeStatsReader(os.Getenv),
		CheckSource: checkSource,
		// The spec's fromEnv values come from this process's environment
		// (envwarden, Jenkins' credentials binding).
		LookupEnv: os.LookupEnv,
	}, nil
}

// edgeStatsReader reads the edge's HAProxy stats for promote's analysis,
// with the stats frontend's basic auth from the environment when set.
func edgeStatsReader(getenv func(string) string) *rollout.EdgeStatsReader {
	return &rollout.EdgeStatsReader{User: getenv("TSYS_CI_EDGE_STATS_USER"), Password: getenv("TSYS_CI_EDGE_STATS_PASSWORD")}
}

func runPromote(c *cli.Context) error {
	f := promoteFlagsFrom(c)
	spec, err := loadAppSpec(f.app, f.spec)
	if err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	if !f.rollback {
		// A variable the spec reads from this environment that is not
		// set refuses the promote before anyone is told it started.
		if _, err := rollout.EnvSecretData(spec, os.LookupEnv); err != nil {
			return err
		}
	}
	tell, err := newNotices(c, spec, f.strategy)
	if err != nil {
		return err
	}
	// Delivery runs beside the promote; at exit it gets --notify-wait.
	defer tell.close()
	req := rollout.Request{Spec: spec, Strategy: f.strategy, Revision: f.revision}
	if !f.rollback {
		image := f.image
		if f.from != "" {
			pushed, err := pipeline.ReadPushResult(f.from)
			if err != nil {
				return asUsage(err)
			}
			image = pushed.Image
		}
		if f.policy.onVerified, err = shareVerified(c, c.String("verified-digests")); err != nil {
			return err
		}
		verify, err := f.policy.verifier("tsys-ci promote", false, c.App.ErrWriter)
		if err != nil {
			return err
		}
		if req.Image, err = verify(c.Context, image); err != nil {
			var bad badInput
			if errors.As(err, &bad) {
				return err
			}
			err = fmt.Errorf("refusing to promote %s: %w", image, err)
			tell.tell(notify.KindRefused, image, "", err.Error())
			return err
		}
	}
	p, err := newPromoter(c, f)
	if err != nil {
		return err
	}
	p.Progress = tell.progress()
	shown := req.Image
	if f.rollback {
		shown = "the previous version"
		if f.to != "" {
			shown = "recorded version " + f.to
		}
	}
	tell.tell(notify.KindStarted, shown, "", "")
	// Ctrl-C or Jenkins aborting the build stops between steps, leaves the
	// phase in the cluster and frees the lease, so a re-run need not wait.
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var res *rollout.Result
	if f.rollback {
		if f.to != "" {
			res, err = p.RollbackTo(ctx, spec, f.to)
		} else {
			res, err = p.Rollback(ctx, spec)
		}
		if res != nil && res.Image != "" {
			shown = res.Image
		}
	} else {
		res, err = p.Promote(ctx, req)
	}
	tell.finished(shown, res, err)
	if res != nil {
		if werr := writeResult(c, f.report, res); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

func writeResult(c *cli.Context, report string, res *rollout.Result) error {
	if report != "" {
		if err := writeJUnit(report, res); err != nil {
			return err
		}
	}
	return writeOutput(c, res, func(w io.Writer) error {
		line := fmt.Sprintf("%s: %s %s (%s, %s)", res.App, res.Result, res.Image, res.Strategy, res.Duration.Round(1e9))
		if res.Reason != "" {
			line += ": " + res.Reason
		}
		_, err := fmt.Fprintln(w, line)
		return err
	})
}

func runStatus(c *cli.Context) error {
	app, ns, err := appAndNamespace(c)
	if err != nil {
		return err
	}
	_, cs, err := kubeConnect(c)
	if err != nil {
		return err
	}
	st, err := rollout.Status(c.Context, cs, ns, app)
	if err != nil {
		return err
	}
	// A staged app (serve.yaml stages) has its record beside its first
	// stage's state: which stage runs which digest, what waits for what.
	stages, err := serve.LoadStageRecord(c.Context, cs, ns, app)
	if err != nil {
		return err
	}
	var out any = st
	if stages != nil {
		out = stagedStatus{State: st, Stages: stages}
	}
	return writeOutput(c, out, func(w io.Writer) error {
		printStatus(w, app, st)
		if stages != nil {
			printStages(w, stages)
		}
		return nil
	})
}

// stagedStatus is status -o json of a staged app: the rollout state's
// fields as for any app, and the stage record under "stages".
type stagedStatus struct {
	*rollout.State
	Stages *serve.StageRecord `json:"stages"`
}

func printStatus(w io.Writer, app string, st *rollout.State) {
	if st == nil {
		fmt.Fprintf(w, "%s: never promoted\n", app)
		return
	}
	active := "nothing"
	if st.Active != nil {
		active = fmt.Sprintf("%s on %s", st.Active.Image, st.Active.Color)
	}
	fmt.Fprintf(w, "%s: %s; serving %s\n", app, st.Phase, active)
	if st.Candidate != nil {
		fmt.Fprintf(w, "  in progress: %s on %s (%s, since %s): %s\n", st.Candidate.Image, st.Candidate.Color, st.Strategy, st.StartedAt.Format("2006-01-02 15:04:05Z"), st.Message)
	}
	if t := st.EdgeTraffic; t != nil && st.InProgress() {
		fmt.Fprintf(w, "  at the edge (last %.0f s, read %s):\n", t.WindowSeconds, t.At.Format("2006-01-02 15:04:05Z"))
		for _, v := range t.Versions {
			weights := ""
			if asked, ok := st.EdgeWeights[v.Color]; ok {
				weights = fmt.Sprintf("weight asked %d%%", asked)
			}
			if v.WeightGiven != nil {
				weights = strings.TrimPrefix(fmt.Sprintf("%s, given %d%%", weights, *v.WeightGiven), ", ")
			}
			if weights != "" {
				weights += "; "
			}
			fmt.Fprintf(w, "    %s %s: %s%d requests, %d failed (%s), response time %d ms\n", v.Color, v.Image, weights, v.Requests, v.Failed, v.ErrorRateString(), v.ResponseTimeMs)
		}
	}
	if st.Previous != nil {
		fmt.Fprintf(w, "  previous: %s on %s ('tsys-ci promote --rollback %s' puts it back)\n", st.Previous.Image, st.Previous.Color, app)
	}
	// Numbered from the newest: 'promote --rollback --to N' takes these.
	for i := len(st.History) - 1; i >= 0; i-- {
		h := st.History[i]
		fmt.Fprintf(w, "  [%d] %s  %-11s %s (%s) %s\n", len(st.History)-i, h.At.Format("2006-01-02 15:04:05Z"), h.Result, h.Image, h.Strategy, strings.TrimSpace(h.Reason))
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func runAbort(c *cli.Context) error {
	f := promoteFlagsFrom(c)
	spec, err := loadAppSpec(f.app, f.spec)
	if err != nil {
		return err
	}
	tell, err := newNotices(c, spec, "")
	if err != nil {
		return err
	}
	defer tell.close()
	p, err := newPromoter(c, f)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := p.Abort(ctx, spec)
	if err != nil {
		return err
	}
	if res.Result == rollout.ResultAborted {
		// Rolled back here; an abort only asked of another process is
		// told by that process when it rolls back.
		tell.tell(notify.KindAborted, "the promote in progress", "", "aborted by 'tsys-ci abort'")
	}
	fmt.Fprintf(c.App.Writer, "%s: %s\n", res.App, res.Result)
	return nil
}
