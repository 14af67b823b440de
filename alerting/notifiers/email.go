package notifiers

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

var emailType = Type{
	Name:  "email",
	Title: "Email (SMTP)",
	Settings: []Setting{
		{Key: "smarthost", Description: "SMTP server as host:port, e.g. smtp.example.com:587", Required: true},
		{Key: "from", Description: "sender address", Required: true},
		{Key: "to", Description: "comma-separated recipient addresses", Required: true},
		{Key: "tls", Description: "starttls (upgrade the connection, required), tls (implicit TLS, port 465) or none", Default: "starttls"},
		{Key: "username", Description: "SMTP AUTH PLAIN user; empty: no authentication"},
		{Key: "password", Description: "SMTP AUTH PLAIN password", Secret: true},
		{Key: "ca_cert", Description: "PEM certificate(s) to trust for the server instead of the system's"},
		{Key: "server_name", Description: "name the server's certificate must carry; empty: the smarthost's host"},
		{Key: "hello", Description: "name sent in EHLO", Default: "localhost"},
	},
	DefaultTemplate: `{{define "title"}}[{{.Status | upper}}{{if .Firing}}:{{len .Firing}}{{end}}]{{range sortedKeys .GroupLabels}} {{index $.GroupLabels .}}{{end}}{{end}}
{{define "message"}}{{with .Firing}}Firing ({{len .}}):
{{range .}}- {{with .Annotations.summary}}{{.}}{{else}}{{.Labels.alertname}}{{end}}{{if .Acknowledged}} (acknowledged){{end}}
  labels: {{pairs .Labels}}
{{with .Annotations.description}}  {{.}}
{{end}}  since {{timeFmt .StartsAt}}
{{end}}{{end}}{{with .Resolved}}
Resolved ({{len .}}):
{{range .}}- {{with .Annotations.summary}}{{.}}{{else}}{{.Labels.alertname}}{{end}}
  labels: {{pairs .Labels}}
  {{timeFmt .StartsAt}} to {{timeFmt .EndsAt}}
{{end}}{{end}}{{with .ExternalURL}}
{{.}}{{end}}{{end}}
{{define "html"}}<!DOCTYPE html>
<html><body style="font-family:sans-serif">
<h2>{{template "title" .}}</h2>
<table cellpadding="6" style="border-collapse:collapse">
<tr><th align="left">Status</th><th align="left">Alert</th><th align="left">Labels</th><th align="left">Since</th></tr>
{{range .Alerts}}<tr style="color:{{if eq .Status "firing"}}#b00020{{else}}#1b5e20{{end}}">
<td>{{.Status}}{{if .Acknowledged}} (ack){{end}}</td>
<td>{{with .Annotations.summary}}{{.}}{{else}}{{.Labels.alertname}}{{end}}{{with .Annotations.description}}<br><small>{{.}}</small>{{end}}</td>
<td>{{pairs .Labels}}</td>
<td>{{timeFmt .StartsAt}}{{if eq .Status "resolved"}} to {{timeFmt .EndsAt}}{{end}}</td>
</tr>
{{end}}</table>
{{with .ExternalURL}}<p><a href="{{.}}">{{.}}</a></p>{{end}}
</body></html>{{end}}`,
	build: newEmail,
}

const smtpTimeout = 30 * time.Second

type email struct {
	now      func() time.Time
	addr     string
	host     string
	from     *mail.Address
	to       []*mail.Address
	mode     string
	username string
	password string
	tls      *tls.Config
	hello    string
	template string
}

func newEmail(ch Channel, get func(key string) string, deps Deps) (Sender, error) {
	addr := get("smarthost")
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("email channel: smarthost %q must be host:port", addr)
	}
	from, err := mail.ParseAddress(get("from"))
	if err != nil {
		return nil, fmt.Errorf("email channel: from %q is not an address: %w", get("from"), err)
	}
	to, err := mail.ParseAddressList(get("to"))
	if err != nil {
		return nil, fmt.Errorf("email channel: to %q is not a list of addresses: %w", get("to"), err)
	}
	mode := get("tls")
	if mode != "starttls" && mode != "tls" && mode != "none" {
		return nil, fmt.Errorf("email channel: tls %q must be starttls, tls or none", mode)
	}
	serverName := get("server_name")
	if serverName == "" {
		serverName = host
	}
	tlsConf := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if pem := get("ca_cert"); pem != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(pem)) {
			return nil, fmt.Errorf("email channel: ca_cert holds no PEM certificate")
		}
		tlsConf.RootCAs = pool
	}
	user := get("username")
	if user != "" && get("password") == "" {
		return nil, fmt.Errorf("email channel: username is set, so password is required")
	}
	return &email{now: deps.Now, addr: addr, host: host, from: from, to: to, mode: mode, username: user,
		password: get("password"), tls: tlsConf, hello: get("hello"), template: ch.Template}, nil
}

