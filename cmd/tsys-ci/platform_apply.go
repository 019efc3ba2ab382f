package main

import (
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"

	"github.com/tsys-group/tsys-ci/platform"
	"github.com/tsys-group/tsys-ci/templates"
)

func helmFlags() []cli.Flag {
	flags := []cli.Flag{
		specFlag,
		&cli.StringFlag{Name: "charts", Usage: "directory of charts (<chart>/ or <chart>-<version>.tgz); nothing is downloaded"},
	}
	return append(flags, kubeFlags()...)
}

// chartLoader finds each component's chart: --charts, a file:// repo, and
// serve's chart inside the binary unless paas.serve.repo names one.
func chartLoader(c *cli.Context) (func(string, platform.Component) (*chart.Chart, error), error) {
	serveChart, err := fs.Sub(templates.Serve, "serve")
	if err != nil {
		return nil, fmt.Errorf("opening the embedded serve chart: %w", err)
	}
	return platform.ChartFS(platform.ServeComponent, serveChart, platform.ChartsDir(c.String("charts"))), nil
}

// helmOptions connects platform plan/apply to the cluster of the kubeconfig.
func helmOptions(c *cli.Context) (platform.HelmOptions, error) {
	tmpl, err := fs.Sub(templates.Platform, "platform")
	if err != nil {
		return platform.HelmOptions{}, fmt.Errorf("opening embedded templates: %w", err)
	}
	load, err := chartLoader(c)
	if err != nil {
		return platform.HelmOptions{}, err
	}
	return platform.HelmOptions{
		Templates: tmpl,
		LoadChart: load,
		Progress:  c.App.ErrWriter,
		Config: func(ns string) (*action.Configuration, error) {
			flags := kubeConfigFlags(c, ns)
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
		Name:   "plan",
		Usage:  "show what apply would install, upgrade (and why) or leave unchanged, in install order",
		Flags:  append(helmFlags(), outputFlag("table", "json")),
		Before: noArgs(""),
		Action: func(c *cli.Context) error {
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
			outputFlag("table", "json")),
		Before: noArgs(""),
		Action: func(c *cli.Context) error {
			spec, err := loadSpec(c)
			if err != nil {
				return err
			}
			opts, err := helmOptions(c)
			if err != nil {
				return err
			}
			opts.Wait, opts.Timeout = !c.Bool("no-wait"), c.Duration("timeout")
			restConfig, _, err := kubeConnect(c)
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
	return writeOutput(c, steps, func(w io.Writer) error { return writeStepsTable(w, steps) })
}

func writeStepsTable(w io.Writer, steps []platform.Step) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tNAMESPACE\tACTION\tCHART\tDEPLOYED\tWHY")
	for _, s := range steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Component, s.Namespace, s.Action, s.Chart, s.From, s.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range steps {
		for _, change := range s.Changes {
			if _, err := fmt.Fprintf(w, "%s: %s\n", s.Component, change); err != nil {
				return err
			}
		}
	}
	return nil
}
