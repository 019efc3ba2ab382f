package notify

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"strings"
	"time"
)

// sendEmail delivers one event as a plain-text message: STARTTLS unless
// the target knowingly opts out, PLAIN login when configured.
func sendEmail(e *Email, ev Event, timeout time.Duration) error {
	host, _, _ := net.SplitHostPort(e.SMTP)
	conn, err := net.DialTimeout("tcp", e.SMTP, timeout)
	if err != nil {
		return fmt.Errorf("SMTP %s: %w", e.SMTP, err)
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("SMTP %s: %w", e.SMTP, err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if e.CAFile != "" {
			pem, err := os.ReadFile(e.CAFile)
			if err != nil {
				return fmt.Errorf("SMTP %s: reading caFile: %w", e.SMTP, err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("SMTP %s: caFile %s holds no PEM certificate", e.SMTP, e.CAFile)
			}
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("SMTP %s: STARTTLS: %w", e.SMTP, err)
		}
	} else if !e.InsecurePlaintext {
		return fmt.Errorf("SMTP %s offers no STARTTLS; refusing to send in clear (set insecurePlaintext: true only for a relay on the same host)", e.SMTP)
	}
	if e.Username != "" {
		password, err := readSecretFile("the SMTP password file", e.PasswordFile)
		if err != nil {
			return err
		}
		if err := c.Auth(smtp.PlainAuth("", e.Username, password, host)); err != nil {
			return fmt.Errorf("SMTP %s: login as %s: %w", e.SMTP, e.Username, err)
		}
	}
	if err := c.Mail(e.From); err != nil {
		return fmt.Errorf("SMTP %s: MAIL FROM %s: %w", e.SMTP, e.From, err)
	}
	for _, to := range e.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("SMTP %s: RCPT TO %s: %w", e.SMTP, to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("SMTP %s: DATA: %w", e.SMTP, err)
	}
	if _, err := w.Write(message(e, ev)); err != nil {
		return fmt.Errorf("SMTP %s: writing the message: %w", e.SMTP, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("SMTP %s: the relay refused the message: %w", e.SMTP, err)
	}
	return c.Quit()
}

// message is an RFC 5322 message with CRLF line ends; header values come
// from tsys-ci (app names, kinds), never raw user text, and are stripped of
// line breaks all the same.
func message(e *Email, ev Event) []byte {
	clean := func(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\n", clean(e.From))
	fmt.Fprintf(&b, "To: %s\r\n", clean(strings.Join(e.To, ", ")))
	fmt.Fprintf(&b, "Subject: [tsys-ci] %s\r\n", clean(ev.Title()))
	fmt.Fprintf(&b, "Date: %s\r\n", ev.At.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%d.%s.%s@tsys-ci>\r\n", ev.At.UnixNano(), clean(ev.App), clean(ev.Kind))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(strings.ReplaceAll(ev.Text(), "\n", "\r\n"))
	b.WriteString("\r\n")
	return []byte(b.String())
}
