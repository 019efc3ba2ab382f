package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/rollout"
)

func deleteCommand() *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "remove what promote made for an app and give its address and ports back to the pool; volumes stay unless --delete-volumes",
		UsageText: "tsys-ci delete APP [--spec tsys-ci.yaml | --namespace NS] [--delete-volumes] [-o json]",
		Flags: slices.Concat(appFlags(), []cli.Flag{
			namespaceFlag("the app's namespace, to delete without its spec (default: the app's name)"),
			&cli.BoolFlag{Name: "delete-volumes", Usage: "delete the app's PersistentVolumeClaims too (its data)"},
			&cli.StringFlag{Name: "pool-namespace", Value: rollout.DefaultAllocNamespace, Usage: "namespace of the load-balancer pool ConfigMap"},
			&cli.StringFlag{Name: "pool-configmap", Value: rollout.DefaultAllocName, Usage: "name of the load-balancer pool ConfigMap"},
		}),
		Before: oneArg("the app's name"),
		Action: runDelete,
	}
}

func runDelete(c *cli.Context) error {
	app, ns, err := appAndNamespace(c)
	if err != nil {
		return err
	}
	p, err := newPromoter(c, promoteFlagsFrom(c))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := p.Delete(ctx, ns, app, rollout.DeleteOptions{Volumes: c.Bool("delete-volumes")})
	if err != nil {
		return fmt.Errorf("deleting %s/%s: %w", ns, app, err)
	}
	return writeOutput(c, res, func(w io.Writer) error {
		printDeleted(w, res)
		return nil
	})
}

// appAndNamespace is the app and its namespace as status and delete take
// them: from --namespace (default: the app's name) when given or when
// there is no spec file, else from the spec.
func appAndNamespace(c *cli.Context) (string, string, error) {
	app, ns := c.Args().First(), c.String("namespace")
	if c.IsSet("namespace") || (!c.IsSet("spec") && !fileExists(c.String("spec"))) {
		if ns == "" {
			ns = app
		}
		return app, ns, nil
	}
	spec, err := loadAppSpec(app, c.String("spec"))
	if err != nil {
		return "", "", err
	}
	return spec.Name, spec.Namespace, nil
}

func printDeleted(w io.Writer, res *rollout.DeleteResult) {
	if len(res.Deleted) == 0 && res.Freed == nil && len(res.KeptVolumes) == 0 {
		fmt.Fprintf(w, "%s/%s: nothing of it was left\n", res.Namespace, res.App)
		return
	}
	fmt.Fprintf(w, "%s/%s: deleted %s\n", res.Namespace, res.App, strings.Join(res.Deleted, ", "))
	if f := res.Freed; f != nil {
		ports := make([]string, 0, len(f.Ports))
		for name, port := range f.Ports {
			ports = append(ports, fmt.Sprintf("%s %d", name, port))
		}
		slices.Sort(ports)
		fmt.Fprintf(w, "  gave %s (%s) back to the pool\n", f.Address, strings.Join(ports, ", "))
	}
	if len(res.KeptVolumes) > 0 {
		fmt.Fprintf(w, "  kept volumes %s (their data): 'tsys-ci delete %s --delete-volumes' removes them\n", strings.Join(res.KeptVolumes, ", "), res.App)
	}
}
