package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/rollout"
)

// chartContainer is the name templates/serve gives serve's container.
const chartContainer = "serve"

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "receive Harbor webhooks and deploy matching pushes with promote; JSON API, metrics",
		UsageText: "tsys-ci serve (--config serve.yaml | --config-configmap NS/NAME) (--verify-key cosign.pub | --allow-unsigned) [--listen :8080]\n" +
			"   tsys-ci serve --config serve.yaml --no-cluster",
		Flags: slices.Concat(kubeFlags(), imagePolicyFlags(), []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: ":8080", Usage: "address of the webhook, API and metrics"},
			&cli.StringFlag{Name: "config", Usage: "serve.yaml: deploy policies, ldap, access"},
			&cli.StringFlag{Name: "config-configmap", Usage: "read serve.yaml from this ConfigMap (NAMESPACE/NAME, key serve.yaml) instead"},
			&cli.StringFlag{Name: "spec-dir", Value: ".", Usage: "directory of relative spec paths in a ConfigMap config"},
			&cli.StringFlag{Name: "webhook-secret-file", EnvVars: []string{"TSYS_CI_WEBHOOK_SECRET_FILE"}, Hidden: true, Usage: "no longer taken: one secret per Harbor project, in serve.yaml's webhookSecretsDir"},
			&cli.BoolFlag{Name: "no-cluster", Usage: "run without a cluster: every deploy fails with 'nothing was deployed' (for trying the API)"},
			&cli.BoolFlag{Name: "leader-elect", Value: true, Usage: "elect one acting replica with a Lease"},
			&cli.StringFlag{Name: "lease-namespace", EnvVars: []string{"POD_NAMESPACE"}, Value: "tsys-ci", Usage: "serve's own namespace: of the leader Lease, the verified digests and the policies' envSecrets"},
			&cli.StringFlag{Name: "lease-name", Value: "tsys-ci-serve", Usage: "name of the leader Lease"},
			&cli.StringFlag{Name: "identity", EnvVars: []string{"POD_NAME"}, Usage: "this replica's name in the Lease (default the host name)"},
			&cli.BoolFlag{Name: "label-leader", Usage: "label this replica's pod (--lease-namespace/--identity, i.e. POD_NAMESPACE/POD_NAME) " + serve.LeaderLabel + "=true while it leads, for a Service that sends requests to the leader only"},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: 5 * time.Minute, Usage: "drain deadline on SIGTERM (keep under the pod's terminationGracePeriodSeconds)"},
		}),
		Before: noArgs(""),
		Action: runServe,
	}
}

// serveFlags is what serve was asked to do.
type serveFlags struct {
	listen, config, configMap, specDir, secretFile string
	noCluster, leaderElect, labelLeader            bool
	leaseNamespace, leaseName, identity            string
	policy                                         imagePolicy
	shutdownTimeout                                time.Duration
}

func serveFlagsFrom(c *cli.Context) serveFlags {
	return serveFlags{
		listen: c.String("listen"), config: c.String("config"), configMap: c.String("config-configmap"),
		specDir: c.String("spec-dir"), secretFile: c.String("webhook-secret-file"),
		noCluster: c.Bool("no-cluster"), leaderElect: c.Bool("leader-elect"), labelLeader: c.Bool("label-leader"),
		leaseNamespace: c.String("lease-namespace"), leaseName: c.String("lease-name"), identity: c.String("identity"),
		policy: imagePolicyFrom(c), shutdownTimeout: c.Duration("shutdown-timeout"),
	}
}

// validate checks the flags against each other, without I/O.
func (f serveFlags) validate() error {
	if f.secretFile != "" {
		return usageErrorf("--webhook-secret-file %s: one webhook secret for every Harbor project is no longer taken (any project's admin could read it and deploy another project's apps); set webhookSecretsDir in serve.yaml, a directory with one file per project named after it (`tsys-ci registry setup` writes them), and drop the flag", f.secretFile)
	}
	if err := f.policy.validate(); err != nil {
		return err
	}
	if f.policy.verifyKey == "" && !f.policy.allowUnsigned && !f.noCluster {
		return usageErrorf("serve refuses images whose signature was not checked: pass --verify-key cosign.pub, or --allow-unsigned to deploy them knowingly")
	}
	if (f.config == "") == (f.configMap == "") {
		return usageErrorf("pass one of --config FILE or --config-configmap NAMESPACE/NAME")
	}
	if f.configMap != "" {
		ns, nm, ok := strings.Cut(f.configMap, "/")
		if !ok || ns == "" || nm == "" || f.noCluster {
			return usageErrorf("--config-configmap %q: give NAMESPACE/NAME, with a cluster", f.configMap)
		}
	}
	return nil
}

