package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/registry"
	"github.com/tsys-group/tsys-ci/rollout"
)

// chartContainer is the name templates/serve gives serve's container.
const chartContainer = "serve"

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "receive Harbor webhooks and deploy matching pushes with promote; JSON API, metrics",
		UsageText: "tsys-ci serve --config serve.yaml | --config-configmap NS/NAME  (--verify-key cosign.pub | --allow-unsigned)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: ":8080", Usage: "address of the webhook, API and metrics"},
			&cli.StringFlag{Name: "config", Usage: "serve.yaml: deploy policies, ldap, access"},
			&cli.StringFlag{Name: "config-configmap", Usage: "read serve.yaml from this ConfigMap (NAMESPACE/NAME, key serve.yaml) instead"},
			&cli.StringFlag{Name: "spec-dir", Value: ".", Usage: "directory of relative spec paths in a ConfigMap config"},
			&cli.StringFlag{Name: "webhook-secret-file", EnvVars: []string{"TSYS_CI_WEBHOOK_SECRET_FILE"}, Hidden: true, Usage: "no longer taken: one secret per Harbor project, in serve.yaml's webhookSecretsDir"},
			&cli.StringFlag{Name: "kubeconfig", EnvVars: []string{"KUBECONFIG"}, Usage: "kubeconfig file (default ~/.kube/config, else in-cluster)"},
			&cli.BoolFlag{Name: "no-cluster", Usage: "run without a cluster: every deploy fails with 'nothing was deployed' (for trying the API)"},
			&cli.BoolFlag{Name: "leader-elect", Value: true, Usage: "elect one acting replica with a Lease"},
			&cli.StringFlag{Name: "lease-namespace", EnvVars: []string{"POD_NAMESPACE"}, Value: "tsys-ci", Usage: "namespace of the leader Lease"},
			&cli.StringFlag{Name: "lease-name", Value: "tsys-ci-serve", Usage: "name of the leader Lease"},
			&cli.StringFlag{Name: "identity", EnvVars: []string{"POD_NAME"}, Usage: "this replica's name in the Lease (default the host name)"},
			&cli.BoolFlag{Name: "label-leader", Usage: "label this replica's pod (--lease-namespace/--identity, i.e. POD_NAMESPACE/POD_NAME) " + serve.LeaderLabel + "=true while it leads, for a Service that sends requests to the leader only"},
			&cli.StringFlag{Name: "verify-key", Usage: "public key every promoted image's signature must verify with"},
			&cli.BoolFlag{Name: "allow-unsigned", Usage: "promote images without verifying a signature"},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: 5 * time.Minute, Usage: "drain deadline on SIGTERM (keep under the pod's terminationGracePeriodSeconds)"},
		},
		Action: runServe,
	}
}

