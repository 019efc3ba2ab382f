package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/urfave/cli/v2"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tsys-group/tsys-ci/pipeline"
	"github.com/tsys-group/tsys-ci/platform"
	"github.com/tsys-group/tsys-ci/registry"
	"github.com/tsys-group/tsys-ci/rollout"
)

// clusterFlags reach the cluster and the load-balancer pool.
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kubeconfig", EnvVars: []string{"KUBECONFIG"}, Usage: "kubeconfig file (default ~/.kube/config, else in-cluster)"},
		&cli.StringFlag{Name: "spec", Value: rollout.DefaultSpecFile, Usage: "the app spec"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json"},
	}
}

func promoteCommand() *cli.Command {
	return &cli.Command{
		Name:      "promote",
		Usage:     "put an image live with blue/green, canary, rolling or recreate; roll back on failed probes",
		UsageText: "tsys-ci promote APP --image REF | --from .tsys-ci/push.json [--spec tsys-ci.yaml] [--strategy S] [--verify-key PUBFILE | --allow-unsigned] [--report junit.xml]\n   tsys-ci promote --rollback APP",
		Flags: append(clusterFlags(),
			&cli.StringFlag{Name: "image", Usage: "image to promote, by digest (HOST/PROJECT/NAME@sha256:...)"},
			&cli.StringFlag{Name: "from", Usage: "push result to take the image from (" + pipeline.DefaultPushResult + ")"},
			&cli.StringFlag{Name: "revision", EnvVars: []string{"GIT_COMMIT"}, Usage: "commit of the image, for the history"},
			&cli.StringFlag{Name: "strategy", Usage: "override the spec: blueGreen, canary, rolling or recreate"},
			&cli.StringFlag{Name: "verify-key", Usage: "public key the image's signature must verify with"},
			&cli.BoolFlag{Name: "allow-unsigned", Usage: "promote without verifying a signature"},
			&cli.StringFlag{Name: "report", Usage: "write a JUnit report of the probes here"},
			&cli.BoolFlag{Name: "rollback", Usage: "put the previous version back instead"},
			&cli.StringFlag{Name: "pool-namespace", Value: rollout.DefaultAllocNamespace, Usage: "namespace of the load-balancer pool ConfigMap"},
			&cli.StringFlag{Name: "pool-configmap", Value: rollout.DefaultAllocName, Usage: "name of the load-balancer pool ConfigMap"},
		),
		Action: runPromote,
	}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "what runs, what is in progress, and the history of versions of an app",
		UsageText: "tsys-ci status APP [--spec tsys-ci.yaml | --namespace NS] [-o json]",
		Flags: append(clusterFlags(),
			&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "the app's namespace, to ask without its spec (default: the app's name)"}),
		Action: runStatus,
	}
}

func abortCommand() *cli.Command {
	return &cli.Command{
		Name:      "abort",
		Usage:     "stop a promote in progress and roll it back",
		UsageText: "tsys-ci abort APP [--spec tsys-ci.yaml]",
		Flags:     clusterFlags(),
		Action:    runAbort,
	}
}

// appArgs reads APP and the spec, which must name the same app.
func appArgs(c *cli.Context) (*rollout.AppSpec, error) {
	if c.NArg() != 1 {
		return nil, cli.Exit(fmt.Sprintf("tsys-ci %s takes one argument, the app's name; got %q", c.Command.Name, c.Args().Slice()), 2)
	}
	app := c.Args().First()
	if err := checkPromoteOutput(c); err != nil {
		return nil, err
	}
	spec, err := rollout.LoadSpec(c.String("spec"))
	if err != nil {
		return nil, cli.Exit(err.Error(), 2)
	}
	if spec.Name != app {
		return nil, cli.Exit(fmt.Sprintf("%s describes app %q, not %q; pass --spec with the right file", c.String("spec"), spec.Name, app), 2)
	}
	return spec, nil
}

func kubeConfig(c *cli.Context) (*rest.Config, kubernetes.Interface, error) {
	cfg, err := platform.RESTConfig(c.String("kubeconfig"), "")
	if err != nil {
		return nil, nil, err
	}
	cfg.UserAgent = "tsys-ci/" + version
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("building a Kubernetes client: %w", err)
	}
	return cfg, cs, nil
}

// newPromoter connects to the cluster of the kubeconfig and returns the
// Promoter promote and abort share; the lease holder names this host and
// process, so a lease left behind says who held it.
func newPromoter(c *cli.Context) (*rollout.Promoter, error) {
	cfg, cs, err := kubeConfig(c)
	if err != nil {
		return nil, err
	}
	probe, err := rollout.ServiceProxy(cfg)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	alloc := &rollout.Allocator{Client: cs, Namespace: rollout.DefaultAllocNamespace, Name: rollout.DefaultAllocName}
	if c.IsSet("pool-namespace") || c.IsSet("pool-configmap") {
		alloc.Namespace, alloc.Name = c.String("pool-namespace"), c.String("pool-configmap")
	}
	return &rollout.Promoter{
		Client: cs, Clock: rollout.RealClock{}, Out: c.App.ErrWriter, Allocator: alloc, Probe: probe,
		Holder: fmt.Sprintf("%s/%d", host, os.Getpid()),
	}, nil
}

