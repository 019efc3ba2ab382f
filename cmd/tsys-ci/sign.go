package main

import (
	"fmt"
	"os"
	"strings"

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

// verifyCommand is `tsys-ci verify --key PUBFILE [--attestations [-o json]] IMAGE`.
func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "check that an image carries a cosign signature made with the given key (and, with --attestations, show its SBOM and provenance)",
		UsageText: "tsys-ci verify --key cosign.pub IMAGE\n" +
			"   tsys-ci verify --key cosign.pub --attestations [-o json] IMAGE",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "public key file (required)"},
			&cli.BoolFlag{Name: "attestations", Usage: "also verify and show the SBOM and the provenance attached by 'push --sign'"},
			outputFlag("text", "json"),
		},
		Before: oneArg(imageArgUsage),
		Action: func(c *cli.Context) error {
			f := verifyFlags{key: c.String("key"), attestations: c.Bool("attestations"), output: c.String("output")}
			if err := f.validate(); err != nil {
				return err
			}
			ref, err := parseImage(c.Args().First())
			if err != nil {
				return err
			}
			v, err := registry.LoadPublicKeyFile(f.key)
			if err != nil {
				return err
			}
			client := registry.Client{Keychain: registry.CredentialsFor(os.Getenv, ref.Context().RegistryStr())}
			d, err := client.Verify(c.Context, ref, v)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "tsys-ci verify: %s is signed with %s\n", d, f.key)
			if !f.attestations {
				fmt.Fprintln(c.App.Writer, d)
				return nil
			}
			report, err := client.ReportAttestations(c.Context, d, v)
			if err != nil {
				return err
			}
			if err := writeOutput(c, report, report.WriteText); err != nil {
				return err
			}
			if len(report.Problems) > 0 {
				return fmt.Errorf("verifying the attestations of %s: %s", d, strings.Join(report.Problems, "; "))
			}
			return nil
		},
	}
}

// verifyFlags is what verify was asked to do.
type verifyFlags struct {
	key          string
	attestations bool
	output       string
}

// validate checks the flags against each other, without I/O.
func (f verifyFlags) validate() error {
	if f.output == "json" && !f.attestations {
		return usageErrorf("-o json describes the attestations: add --attestations")
	}
	return nil
}

// imageArgUsage describes the one IMAGE argument of sign and verify.
const imageArgUsage = "the IMAGE (HOST/PROJECT/NAME@sha256:... or :tag)"
