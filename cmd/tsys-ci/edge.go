package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/platform/edge"
	corev1 "k8s.io/api/core/v1"
)

// edgeCommand is `tsys-ci edge`: the company's HAProxy in front of the
// cluster, rendered from and kept in sync with tsys-ci's Services.
func edgeCommand() *cli.Command {
	return &cli.Command{
		Name:  "edge",
		Usage: "render the HAProxy edge from the cluster and keep the running HAProxy in sync",
		Subcommands: []*cli.Command{
			{
				Name:   "render",
				Usage:  "write the HAProxy fragment, host map and crt-list for the apps in the cluster",
				Flags:  append(edgeClusterFlags(), &cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "directory to write edge.cfg, hosts.map, crt-list and hosts.txt into, to inspect them or feed the certificate tooling (install with sync: its crt-list leaves out missing certificates); without it edge.cfg goes to stdout"}),
				Before: noArgs(""),
				Action: edgeRender,
			},
			{
				Name:  "sync",
				Usage: "on the HAProxy host: install the rendered edge, through the runtime API when only addresses changed, else by a validated graceful reload",
				Flags: append(edgeClusterFlags(),
					&cli.StringFlag{Name: "dir", Value: "/etc/haproxy/tsys-ci", Usage: "the edge directory HAProxy loads edge.cfg from"},
					&cli.StringSliceFlag{Name: "haproxy-config", Value: cli.NewStringSlice("/etc/haproxy/haproxy.cfg"), Usage: "the company's configuration files, in HAProxy's -f order, without the fragment (repeatable)"},
					&cli.StringFlag{Name: "haproxy", Value: "haproxy", Usage: "the haproxy program used for haproxy -c"},
					&cli.StringFlag{Name: "stats-socket", Value: "/run/haproxy/admin.sock", Usage: "HAProxy's stats socket (level admin)"},
					&cli.StringFlag{Name: "master-socket", Value: "/run/haproxy-master.sock", Usage: "HAProxy's master CLI socket (haproxy -W -S PATH)"},
					&cli.BoolFlag{Name: "watch", Usage: "keep syncing from cluster events until interrupted"},
					&cli.DurationFlag{Name: "debounce", Value: 2 * time.Second, Usage: "with --watch: wait this long after the last change before syncing"},
					&cli.DurationFlag{Name: "resync", Value: 10 * time.Minute, Usage: "with --watch: also sync this often, to repair drift"},
				),
				Before: noArgs(""),
				Action: edgeSync,
			},
		},
	}
}

func edgeClusterFlags() []cli.Flag {
	def := edge.DefaultOptions()
	return append(kubeFlags(),
		namespaceFlag("only this namespace; default all"),
		&cli.IntSliceFlag{Name: "reserved-port", Value: cli.NewIntSlice(def.ReservedPorts...), Usage: "the edge host's own ports, never given to a pass-through app (repeatable)"},
		&cli.StringFlag{Name: "tcp-bind", Usage: "address pass-through frontends listen on; default every address"},
		&cli.StringFlag{Name: "cert-dir", Value: def.CertDir, Usage: "directory with one HOST.pem per host name, for the crt-list"},
		&cli.BoolFlag{Name: "by-version", Usage: "serve the HTTP ports of apps with color Services by version: exact weights from promote, each version spread over the nodes (docs/edge.md); needs an edge kept by sync --watch and read access to Nodes"},
		&cli.StringFlag{Name: "owners", Usage: "the edge owners file: which namespaces may claim which host names and TCP ports (required by sync; see docs/edge.md)"},
	)
}