func runPromote(c *cli.Context) error {
	spec, err := appArgs(c)
	if err != nil {
		return err
	}
	req := rollout.Request{Spec: spec, Strategy: c.String("strategy"), Revision: c.String("revision")}
	if !c.Bool("rollback") {
		image, err := promoteImage(c)
		if err != nil {
			return err
		}
		if req.Image, err = checkSignature(c, image); err != nil {
			return err
		}
	}
	p, err := newPromoter(c)
	if err != nil {
		return err
	}
	// Ctrl-C or Jenkins aborting the build stops between steps, leaves the
	// phase in the cluster and frees the lease, so a re-run need not wait.
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var res *rollout.Result
	if c.Bool("rollback") {
		res, err = p.Rollback(ctx, spec)
	} else {
		res, err = p.Promote(ctx, req)
	}
	if res != nil {
		if werr := writeResult(c, res); werr != nil && err == nil {
			err = werr
		}
	}
	var failed *rollout.ProbeFailedError
	if errors.As(err, &failed) {
		return cli.Exit(err.Error(), 3)
	}
	return err
}

func promoteImage(c *cli.Context) (string, error) {
	image, from := c.String("image"), c.String("from")
	switch {
	case image != "" && from != "":
		return "", cli.Exit("pass --image or --from, not both", 2)
	case image != "":
		return image, nil
	case from != "":
		pushed, err := pipeline.ReadPushResult(from)
		if err != nil {
			return "", cli.Exit(err.Error(), 2)
		}
		return pushed.Image, nil
	}
	return "", cli.Exit("say what to promote: --image HOST/PROJECT/NAME@sha256:... or --from "+pipeline.DefaultPushResult, 2)
}

// checkSignature verifies the image's cosign signature with --verify-key
// and returns the image pinned to the verified digest, so both colors run
// the very bits that were checked. --allow-unsigned skips the check
// knowingly (a tag is still resolved to its digest).
func checkSignature(c *cli.Context, image string) (string, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return "", cli.Exit(fmt.Sprintf("image %q is not a valid reference: %v", image, err), 2)
	}
	client := registry.Client{Keychain: registry.CredentialsFor(os.Getenv, ref.Context().RegistryStr())}
	keyPath := c.String("verify-key")
	switch {
	case keyPath != "" && c.Bool("allow-unsigned"):
		return "", cli.Exit("pass --verify-key or --allow-unsigned, not both", 2)
	case keyPath != "":
		pub, err := os.ReadFile(keyPath)
		if err != nil {
			return "", cli.Exit(fmt.Sprintf("reading --verify-key: %v", err), 2)
		}
		v, err := registry.LoadPublicKey(keyPath, pub)
		if err != nil {
			return "", exitFor(err)
		}
		d, err := client.Verify(c.Context, ref, v)
		if err != nil {
			return "", fmt.Errorf("refusing to promote %s: %w", image, err)
		}
		fmt.Fprintf(c.App.ErrWriter, "tsys-ci promote: %s is signed with %s\n", d, keyPath)
		return d.String(), nil
	case c.Bool("allow-unsigned"):
		fmt.Fprintln(c.App.ErrWriter, "tsys-ci promote: --allow-unsigned: the image's signature is not checked")
		if d, ok := ref.(name.Digest); ok {
			return d.String(), nil
		}
		d, err := client.Resolve(c.Context, ref)
		if err != nil {
			return "", fmt.Errorf("resolving %s to a digest: %w", image, err)
		}
		return d.String(), nil
	}
	return "", cli.Exit("refusing an image whose signature was not checked: pass --verify-key cosign.pub, or --allow-unsigned to promote it knowingly", 2)
}

func writeResult(c *cli.Context, res *rollout.Result) error {
	if path := c.String("report"); path != "" {
		if err := writeJUnit(path, res); err != nil {
			return err
		}
	}
	if c.String("output") == "json" {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	line := fmt.Sprintf("%s: %s %s (%s, %s)", res.App, res.Result, res.Image, res.Strategy, res.Duration.Round(1e9))
	if res.Reason != "" {
		line += ": " + res.Reason
	}
	fmt.Fprintln(c.App.Writer, line)
	return nil
}

func checkPromoteOutput(c *cli.Context) error {
	if o := c.String("output"); o != "text" && o != "json" {
		return cli.Exit(fmt.Sprintf("-o %q: use text or json", o), 2)
	}
	return nil
}

func runStatus(c *cli.Context) error {
	if err := checkPromoteOutput(c); err != nil {
		return err
	}
	var app, ns string
	if c.IsSet("namespace") || (!c.IsSet("spec") && !fileExists(c.String("spec"))) {
		if c.NArg() != 1 {
			return cli.Exit(fmt.Sprintf("tsys-ci status takes one argument, the app's name; got %q", c.Args().Slice()), 2)
		}
		app, ns = c.Args().First(), c.String("namespace")
		if ns == "" {
			ns = app
		}
	} else {
		spec, err := appArgs(c)
		if err != nil {
			return err
		}
		app, ns = spec.Name, spec.Namespace
	}
	_, cs, err := kubeConfig(c)
	if err != nil {
		return err
	}
	st, err := rollout.Status(c.Context, cs, ns, app)
	if err != nil {
		return err
	}
	if c.String("output") == "json" {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(c.App.Writer, app, st)
	return nil
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
	if st.Previous != nil {
		fmt.Fprintf(w, "  previous: %s on %s ('tsys-ci promote --rollback %s' puts it back)\n", st.Previous.Image, st.Previous.Color, app)
	}
	for i := len(st.History) - 1; i >= 0; i-- {
		h := st.History[i]
		fmt.Fprintf(w, "  %s  %-11s %s (%s) %s\n", h.At.Format("2006-01-02 15:04:05Z"), h.Result, h.Image, h.Strategy, strings.TrimSpace(h.Reason))
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func runAbort(c *cli.Context) error {
	spec, err := appArgs(c)
	if err != nil {
		return err
	}
	p, err := newPromoter(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := p.Abort(ctx, spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s: %s\n", res.App, res.Result)
	return nil
}
