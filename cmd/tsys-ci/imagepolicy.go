package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/urfave/cli/v2"

	"github.com/tsys-group/tsys-ci/registry"
)

// imagePolicyFlags are --verify-key and --allow-unsigned, the one signature
// policy of everything that deploys an image (promote and serve).
func imagePolicyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "verify-key", Usage: "public key every promoted image's signature must verify with"},
		&cli.BoolFlag{Name: "allow-unsigned", Usage: "promote images without verifying a signature"},
	}
}

// imagePolicy is what the flags asked for.
type imagePolicy struct {
	verifyKey     string
	allowUnsigned bool
	// onVerified, when set, is told each digest the key verified, with
	// the signature that verified it (promote shares it with serve's
	// admission; serve's admission remembers it).
	onVerified func(ctx context.Context, digest string, proof registry.SignatureProof)
}

func imagePolicyFrom(c *cli.Context) imagePolicy {
	return imagePolicy{verifyKey: c.String("verify-key"), allowUnsigned: c.Bool("allow-unsigned")}
}

// validate refuses both at once; none is refused by verifier, where the
// command knows whether it deploys at all.
func (p imagePolicy) validate() error {
	if p.verifyKey != "" && p.allowUnsigned {
		return usageErrorf("pass --verify-key or --allow-unsigned, not both")
	}
	return nil
}

// verifyImage checks one image and returns it pinned to the digest that was
// checked, so what runs is the very bits that were verified.
type verifyImage func(ctx context.Context, image string) (string, error)

// verifier reads and parses --verify-key once and returns the check every
// image goes through. With --allow-unsigned the signature is not checked
// (said once on log, when not nil); a tag is still resolved to its digest
// unless requireDigest. what names the command in the refusal.
func (p imagePolicy) verifier(what string, requireDigest bool, log io.Writer) (verifyImage, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	// The environment's registry login goes only to the image's own
	// registry (registry.CredentialsFor), never to another host.
	client := func(ref name.Reference) registry.Client {
		return registry.Client{Keychain: registry.CredentialsFor(os.Getenv, ref.Context().RegistryStr())}
	}
	switch {
	case p.allowUnsigned:
		if log != nil {
			fmt.Fprintf(log, "%s: --allow-unsigned: the image's signature is not checked\n", what)
		}
		return func(ctx context.Context, image string) (string, error) {
			if requireDigest {
				d, err := name.NewDigest(image)
				if err != nil {
					return "", fmt.Errorf("image %q is not a reference by digest: %w", image, err)
				}
				return d.String(), nil
			}
			ref, err := parseImage(image)
			if err != nil {
				return "", err
			}
			if d, ok := ref.(name.Digest); ok {
				return d.String(), nil
			}
			d, err := client(ref).Resolve(ctx, ref)
			if err != nil {
				return "", fmt.Errorf("resolving %s to a digest: %w", image, err)
			}
			return d.String(), nil
		}, nil
	case p.verifyKey != "":
		verify, _, err := p.keyChecks()
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, image string) (string, error) {
			d, proof, err := verify(ctx, image)
			if err != nil {
				return "", err
			}
			if log != nil {
				fmt.Fprintf(log, "%s: %s is signed with %s\n", what, d, p.verifyKey)
			}
			if p.onVerified != nil {
				p.onVerified(ctx, d, proof)
			}
			return d, nil
		}, nil
	}
	return nil, usageErrorf("%s refuses images whose signature was not checked: pass --verify-key cosign.pub, or --allow-unsigned to deploy them knowingly", what)
}

// keyChecks reads --verify-key and returns the signature check that also
// returns the signature that verified, and the offline check of such a
// signature (registry.CheckProof), for serve's admission.
func (p imagePolicy) keyChecks() (func(ctx context.Context, image string) (string, registry.SignatureProof, error), func(digest string, proof registry.SignatureProof) error, error) {
	pub, err := os.ReadFile(p.verifyKey)
	if err != nil {
		return nil, nil, usageErrorf("reading --verify-key: %w", err)
	}
	v, err := registry.LoadPublicKey(p.verifyKey, pub)
	if err != nil {
		return nil, nil, err
	}
	verify := func(ctx context.Context, image string) (string, registry.SignatureProof, error) {
		ref, err := parseImage(image)
		if err != nil {
			return "", registry.SignatureProof{}, err
		}
		client := registry.Client{Keychain: registry.CredentialsFor(os.Getenv, ref.Context().RegistryStr())}
		d, proof, err := client.VerifyWithProof(ctx, ref, v)
		if err != nil {
			return "", registry.SignatureProof{}, err
		}
		return d.String(), proof, nil
	}
	check := func(digest string, proof registry.SignatureProof) error {
		d, err := name.NewDigest(digest, name.StrictValidation)
		if err != nil {
			return err
		}
		return registry.CheckProof(proof, v, d)
	}
	return verify, check, nil
}

// sourceChecker returns the check of an image's provenance against the
// app spec's source.repository (rollout.Promoter.CheckSource): its SLSA
// provenance must be signed with --verify-key, be about the image's
// digest, and name that repository. Nil with --allow-unsigned: there is
// no key to trust a provenance with, and promote says so.
func (p imagePolicy) sourceChecker(log io.Writer) (func(ctx context.Context, image, repository string) error, error) {
	if p.allowUnsigned || p.verifyKey == "" {
		return nil, nil
	}
	v, err := registry.LoadPublicKeyFile(p.verifyKey)
	if err != nil {
		return nil, asUsage(err)
	}
	return func(ctx context.Context, image, repository string) error {
		d, err := name.NewDigest(image)
		if err != nil {
			return fmt.Errorf("checking the provenance of %q: it is not a reference by digest: %w", image, err)
		}
		c := registry.Client{Keychain: registry.CredentialsFor(os.Getenv, d.Context().RegistryStr())}
		prov, err := c.VerifyProvenance(ctx, d, v, repository)
		if errors.Is(err, registry.ErrNoAttestation) {
			return fmt.Errorf("the app's spec names source.repository %s, so the image needs a SLSA provenance signed with %s: %w; build it with 'tsys-ci build' and push it with 'tsys-ci push --sign', or remove source.repository from the spec", repository, p.verifyKey, err)
		}
		if err != nil {
			return err
		}
		if log != nil {
			src := prov.BuildDefinition.ExternalParameters.Source
			fmt.Fprintf(log, "provenance: %s was built from %s at %s by %s\n", d, src.Repository, src.Commit, prov.RunDetails.Builder.ID)
		}
		return nil
	}, nil
}

func parseImage(image string) (name.Reference, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return nil, usageErrorf("image %q is not a valid reference: %v", image, err)
	}
	return ref, nil
}
