package serve

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MinWebhookSecret is the fewest characters a webhook secret may have.
const MinWebhookSecret = 16

// LoadWebhookSecrets reads one webhook secret per Harbor project from dir:
// the file named after the project holds the exact Authorization header
// that project's webhook policy sends (a trailing newline, as editors and
// `kubectl create secret --from-file` leave it, is not part of it). Two
// projects with the same secret are refused: either could then send the
// other's events.
func LoadWebhookSecrets(dir string, projects []string) (map[string]string, error) {
	if dir == "" {
		return nil, errors.New("serve.yaml: webhookSecretsDir missing; add `webhookSecretsDir: /var/run/tsys-ci/webhook-secrets`, a directory with one file per Harbor project (named after it) holding that project's webhook auth header, as `tsys-ci registry setup` writes it")
	}
	out := map[string]string{}
	owner := map[string]string{}
	for _, p := range projects {
		file := filepath.Join(dir, p)
		b, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no webhook secret for Harbor project %s: %s does not exist; run `tsys-ci registry setup --project %s --webhook-url ...` and put the secret it writes there", p, file, p)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the webhook secret of Harbor project %s: %w", p, err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		if n := len(secretToken(s)); n < MinWebhookSecret {
			return nil, fmt.Errorf("webhook secret %s has %d characters after its scheme (%q); use at least %d random ones (registry setup makes 43)", file, n, strings.TrimSuffix(s[:len(s)-n], " "), MinWebhookSecret)
		}
		if q, dup := owner[s]; dup {
			return nil, fmt.Errorf("webhook secrets %s and %s are the same; each Harbor project needs its own (`tsys-ci registry setup` makes one per project)", filepath.Join(dir, q), file)
		}
		owner[s] = p
		out[p] = s
	}
	return out, nil
}

// secretToken is what follows the scheme of an Authorization header value
// ("Bearer xyz" -> "xyz"): the scheme is no secret, so it does not count
// towards a secret's length.
func secretToken(header string) string {
	if _, token, ok := strings.Cut(header, " "); ok {
		return strings.TrimLeft(token, " ")
	}
	return header
}

// secretProject returns the project whose webhook secret the header is.
// Every secret is compared, in constant time, whatever matched before.
func secretProject(header string, secrets map[string]string) (string, bool) {
	found := ""
	for p, s := range secrets {
		if secretMatches(header, s) {
			found = p
		}
	}
	return found, found != ""
}