func runServe(c *cli.Context) error {
	f := serveFlagsFrom(c)
	if err := f.validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(c.App.ErrWriter, nil))
	identity, err := replicaIdentity(f.identity)
	if err != nil {
		return err
	}
	var cs kubernetes.Interface
	var deployer serve.Deployer = serve.NoClusterDeployer{}
	if !f.noCluster {
		if cs, deployer, err = clusterDeployer(c, f, identity, log); err != nil {
			return err
		}
	}
	cfg, err := loadServeConfig(c.Context, f, cs)
	if err != nil {
		return err
	}
	var dir serve.Authenticator
	if cfg.LDAP != nil {
		d, err := serve.NewDirectory(*cfg.LDAP, os.Getenv)
		if err != nil {
			return asUsage(err)
		}
		dir = d
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := serve.ServerOptions{Config: cfg, Directory: dir, Deployer: deployer,
		Registry: reg, Log: log, Clock: rollout.RealClock{}}
	if pd, ok := deployer.(*serve.PromoterDeployer); ok && !f.policy.allowUnsigned {
		if opts.Admission, err = imageAdmission(cfg.Registry, f.policy, pd, log); err != nil {
			return err
		}
		opts.Admission.Shared = &serve.KubeVerifiedDigests{Client: cs, Namespace: f.leaseNamespace, Name: serve.DefaultVerifiedDigestsName}
	}
	if cs != nil {
		opts.Events = &serve.KubeEventSink{Client: cs, Instance: identity}
		opts.PushOrder = &serve.KubePushOrder{Client: cs}
		opts.Apps = serve.KubeAppReader{Client: cs}
		opts.Stages = &serve.KubeStageStore{Client: cs}
	}
	s, err := serve.NewServer(opts)
	if err != nil {
		return asUsage(err)
	}
	l, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", f.listen, err)
	}
	run := serve.RunOptions{Server: s, Listener: l, ShutdownTimeout: f.shutdownTimeout}
	if f.leaderElect && cs != nil {
		run.Leader = &serve.LeaderElection{Client: cs, Namespace: f.leaseNamespace, Name: f.leaseName, Identity: identity}
		if f.labelLeader {
			run.Leader.LabelPod = f.leaseNamespace + "/" + identity
		}
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve.Run(ctx, run)
}

// imageAdmission is serve's validating webhook (the chart's admission.*):
// the same signature check as serve's deploys, which tell it the digests
// they verified, with their signatures, so the pods of a promote are
// admitted without a registry round trip; the replicas (and CLI promotes)
// share them in a ConfigMap of serve's namespace (--lease-namespace). Not
// with --allow-unsigned: there is no key to admit by.
func imageAdmission(registry string, policy imagePolicy, pd *serve.PromoterDeployer, log *slog.Logger) (*serve.ImageAdmission, error) {
	verify, check, err := policy.keyChecks()
	if err != nil {
		return nil, err
	}
	adm := &serve.ImageAdmission{Registry: registry, Verify: verify, CheckProof: check, Log: log}
	policy.onVerified = adm.Verified
	if pd.Verify, err = policy.verifier("tsys-ci serve", true, nil); err != nil {
		return nil, err
	}
	return adm, nil
}

// replicaIdentity names this replica in its Lease and Events: --identity
// (POD_NAME), else the host name.
func replicaIdentity(identity string) (string, error) {
	if identity != "" {
		return identity, nil
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "", usageErrorf("serve names this replica in its Lease and Events after the host name, which cannot be read (%v); pass --identity", err)
	}
	return host, nil
}

// clusterDeployer connects to the cluster and returns the deployer that
// promotes verified images there.
func clusterDeployer(c *cli.Context, f serveFlags, identity string, log *slog.Logger) (kubernetes.Interface, serve.Deployer, error) {
	cfg, cs, err := kubeConnect(c)
	if err != nil {
		return nil, nil, err
	}
	probe, err := rollout.ServiceProxy(cfg)
	if err != nil {
		return nil, nil, err
	}
	verify, err := f.policy.verifier("tsys-ci serve", true, nil)
	if err != nil {
		return nil, nil, err
	}
	checkSource, err := f.policy.sourceChecker(nil)
	if err != nil {
		return nil, nil, err
	}
	// The gateway's objects of the apps' api: sections (Traefik's CRDs;
	// the chart's promote ClusterRole grants them).
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("creating a Kubernetes client: %w", err)
	}
	promoter := rollout.Promoter{
		Client: cs, Dynamic: dyn, Clock: rollout.RealClock{}, Probe: probe, Holder: serve.ReplicaHolderPrefix + identity,
		Allocator:   &rollout.Allocator{Client: cs, Namespace: rollout.DefaultAllocNamespace, Name: rollout.DefaultAllocName},
		EdgeStats:   edgeStatsReader(os.Getenv),
		CheckSource: checkSource,
		// The apps' fromEnv values come from the policy's envSecret, read
		// on each deploy (PromoterDeployer.EnvSecrets), never from serve's
		// own environment, which holds serve's secrets.
	}
	if f.labelLeader {
		// The identities are pod names in --lease-namespace (the
		// chart's), so a killed replica's container status proves its
		// promote leases free.
		promoter.HolderGone = serve.ReplicaGone(cs, f.leaseNamespace, chartContainer)
	}
	// The policies' envSecrets live in serve's own namespace, the Lease's.
	envSecrets := &serve.EnvSecrets{Client: cs, Namespace: f.leaseNamespace}
	return cs, &serve.PromoterDeployer{Log: log, Verify: verify, Promoter: promoter, EnvSecrets: envSecrets}, nil
}

// loadServeConfig reads serve.yaml from --config or --config-configmap.
func loadServeConfig(ctx context.Context, f serveFlags, cs kubernetes.Interface) (*serve.Config, error) {
	if f.configMap != "" {
		ns, nm, _ := strings.Cut(f.configMap, "/")
		cfg, err := serve.ConfigFromConfigMap(ctx, cs, ns, nm, f.specDir)
		return cfg, asUsage(err)
	}
	cfg, err := serve.LoadConfig(f.config)
	return cfg, asUsage(err)
}
