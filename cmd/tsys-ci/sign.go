package main

import (
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/registry"
)

// signCommand is `tsys-ci sign --key FILE IMAGE`: a cosign-format signature
// with a key pair and no transparency log.
func signCommand() *cli.Command {
	return &cli.Command{
		Name:      "sign",
		Usage:     "sign an image in the registry in cosign's format (key pair, no transparency log)",
		UsageText: "tsys-ci sign --key cosign.key IMAGE   (password from COSIGN_PASSWORD)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "cosign private key file (required); its password comes from COSIGN_PASSWORD"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("tsys-ci sign needs exactly one IMAGE (HOST/PROJECT/NAME@sha256:... or :tag)", 2)
			}
			ref, err := name.ParseReference(c.Args().First())
			if err != nil {
				return cli.Exit(fmt.Sprintf("image %q is not a valid reference: %v", c.Args().First(), err), 2)
			}
			sv, err := loadSigner(c.String("key"))
			if err != nil {
				return exitFor(err)
			}
			client := registry.Client{Keychain: registry.Credentials(os.Getenv)}
			d, err := client.Resolve(c.Context, ref)
			if err != nil {
				return err
			}
			if err := client.Sign(c.Context, d, sv); err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "tsys-ci sign: signed %s\n", d)
			fmt.Fprintln(c.App.Writer, d)
			return nil
		},
	}
}

// verifyCommand is `tsys-ci verify --key PUBFILE IMAGE`.
func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check that an image carries a cosign signature made with the given key",
		UsageText: "tsys-ci verify --key cosign.pub IMAGE",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "public key file (required)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("tsys-ci verify needs exactly one IMAGE", 2)
			}
			ref, err := name.ParseReference(c.Args().First())
			if err != nil {
				return cli.Exit(fmt.Sprintf("image %q is not a valid reference: %v", c.Args().First(), err), 2)
			}
			if c.String("key") == "" {
				return cli.Exit("--key is required: the public key (cosign.pub) the image must be signed with", 2)
			}
			pub, err := os.ReadFile(c.String("key"))
			if err != nil {
				return cli.Exit(fmt.Sprintf("reading --key: %v", err), 2)
			}
			v, err := registry.LoadPublicKey(c.String("key"), pub)
			if err != nil {
				return exitFor(err)
			}
			client := registry.Client{Keychain: registry.Credentials(os.Getenv)}
			d, err := client.Verify(c.Context, ref, v)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "tsys-ci verify: %s is signed with %s\n", d, c.String("key"))
			fmt.Fprintln(c.App.Writer, d)
			return nil
		},
	}
}

// loadSigner reads a cosign private key, password from COSIGN_PASSWORD.
func loadSigner(path string) (signature.SignerVerifier, error) {
	if path == "" {
		return nil, &registry.UsageError{Msg: "--key is required: the cosign private key to sign with"}
	}
	priv, err := os.ReadFile(path)
	if err != nil {
		return nil, &registry.UsageError{Msg: fmt.Sprintf("reading --key: %v", err)}
	}
	return registry.LoadPrivateKey(path, priv, []byte(os.Getenv("COSIGN_PASSWORD")))
}
