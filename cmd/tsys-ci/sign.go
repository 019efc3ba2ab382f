package main

import (
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
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
			ref, err := imageArg(c, "sign")
			if err != nil {
				return err
			}
			sv, err := registry.LoadPrivateKeyFile(c.String("key"), []byte(os.Getenv("COSIGN_PASSWORD")))
			if err != nil {
				return exitFor(err)
			}
			d, err := registry.Client{Keychain: registry.CredentialsFor(os.Getenv, ref.Context().RegistryStr())}.SignRef(c.Context, ref, sv)
			if err != nil {
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
			ref, err := imageArg(c, "verify")
			if err != nil {
				return err
			}
			v, err := registry.LoadPublicKeyFile(c.String("key"))
			if err != nil {
				return exitFor(err)
			}
			d, err := registry.Client{Keychain: registry.CredentialsFor(os.Getenv, ref.Context().RegistryStr())}.Verify(c.Context, ref, v)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "tsys-ci verify: %s is signed with %s\n", d, c.String("key"))
			fmt.Fprintln(c.App.Writer, d)
			return nil
		},
	}
}

// imageArg reads the one IMAGE argument of sign and verify.
func imageArg(c *cli.Context, cmd string) (name.Reference, error) {
	if c.NArg() != 1 {
		return nil, cli.Exit(fmt.Sprintf("tsys-ci %s needs exactly one IMAGE (HOST/PROJECT/NAME@sha256:... or :tag)", cmd), 2)
	}
	ref, err := name.ParseReference(c.Args().First())
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("image %q is not a valid reference: %v", c.Args().First(), err), 2)
	}
	return ref, nil
}