// edgeOptions reads the flags; sync (which installs) requires --owners,
// render (which shows) checks ownership only when given one.
func edgeOptions(c *cli.Context, requireOwners bool) (edge.Options, error) {
	opts := edge.Options{ReservedPorts: c.IntSlice("reserved-port"), TCPBind: c.String("tcp-bind"), CertDir: c.String("cert-dir"), ByVersion: c.Bool("by-version")}
	path := c.String("owners")
	if path == "" {
		if requireOwners {
			return opts, cli.Exit("tsys-ci edge sync: --owners FILE is required: it declares which namespaces may claim which host names and TCP ports, "+
				"e.g. 'namespaces: {shop: {hosts: [\"*.shop.company.example\"], tcpPorts: [2222]}}' (docs/edge.md, \"Who may claim what\")", 2)
		}
		return opts, nil
	}
	o, err := edge.LoadOwners(path)
	if err != nil {
		return opts, usageErrorf("%v", err)
	}
	opts.Owners = o
	return opts, nil
}

func edgeRender(c *cli.Context) error {
	_, client, err := kubeConnect(c)
	if err != nil {
		return err
	}
	opts, err := edgeOptions(c, false)
	if err != nil {
		return err
	}
	if opts.Owners == nil {
		fmt.Fprintln(c.App.ErrWriter, "tsys-ci edge render: no --owners: claims are not checked against the owners file (sync checks them)")
	}
	m, files, err := edge.RenderCluster(c.Context, client, c.String("namespace"), opts)
	if m == nil {
		return err
	}
	bad := err // claims left out; the rest is rendered
	out := c.String("out")
	if out == "" {
		if _, err := c.App.Writer.Write(files.Config); err != nil {
			return err
		}
		return bad
	}
	if err := files.Write(out); err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "tsys-ci edge render: wrote %s: %s\n", out, m.Summary())
	return bad
}

func edgeSync(c *cli.Context) error {
	opts, err := edgeOptions(c, true)
	if err != nil {
		return err
	}
	_, client, err := kubeConnect(c)
	if err != nil {
		return err
	}
	haproxy, err := exec.LookPath(c.String("haproxy"))
	if err != nil {
		return usageErrorf("finding haproxy for haproxy -c: %v (install it or pass --haproxy)", err)
	}
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))
	s := &edge.Syncer{
		Dir: c.String("dir"), HAProxy: haproxy, Configs: c.StringSlice("haproxy-config"), Options: opts, Log: log,
		Runtime: edge.Runtime{StatsSocket: c.String("stats-socket"), MasterSocket: c.String("master-socket")},
	}
	if c.Bool("watch") {
		w := &edge.Watcher{Client: client, Namespace: c.String("namespace"), Options: opts, Sync: s.Sync, Log: log,
			Debounce: c.Duration("debounce"), Resync: c.Duration("resync")}
		ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
		defer stop()
		return w.Run(ctx)
	}
	services, err := edge.ListServices(c.Context, client, c.String("namespace"))
	if err != nil {
		return err
	}
	var nodes []corev1.Node
	if opts.ByVersion {
		if nodes, err = edge.ListNodes(c.Context, client); err != nil {
			return err
		}
	}
	m, bad := edge.Build(services, nodes, opts)
	if m == nil {
		return bad
	}
	// Refused claims (bad) are left out of m; everyone else is synced,
	// and the command still ends with exit 2 naming them.
	res, err := s.Sync(c.Context, m)
	if err != nil {
		return err
	}
	printSyncResult(c, m, res)
	return bad
}

func printSyncResult(c *cli.Context, m *edge.Model, res edge.Result) {
	w := c.App.ErrWriter
	switch res.Action {
	case edge.ActionNone:
		fmt.Fprintf(w, "tsys-ci edge sync: already in sync (%s); nothing changed\n", m.Summary())
	case edge.ActionRuntime:
		fmt.Fprintf(w, "tsys-ci edge sync: changed at run time, no reload (%s):\n  %s\n", m.Summary(), strings.Join(res.Changes, "\n  "))
	case edge.ActionReload:
		fmt.Fprintf(w, "tsys-ci edge sync: validated and reloaded gracefully (%s):\n  %s\n", m.Summary(), strings.Join(res.Changes, "\n  "))
	}
	if len(res.MissingCerts) > 0 {
		fmt.Fprintf(w, "tsys-ci edge sync: no certificate yet for %s (served with the default certificate); request them (list: hosts.txt) and sync again\n",
			strings.Join(res.MissingCerts, ", "))
	}
}
