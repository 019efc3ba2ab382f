package ldapcheck

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"unicode"
)

// ldifLine writes one attribute value line of LDIF (RFC 2849). A value that
// is not a SAFE-STRING (NUL, CR, LF or a non-ASCII byte anywhere, a leading
// space, ':' or '<') or that ends in a space is written base64 as
// "attr:: ...", so a group name or login with a newline can never add lines
// of its own to the LDIF an operator loads (issue 17, finding 12).
func ldifLine(attr, value string) string {
	if safeLDIF(value) {
		return attr + ": " + value + "\n"
	}
	return attr + ":: " + base64.StdEncoding.EncodeToString([]byte(value)) + "\n"
}

func safeLDIF(v string) bool {
	if v == "" {
		return true
	}
	switch v[0] {
	case ' ', ':', '<':
		return false
	}
	if v[len(v)-1] == ' ' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if b := v[i]; b == 0 || b == '\n' || b == '\r' || b >= 0x80 {
			return false
		}
	}
	return true
}

// ldifComment writes a comment line; control characters in s (a newline
// above all) are written as Go escapes such as \n, so they cannot end the
// comment.
func ldifComment(s string) string {
	var b strings.Builder
	b.WriteString("# ")
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	b.WriteString("\n")
	return b.String()
}

// ldifFileURL is the file:// URL of an LDIF "attr:< URL" line.
func ldifFileURL(path string) string {
	return (&url.URL{Scheme: "file", Path: path}).String()
}
