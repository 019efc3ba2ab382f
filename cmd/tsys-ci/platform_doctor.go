package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/dynamic"

	"github.com/tsys-group/tsys-ci/platform"
	"github.com/tsys-group/tsys-ci/platform/doctor"
)

func platformDoctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "report every single point of failure of a live cluster, by severity, with why and how to fix",
		Description: "Reads the cluster with the kubeconfig kubectl would use (--kubeconfig, $KUBECONFIG,\n" +
			"~/.kube/config; --context), or a `kubectl get -o yaml` dump with --snapshot.\n" +
			"With -f platform.yaml it also compares the cluster with what it should be: hosts, roles,\n" +
			"labels, taints, the k3s version, and the components and their pinned chart versions.\n" +
			"With --rendered DIR (and -f platform.yaml) it checks what would be installed instead, before\n" +
			"anything is: each component's chart (--charts DIR or a file:// repo) rendered by Helm, without a\n" +
			"cluster, with the values `platform render` wrote to DIR, and render's manifests.\n" +
			"Exit 0 when nothing at or above --fail-on is found, 4 when something is, 1 on errors.",
		Flags: append(kubeFlags(),
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "platform.yaml: also report where the cluster differs from it"},
			&cli.StringFlag{Name: "snapshot", Usage: "analyse objects from this YAML file (kubectl get -A -o yaml ...) instead of a live cluster"},
			&cli.StringFlag{Name: "rendered", Usage: "analyse what `platform render` wrote to this directory, with the charts rendered from it, instead of a cluster (needs -f)"},
			&cli.StringFlag{Name: "charts", Usage: "with --rendered: directory of charts (<chart>/ or <chart>-<version>.tgz); nothing is downloaded"},
			&cli.StringSliceFlag{Name: "replicated-class", Usage: "storage class that replicates although its provisioner does not say so (repeatable)"},
			&cli.StringFlag{Name: "fail-on", Value: "critical", Usage: "exit 4 when a finding is at least this severe: critical, warning, info or never"},
			outputFlag("table", "json"),
		),
		Before: noArgs(""),
		Action: func(c *cli.Context) error {
			failOn, ok := doctor.ParseSeverity(c.String("fail-on"))
			if !ok && c.String("fail-on") != "never" {
				return usageErrorf("--fail-on %q: want critical, warning, info or never", c.String("fail-on"))
			}
			if err := validateDoctorSources(c.String("rendered"), c.String("snapshot"), c.String("file"), c.String("charts")); err != nil {
				return err
			}
			findings, err := doctorFindings(c)
			if err != nil {
				return err
			}
			report := doctor.NewReport(findings)
			if c.String("output") == "json" {
				err = report.WriteJSON(c.App.Writer)
			} else {
				err = report.WriteTable(c.App.Writer)
			}
			if err != nil {
				return err
			}
			if c.String("fail-on") != "never" && report.Worst() >= failOn {
				return &findingsError{fmt.Sprintf("found %d critical, %d warning single points of failure", report.Summary["critical"], report.Summary["warning"])}
			}
			return nil
		},
	}
}

// validateDoctorSources: --rendered needs platform.yaml (which charts, which
// namespaces) and excludes --snapshot; --charts only serves --rendered.
func validateDoctorSources(rendered, snapshot, file, charts string) error {
	switch {
	case rendered != "" && snapshot != "":
		return usageErrorf("--rendered and --snapshot both name what to analyse; give one")
	case rendered != "" && file == "":
		return usageErrorf("--rendered needs -f platform.yaml (it says which chart, version and namespace each component has)")
	case charts != "" && rendered == "":
		return usageErrorf("--charts is only read with --rendered")
	}
	return nil
}

func doctorFindings(c *cli.Context) ([]doctor.Finding, error) {
	opts := doctor.Options{ReplicatedClasses: c.StringSlice("replicated-class")}
	var err error
	if c.String("file") != "" {
		if opts.Expected, err = loadSpec(c); err != nil {
			return nil, err
		}
	}
	if dir := c.String("rendered"); dir != "" {
		load, err := chartLoader(c)
		if err != nil {
			return nil, err
		}
		charts, err := platform.TemplateCharts(opts.Expected, platform.RenderedValues(dir), load)
		if err != nil {
			return nil, err
		}
		extra, err := platform.RenderedManifests(dir)
		if err != nil {
			return nil, err
		}
		return doctor.AnalyzeRendered(opts.Expected, charts, extra, doctor.Options{ReplicatedClasses: opts.ReplicatedClasses})
	}
	snap, err := doctorSnapshot(c)
	if err != nil {
		return nil, err
	}
	return doctor.Analyze(snap, opts), nil
}

func doctorSnapshot(c *cli.Context) (*doctor.Snapshot, error) {
	if path := c.String("snapshot"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, usageErrorf("reading --snapshot: %w", err)
		}
		snap, err := doctor.ParseSnapshot(data)
		if err != nil {
			return nil, usageErrorf("%s: %w", path, err)
		}
		return snap, nil
	}
	cfg, cs, err := kubeConnect(c)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a Kubernetes client: %w", err)
	}
	return doctor.CollectSnapshot(c.Context, cs, dyn)
}