func (e *email) Send(ctx context.Context, msg *Message) error {
	r, err := Render(emailType.Name, e.template, msg)
	if err != nil {
		return err
	}
	body, err := e.compose(r)
	if err != nil {
		return err
	}
	return classifySMTP(e.deliver(ctx, body))
}

// compose writes the MIME message: multipart/alternative with the text and the
// HTML rendering.
func (e *email) compose(r Rendered) ([]byte, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	var id [12]byte
	_, _ = rand.Read(id[:])
	to := make([]string, len(e.to))
	for i, a := range e.to {
		to[i] = a.String()
	}
	h := []string{
		"From: " + e.from.String(),
		"To: " + strings.Join(to, ", "),
		"Subject: " + mime.QEncoding.Encode("utf-8", r.Title),
		"Date: " + e.now().Format(time.RFC1123Z),
		"Message-Id: <" + hex.EncodeToString(id[:]) + "@amas>",
		"MIME-Version: 1.0",
		"Content-Type: multipart/alternative; boundary=" + mw.Boundary(),
		"", "",
	}
	buf.WriteString(strings.Join(h, "\r\n"))
	for _, part := range []struct{ kind, body string }{{"text/plain", r.Text}, {"text/html", r.HTML}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.kind + "; charset=UTF-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, fmt.Errorf("compose mail: %w", err)
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(strings.ReplaceAll(part.body, "\n", "\r\n"))); err != nil {
			return nil, fmt.Errorf("compose mail: %w", err)
		}
		if err := qp.Close(); err != nil {
			return nil, fmt.Errorf("compose mail: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("compose mail: %w", err)
	}
	return buf.Bytes(), nil
}

// deliver speaks SMTP: EHLO, STARTTLS (unless tls is none or tls), AUTH PLAIN
// when a username is set, MAIL, RCPT for each recipient, DATA, QUIT.
func (e *email) deliver(ctx context.Context, body []byte) error {
	d := &net.Dialer{Timeout: smtpTimeout}
	var conn net.Conn
	var err error
	if e.mode == "tls" {
		conn, err = (&tls.Dialer{NetDialer: d, Config: e.tls}).DialContext(ctx, "tcp", e.addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", e.addr)
	}
	if err != nil {
		return fmt.Errorf("connect to %s: %w", e.addr, err)
	}
	deadline := time.Now().Add(smtpTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("greeting of %s: %w", e.addr, err)
	}
	defer c.Close()
	if err := c.Hello(e.hello); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	if e.mode == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return permanent(fmt.Errorf("%s does not offer STARTTLS (set tls to none to send in the clear)", e.addr))
		}
		if err := c.StartTLS(e.tls); err != nil {
			return permanent(fmt.Errorf("STARTTLS: %w", err))
		}
	}
	if e.username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return permanent(fmt.Errorf("%s does not offer AUTH", e.addr))
		}
		if err := c.Auth(smtp.PlainAuth("", e.username, e.password, e.host)); err != nil {
			return fmt.Errorf("AUTH PLAIN: %w", err)
		}
	}
	if err := c.Mail(e.from.Address); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, a := range e.to {
		if err := c.Rcpt(a.Address); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", a.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	return c.Quit()
}

// permanentError is a failure no retry gets past (a server without STARTTLS).
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func permanent(err error) error { return permanentError{err} }

// classifySMTP marks transient failures retryable: network errors and 4xx
// replies; 5xx replies, certificate and configuration problems are permanent.
func classifySMTP(err error) error {
	if err == nil {
		return nil
	}
	var perm permanentError
	if errors.As(err, &perm) {
		return err
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		if tp.Code >= 400 && tp.Code < 500 {
			return Retry(err)
		}
		return err
	}
	var cert *tls.CertificateVerificationError
	if errors.As(err, &cert) || errors.Is(err, context.Canceled) {
		return err
	}
	// Connection refused, reset or timed out: the server may be back soon.
	return Retry(err)
}
