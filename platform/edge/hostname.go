package edge

import (
	"fmt"
	"strings"
)

// ValidateHost checks that h is a host name the edge can route and request a
// certificate for: a lowercase fully qualified DNS name (RFC 1123 labels, at
// least two of them, 253 characters at most) that is not an IP address and
// not a wildcard. HAProxy matches Host headers against the map exactly, so
// anything looser would never match or would match by accident.
func ValidateHost(h string) error {
	if h == "" {
		return fmt.Errorf("host name is empty")
	}
	if len(h) > 253 {
		return fmt.Errorf("host name %.40q... is %d characters long; DNS allows 253", h, len(h))
	}
	if strings.ToLower(h) != h {
		return fmt.Errorf("host name %q has capital letters; write it as %q", h, strings.ToLower(h))
	}
	labels := strings.Split(h, ".")
	if len(labels) < 2 {
		return fmt.Errorf("host name %q is not fully qualified (app.company.example, not app)", h)
	}
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return fmt.Errorf("host name %q: %w", h, err)
		}
	}
	if allDigits(labels[len(labels)-1]) {
		return fmt.Errorf("host name %q looks like an IP address; the edge routes names", h)
	}
	return nil
}

func checkLabel(l string) error {
	switch {
	case l == "":
		return fmt.Errorf("has an empty label (two dots in a row, or a leading or trailing dot)")
	case len(l) > 63:
		return fmt.Errorf("label %q is longer than 63 characters", l)
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Errorf("label %q starts or ends with a hyphen", l)
	}
	for _, c := range l {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("label %q has %q; only a-z, 0-9 and '-' are allowed", l, c)
		}
	}
	return nil
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
