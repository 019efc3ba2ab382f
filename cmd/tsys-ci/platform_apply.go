package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"helm.sh/helm/v3/pkg/action"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/tsys-group/tsys-ci/platform"
	"github.com/tsys-group/tsys-ci/templates"
)

func helmFlags() []cli.Flag {
	return []cli.Flag{
		specFlag,
		&cli.StringFlag{Name: "charts", Usage: "directory of charts (<chart>/ or <chart>-<version>.tgz); nothing is downloaded"},
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)"},
		&cli.StringFlag{Name: "context", Usage: "kubeconfig context (default: the current one)"},
	}
}

// helmOptions connects platform plan/apply to the cluster of the kubeconfig.
func helmOptions(c *cli.Context) (platform.HelmOptions, error) {
	tmpl, err := fs.Sub(templates.Platform, "platform")
	if err != nil {
		return platform.HelmOptions{}, fmt.Errorf("opening embedded templates: %w", err)
	}
	kubeconfig, kubeContext := c.String("kubeconfig"), c.String("context")
	return platform.HelmOptions{
		Templates: tmpl,
		LoadChart: platform.ChartsDir(c.String("charts")),
		Progress:  c.App.ErrWriter,
		Config: func(ns string) (*action.Configuration, error) {
			flags := genericclioptions.NewConfigFlags(false)
			flags.KubeConfig, flags.Context, flags.Namespace = &kubeconfig, &kubeContext, &ns
			cfg := &action.Configuration{}
			logf := func(format string, v ...interface{}) { slog.Debug("helm", "msg", fmt.Sprintf(format, v...)) }
			if err := cfg.Init(flags, ns, "secret", logf); err != nil {
				return nil, err
			}
			return cfg, nil
		},
	}, nil
}

func platformPlanCommand() *cli.Command {
	return &cli.Command{
		Name:  "plan",
		Usage: "show what apply would install, upgrade (and why) or leave unchanged, in install order",
		Flags: append(helmFlags(), outputFlag),
		Action: func(c *cli.Context) error {
			if err := checkOutput(c); err != nil {
				return err
			}
			spec, err := loadSpec(c)
			if err != nil {
				return err
			}
			opts, err := helmOptions(c)
			if err != nil {
				return err
			}
			steps, err := platform.Plan(spec, opts)
			if err != nil {
				return err
			}
			return writeSteps(c, steps)
		},
	}
}

func platformApplyCommand() *cli.Command {
	return &cli.Command{
		Name:  "apply",
		Usage: "install or upgrade every component in dependency order, waiting for each; roll back a failed upgrade",
		Flags: append(helmFlags(),
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "how long to wait for each component to be ready"},
			&cli.BoolFlag{Name: "no-wait", Usage: "do not wait for readiness (a failed rollout then goes unnoticed)"},
			outputFlag),
		Action: func(c *cli.Context) error {
			if err := checkOutput(c); err != nil {
				return err
			}
			spec, err := loadSpec(c)
			if err != nil {
				return err
			}
			opts, err := helmOptions(c)
			if err != nil {
				return err
			}
			opts.Wait, opts.Timeout = !c.Bool("no-wait"), c.Duration("timeout")
			restConfig, err := platform.RESTConfig(c.String("kubeconfig"), c.String("context"))
			if err != nil {
				return err
			}
			if opts.ApplyObjects, err = platform.ServerSideApply(restConfig); err != nil {
				return fmt.Errorf("connecting to the cluster: %w", err)
			}
			opts.Context = c.Context
			steps, err := platform.Apply(spec, opts)
			if werr := writeSteps(c, steps); werr != nil && err == nil {
				err = werr
			}
			return err
		},
	}
}

func writeSteps(c *cli.Context, steps []platform.Step) error {
	if c.String("output") == "json" {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(steps)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tNAMESPACE\tACTION\tCHART\tDEPLOYED\tWHY")
	for _, s := range steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Component, s.Namespace, s.Action, s.Chart, s.From, s.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range steps {
		for _, change := range s.Changes {
			if _, err := fmt.Fprintf(c.App.Writer, "%s: %s\n", s.Component, change); err != nil {
				return err
			}
		}
	}
	return nil
}