func runServe(c *cli.Context) error {
	log := slog.New(slog.NewJSONHandler(c.App.ErrWriter, nil))
	if f := c.String("webhook-secret-file"); f != "" {
		return cli.Exit(fmt.Sprintf("--webhook-secret-file %s: one webhook secret for every Harbor project is no longer taken (any project's admin could read it and deploy another project's apps); set webhookSecretsDir in serve.yaml, a directory with one file per project named after it (`tsys-ci registry setup` writes them), and drop the flag", f), 2)
	}
	if c.String("verify-key") != "" && c.Bool("allow-unsigned") {
		return cli.Exit("pass --verify-key or --allow-unsigned, not both", 2)
	}
	if c.String("verify-key") == "" && !c.Bool("allow-unsigned") && !c.Bool("no-cluster") {
		return cli.Exit("serve refuses images whose signature was not checked: pass --verify-key cosign.pub, or --allow-unsigned to deploy them knowingly", 2)
	}
	if (c.String("config") == "") == (c.String("config-configmap") == "") {
		return cli.Exit("pass one of --config FILE or --config-configmap NAMESPACE/NAME", 2)
	}
	identity := c.String("identity")
	if identity == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return cli.Exit(fmt.Sprintf("serve names this replica in its Lease and Events after the host name, which cannot be read (%v); pass --identity", err), 2)
		}
		identity = host
	}

	var cs kubernetes.Interface
	var deployer serve.Deployer = serve.NoClusterDeployer{}
	if !c.Bool("no-cluster") {
		cfg, client, err := kubeConfig(c)
		if err != nil {
			return err
		}
		cs = client
		probe, err := rollout.ServiceProxy(cfg)
		if err != nil {
			return err
		}
		verify, err := imageVerifier(c)
		if err != nil {
			return err
		}
		promoter := rollout.Promoter{
			Client: cs, Clock: rollout.RealClock{}, Probe: probe, Holder: serve.ReplicaHolderPrefix + identity,
			Allocator: &rollout.Allocator{Client: cs, Namespace: rollout.DefaultAllocNamespace, Name: rollout.DefaultAllocName},
		}
		if c.Bool("label-leader") {
			// The identities are pod names in --lease-namespace (the
			// chart's), so a killed replica's container status proves its
			// promote leases free.
			promoter.HolderGone = serve.ReplicaGone(cs, c.String("lease-namespace"), chartContainer)
		}
		deployer = &serve.PromoterDeployer{Log: log, Verify: verify, Promoter: promoter}
	}

	var cfg *serve.Config
	var err error
	if ref := c.String("config-configmap"); ref != "" {
		ns, nm, ok := strings.Cut(ref, "/")
		if !ok || ns == "" || nm == "" || cs == nil {
			return cli.Exit(fmt.Sprintf("--config-configmap %q: give NAMESPACE/NAME, with a cluster", ref), 2)
		}
		cfg, err = serve.ConfigFromConfigMap(c.Context, cs, ns, nm, c.String("spec-dir"))
	} else {
		cfg, err = serve.LoadConfig(c.String("config"))
	}
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	var dir serve.Authenticator
	if cfg.LDAP != nil {
		d, err := serve.NewDirectory(*cfg.LDAP, os.Getenv)
		if err != nil {
			return cli.Exit(err.Error(), 2)
		}
		dir = d
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := serve.ServerOptions{Config: cfg, Directory: dir, Deployer: deployer,
		Registry: reg, Log: log, Clock: rollout.RealClock{}}
	if cs != nil {
		opts.Events = &serve.KubeEventSink{Client: cs, Instance: identity}
		opts.PushOrder = &serve.KubePushOrder{Client: cs}
	}
	s, err := serve.NewServer(opts)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	l, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return fmt.Errorf("listening on %s: %w", c.String("listen"), err)
	}
	run := serve.RunOptions{Server: s, Listener: l, ShutdownTimeout: c.Duration("shutdown-timeout")}
	if c.Bool("leader-elect") && cs != nil {
		run.Leader = &serve.LeaderElection{Client: cs, Namespace: c.String("lease-namespace"), Name: c.String("lease-name"), Identity: identity}
		if c.Bool("label-leader") {
			run.Leader.LabelPod = c.String("lease-namespace") + "/" + identity
		}
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve.Run(ctx, run)
}

// imageVerifier checks an image's signature like promote's --verify-key,
// or only requires a digest with --allow-unsigned.
func imageVerifier(c *cli.Context) (func(context.Context, string) (string, error), error) {
	client := registry.Client{Keychain: registry.Credentials(os.Getenv)}
	if c.Bool("allow-unsigned") {
		return func(_ context.Context, image string) (string, error) {
			d, err := name.NewDigest(image)
			if err != nil {
				return "", fmt.Errorf("image %q is not a reference by digest: %w", image, err)
			}
			return d.String(), nil
		}, nil
	}
	keyPath := c.String("verify-key")
	pub, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("reading --verify-key: %v", err), 2)
	}
	v, err := registry.LoadPublicKey(keyPath, pub)
	if err != nil {
		return nil, exitFor(err)
	}
	return func(ctx context.Context, image string) (string, error) {
		ref, err := name.ParseReference(image)
		if err != nil {
			return "", fmt.Errorf("image %q is not a valid reference: %w", image, err)
		}
		d, err := client.Verify(ctx, ref, v)
		if err != nil {
			return "", err
		}
		return d.String(), nil
	}, nil
}
