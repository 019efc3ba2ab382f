package registry

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// PEM block types of cosign's encrypted private keys: cosign v2 writes the
// first and still reads the second, older one; so does tsys-ci.
const (
	sigstorePrivateKeyType = "ENCRYPTED SIGSTORE PRIVATE KEY"
	cosignPrivateKeyType   = "ENCRYPTED COSIGN PRIVATE KEY"
)

// GenerateKeyPair makes an ECDSA P-256 key pair in cosign's format: the
// private key PKCS #8, encrypted with password (scrypt + secretbox, as
// `cosign generate-key-pair` does), the public key PEM. `cosign sign --key`
// takes the one, `cosign verify --key` the other.
func GenerateKeyPair(password []byte) (privPEM, pubPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating a key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the private key: %w", err)
	}
	enc, err := encrypted.Encrypt(der, password)
	if err != nil {
		return nil, nil, fmt.Errorf("encrypting the private key: %w", err)
	}
	pubPEM, err = cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: sigstorePrivateKeyType, Bytes: enc}), pubPEM, nil
}

// LoadPrivateKey decrypts a cosign private key (from a file named where, for
// messages) with password (COSIGN_PASSWORD).
func LoadPrivateKey(where string, privPEM, password []byte) (signature.SignerVerifier, error) {
	block, _ := pem.Decode(privPEM)
	if block == nil {
		return nil, &UsageError{fmt.Sprintf("%s is not a PEM file; pass a cosign private key (cosign.key)", where)}
	}
	if block.Type != sigstorePrivateKeyType && block.Type != cosignPrivateKeyType {
		return nil, &UsageError{fmt.Sprintf("%s holds a %q, not a cosign private key; pass the .key file of 'cosign generate-key-pair'", where, block.Type)}
	}
	der, err := encrypted.Decrypt(block.Bytes, password)
	if err != nil {
		return nil, &UsageError{fmt.Sprintf("decrypting %s: %v; is COSIGN_PASSWORD the key's password?", where, err)}
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the private key in %s: %w", where, err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, &UsageError{fmt.Sprintf("%s holds a %T key; tsys-ci signs with ECDSA keys (cosign's default)", where, key)}
	}
	return signature.LoadECDSASignerVerifier(ec, crypto.SHA256)
}

// LoadPublicKey reads a PEM public key (cosign.pub).
func LoadPublicKey(where string, pubPEM []byte) (signature.Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return nil, &UsageError{fmt.Sprintf("%s is not a PEM public key (%v); pass the .pub file of 'cosign generate-key-pair'", where, err)}
	}
	if _, ok := pub.(*ecdsa.PublicKey); !ok {
		return nil, &UsageError{fmt.Sprintf("%s holds a %T key; tsys-ci verifies ECDSA keys (cosign's default)", where, pub)}
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("loading the public key in %s: %w", where, err)
	}
	return v, nil
}

// LoadPrivateKeyFile reads and decrypts the cosign private key at path.
func LoadPrivateKeyFile(path string, password []byte) (signature.SignerVerifier, error) {
	if path == "" {
		return nil, &UsageError{"--key is required: the cosign private key to sign with (cosign.key)"}
	}
	priv, err := os.ReadFile(path)
	if err != nil {
		return nil, &UsageError{fmt.Sprintf("reading the signing key: %v", err)}
	}
	return LoadPrivateKey(path, priv, password)
}

// LoadPublicKeyFile reads the public key at path.
func LoadPublicKeyFile(path string) (signature.Verifier, error) {
	if path == "" {
		return nil, &UsageError{"--key is required: the public key (cosign.pub) the image must be signed with"}
	}
	pub, err := os.ReadFile(path)
	if err != nil {
		return nil, &UsageError{fmt.Sprintf("reading the public key: %v", err)}
	}
	return LoadPublicKey(path, pub)
}
