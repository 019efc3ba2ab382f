package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// kubeFlags are how every command that reaches a cluster finds it, resolved
// exactly as kubectl resolves them (genericclioptions.ConfigFlags): the
// --kubeconfig file, else $KUBECONFIG (a list of files, merged), else
// ~/.kube/config, else the pod's service account; --context picks a context.
// $KUBECONFIG is not bound into --kubeconfig, which names a single file.
func kubeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig file (default as kubectl: $KUBECONFIG, a list of files, else ~/.kube/config, else in-cluster)"},
		&cli.StringFlag{Name: "context", Usage: "kubeconfig context (default: its current context)"},
	}
}

// namespaceFlag is --namespace/-n; what it selects differs per command.
func namespaceFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: usage}
}

// userAgent is what every request to the API server says it comes from.
func userAgent() string { return "tsys-ci/" + version }

// kubeConfigFlags turns the command's kubeFlags into kubectl's ConfigFlags
// (Helm takes them as its RESTClientGetter), for namespace ns.
func kubeConfigFlags(c *cli.Context, ns string) *genericclioptions.ConfigFlags {
	f := genericclioptions.NewConfigFlags(false)
	kubeconfig, kubeContext := c.String("kubeconfig"), c.String("context")
	f.KubeConfig, f.Context, f.Namespace = &kubeconfig, &kubeContext, &ns
	f.WrapConfigFn = func(cfg *rest.Config) *rest.Config {
		cfg.UserAgent = userAgent()
		return cfg
	}
	return f
}

// kubeConnect loads the cluster's REST config and a clientset. A kubeconfig
// that cannot be loaded is bad input (exit 2): the user names another one.
func kubeConnect(c *cli.Context) (*rest.Config, kubernetes.Interface, error) {
	cfg, err := kubeConfigFlags(c, "").ToRESTConfig()
	if err != nil {
		return nil, nil, usageErrorf("loading the kubeconfig (--kubeconfig, else $KUBECONFIG, else ~/.kube/config, else in-cluster, as kubectl does; --context %q): %w", c.String("context"), err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("building a Kubernetes client for %s: %w", cfg.Host, err)
	}
	return cfg, cs, nil
}
