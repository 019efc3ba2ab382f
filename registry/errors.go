package registry

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// explain turns the errors a registry client meets into ones that say what
// to do: wrong credentials, no such image, a registry that does not answer.
func explain(err error, registry string) error {
	if err == nil {
		return nil
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("registry %s refused the credentials (401): %w; check TSYS_CI_REGISTRY_USERNAME and TSYS_CI_REGISTRY_PASSWORD (or the Docker config), that TSYS_CI_REGISTRY names this registry when it is not the one given on the command line (the login goes only to the registries it is for), and that the project exists and the account may push to it (Harbor answers 401 for both)", registry, err)
		case http.StatusForbidden:
			return fmt.Errorf("registry %s denied access (403): %w; the account needs push/pull rights on this repository", registry, err)
		case http.StatusNotFound:
			return fmt.Errorf("not found in registry %s (404): %w; check the name and tag", registry, err)
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return fmt.Errorf("not found in registry %s: %w; check the name and tag", registry, err)
			}
		}
		return err
	}
	var ue *url.Error
	var ne *net.OpError
	if errors.As(err, &ne) || errors.As(err, &ue) {
		return fmt.Errorf("cannot reach registry %s: %w; check the address and that the registry is running", registry, err)
	}
	return err
}
