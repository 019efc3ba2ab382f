package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/registry"
)

// signCommand is `tsys-ci sign --key FILE IMAGE`: a cosign-format signature
// with a key pair and no transparency log.
func signCommand() *cli.Command {
	return &cli.Command{
		Name:      "sign",
		Usage:     "sign an image in the registry in cosign's format (key pair, no transparency log)",
		UsageText: "tsys-ci sign --key cosign.key IMAGE\n   (the key's password comes from COSIGN_PASSWORD)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "cosign private key file (required); its password comes from COSIGN_PASSWORD"},
		},
		Before: oneArg(imageArgUsage),
		Action: func(c *cli.Context) error {
			ref, err := parseImage(c.Args().First())
			if err != nil {
				return err
			}
			sv, err := registry.LoadPrivateKeyFile(c.String("key"), []byte(os.Getenv("COSIGN_PASSWORD")))
			if err != nil {
				return err
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
		Before: oneArg(imageArgUsage),
		Action: func(c *cli.Context) error {
			ref, err := parseImage(c.Args().First())
			if err != nil {
				return err
			}
			v, err := registry.LoadPublicKeyFile(c.String("key"))
			if err != nil {
				return err
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

// imageArgUsage describes the one IMAGE argument of sign and verify.
const imageArgUsage = "the IMAGE (HOST/PROJECT/NAME@sha256:... or :tag)"
