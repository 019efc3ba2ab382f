package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
)

func approveCommand() *cli.Command {
	return &cli.Command{
		Name:      "approve",
		Usage:     "let a digest into a stage whose approval gate holds it (through tsys-ci serve, with your directory login)",
		UsageText: "tsys-ci approve APP --stage S --digest sha256:... --serve URL [--user LOGIN] [--password-file FILE] [--ca-file PEM] [--namespace NS] [-o json]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "stage", Usage: "the stage to let the digest into (serve.yaml stages[].name)"},
			&cli.StringFlag{Name: "digest", Usage: "the digest waiting for the stage (sha256:...; 'tsys-ci status APP' shows it)"},
			&cli.StringFlag{Name: "serve", EnvVars: []string{"TSYS_CI_SERVE"}, Usage: "tsys-ci serve's address, https://HOST[:PORT]"},
			&cli.StringFlag{Name: "user", EnvVars: []string{"TSYS_CI_USER", "USER"}, Usage: "your directory login"},
			&cli.StringFlag{Name: "password-file", Usage: "file holding your directory password (else TSYS_CI_PASSWORD)"},
			&cli.StringFlag{Name: "ca-file", Usage: "PEM CA that signed serve's certificate, when it is not in the system's trust"},
			namespaceFlag("the app's first stage's namespace, when two staged policies deploy apps of this name"),
			outputFlag("text", "json"),
		},
		Before: oneArg("the app's name"),
		Action: runApprove,
	}
}

// approveFlags is what approve was asked to do.
type approveFlags struct {
	app, stage, digest, serve, user, namespace string
}

var approveDigestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// validate checks the flags without I/O.
func (f approveFlags) validate() error {
	switch {
	case f.stage == "":
		return usageErrorf("say which stage: --stage NAME (serve.yaml stages[].name)")
	case !approveDigestRE.MatchString(f.digest):
		return usageErrorf("--digest %q is not sha256:<64 hex digits>; 'tsys-ci status %s' shows the digest waiting for %s", f.digest, f.app, f.stage)
	case f.serve == "":
		return usageErrorf("say where serve is: --serve https://HOST or TSYS_CI_SERVE")
	case f.user == "":
		return usageErrorf("say who approves: --user LOGIN or TSYS_CI_USER")
	}
	u, err := url.Parse(f.serve)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return usageErrorf("--serve %q is not https://HOST[:PORT]", f.serve)
	}
	return nil
}

func runApprove(c *cli.Context) error {
	f := approveFlags{app: c.Args().First(), stage: c.String("stage"), digest: c.String("digest"), serve: c.String("serve"),
		user: c.String("user"), namespace: c.String("namespace")}
	if err := f.validate(); err != nil {
		return err
	}
	password := os.Getenv("TSYS_CI_PASSWORD")
	if file := c.String("password-file"); file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return usageErrorf("reading --password-file: %v", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	if password == "" {
		return usageErrorf("no password: give your directory password in TSYS_CI_PASSWORD or --password-file FILE")
	}
	if strings.HasPrefix(f.serve, "http://") {
		fmt.Fprintf(c.App.ErrWriter, "warning: %s is plain HTTP; your password crosses the network in clear\n", f.serve)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	if ca := c.String("ca-file"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return usageErrorf("reading --ca-file: %v", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return usageErrorf("--ca-file %s holds no PEM certificate", ca)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	}
	cl := &serve.ApproveClient{URL: f.serve, Login: f.user, Password: password, HTTP: hc}
	rec, err := cl.Approve(c.Context, serve.ApproveRequest{App: f.app, Namespace: f.namespace, Stage: f.stage, Digest: f.digest})
	if err != nil {
		return err
	}
	return writeOutput(c, rec, func(w io.Writer) error {
		fmt.Fprintf(w, "%s: %s approved %s for stage %s; serve's leader deploys it once the stage's other gates pass\n", f.app, f.user, f.digest, f.stage)
		printStages(w, rec)
		return nil
	})
}

// printStages shows a staged app's record: which stage runs which
// digest, what waits for which gate and why, the approvals.
func printStages(w io.Writer, rec *serve.StageRecord) {
	fmt.Fprintf(w, "stages (policy %s):\n", rec.Policy)
	for _, st := range rec.Stages {
		what := "nothing yet"
		if st.Digest != "" {
			what = fmt.Sprintf("%s %s", st.Digest, st.State)
			switch {
			case st.State == serve.StageDeploying:
				what += " since " + st.Queued.UTC().Format("2006-01-02 15:04:05Z")
			case !st.Finished.IsZero():
				what += " at " + st.Finished.UTC().Format("2006-01-02 15:04:05Z")
			}
			if st.Tag != "" {
				what += fmt.Sprintf(" (tag %s, pushed by %s)", st.Tag, st.PushedBy)
			}
			if st.Error != "" {
				what += ": " + st.Error
			}
		}
		fmt.Fprintf(w, "  %-12s %-20s %s\n", st.Name, st.Namespace, what)
		if wt := st.Waiting; wt != nil {
			fmt.Fprintf(w, "    waiting: %s for gate %s since %s: %s\n", wt.Digest, wt.Gate, wt.Since.UTC().Format("2006-01-02 15:04:05Z"), wt.Reason)
		}
		for _, a := range st.Approvals {
			fmt.Fprintf(w, "    approved: %s by %s (group %s) at %s\n", a.Digest, a.By, a.Group, a.At.UTC().Format("2006-01-02 15:04:05Z"))
		}
	}
}
