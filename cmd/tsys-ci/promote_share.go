package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/pipeline/serve"
	"github.com/tsys-group/tsys-ci/platform"
	"github.com/tsys-group/tsys-ci/registry"
)

// defaultVerifiedDigests is serve's admission's ConfigMap where `platform
// apply` installs serve (namespace tsys-ci).
var defaultVerifiedDigests = platform.DefaultServeNamespace + "/" + serve.DefaultVerifiedDigestsName

func verifiedDigestsFlag() cli.Flag {
	return &cli.StringFlag{Name: "verified-digests", Value: defaultVerifiedDigests,
		Usage: "NAMESPACE/NAME of serve's admission ConfigMap: the digest --verify-key verified is recorded there with its signature, so its pods are admitted without a registry round trip (only when the ConfigMap exists; \"\" not to)"}
}

// shareVerified returns the hook that records each digest promote verified,
// with its signature, in serve's admission ConfigMap (issue 21): serve
// checks the signature again with its own key before it admits by it, so
// the promote's account can save admission a registry round trip but not
// make it admit anything. A failure is said and does not stop the promote:
// admission then asks the registry once.
func shareVerified(c *cli.Context, where string) (func(ctx context.Context, digest string, proof registry.SignatureProof), error) {
	if where == "" {
		return nil, nil
	}
	ns, name, ok := strings.Cut(where, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return nil, usageErrorf("--verified-digests %q: give NAMESPACE/NAME (serve's is %s), or \"\" not to share", where, defaultVerifiedDigests)
	}
	return func(ctx context.Context, digest string, proof registry.SignatureProof) {
		_, cs, err := kubeConnect(c)
		if err == nil {
			shared := &serve.KubeVerifiedDigests{Client: cs, Namespace: ns, Name: name, OnlyIfPresent: true}
			err = shared.Add(ctx, digest, proof)
		}
		if err != nil {
			fmt.Fprintf(c.App.ErrWriter, "tsys-ci promote: %s is not shared with serve's admission (%v); its pods' admission checks the registry once. Give promote's account get and patch on configmaps/%s in %s, or pass --verified-digests \"\"\n",
				digest, err, name, ns)
		}
	}, nil
}
