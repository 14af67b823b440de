package notifiers

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/amas-eye/amas/alerting/notifiers/notifierstest"
)

func emailChannel(srv *notifierstest.SMTPServer, settings map[string]string, secrets map[string]string) Channel {
	s := map[string]string{"smarthost": srv.Addr, "from": "Amas <amas@example.com>", "to": "ops@example.com, dba@example.com", "ca_cert": srv.CACert}
	for k, v := range settings {
		s[k] = v
	}
	return Channel{Name: "mail", Type: "email", Settings: s, Secrets: secrets}
}

func TestEmailStartTLSAuthMultipart(t *testing.T) {
	srv := notifierstest.StartSMTP(t, notifierstest.SMTPOptions{Username: "amas", Password: "pw"})
	s, err := New(emailChannel(srv, map[string]string{"username": "amas"}, map[string]string{"password": "pw"}),
		Deps{Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatal(err)
	}
	got := srv.Wait(t, 1)[0]
	if !got.TLS || got.AuthUser != "amas" {
		t.Errorf("mail came with TLS=%v auth=%q, want STARTTLS and AUTH PLAIN as amas", got.TLS, got.AuthUser)
	}
	if got.From != "amas@example.com" || strings.Join(got.To, ",") != "ops@example.com,dba@example.com" {
		t.Errorf("envelope from %q to %v", got.From, got.To)
	}
	m, err := mail.ReadMessage(bytes.NewReader(got.Data))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil || subject != "[FIRING:1] HighCPU" {
		t.Errorf("Subject = %q (%v)", subject, err)
	}
	if d, err := m.Header.Date(); err != nil || !d.Equal(fixedNow) {
		t.Errorf("Date = %v (%v), want %v", d, err, fixedNow)
	}
	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v)", m.Header.Get("Content-Type"), err)
	}
	parts := map[string]string{}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		parts[ct] = strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	want, err := Preview("email", "", sampleMessage())
	if err != nil {
		t.Fatal(err)
	}
	if parts["text/plain"] != want.Text {
		t.Errorf("text part:\n%s\nwant:\n%s", parts["text/plain"], want.Text)
	}
	if parts["text/html"] != want.HTML {
		t.Errorf("html part:\n%s\nwant:\n%s", parts["text/html"], want.HTML)
	}
}

func TestEmailFailures(t *testing.T) {
	t.Run("wrong password is permanent", func(t *testing.T) {
		srv := notifierstest.StartSMTP(t, notifierstest.SMTPOptions{Username: "amas", Password: "pw"})
		s, err := New(emailChannel(srv, map[string]string{"username": "amas"}, map[string]string{"password": "nope"}), Deps{})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Send(context.Background(), sampleMessage())
		if err == nil || Retryable(err) || !strings.Contains(err.Error(), "AUTH") {
			t.Errorf("err = %v (retryable %v), want a permanent AUTH failure", err, Retryable(err))
		}
	})
	t.Run("no STARTTLS offered is permanent", func(t *testing.T) {
		srv := notifierstest.StartSMTP(t, notifierstest.SMTPOptions{NoTLS: true})
		s, err := New(emailChannel(srv, nil, nil), Deps{})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Send(context.Background(), sampleMessage())
		if err == nil || Retryable(err) || !strings.Contains(err.Error(), "STARTTLS") {
			t.Errorf("err = %v, want a permanent STARTTLS error", err)
		}
		if len(srv.Mails()) != 0 {
			t.Error("mail was sent in the clear")
		}
	})
	t.Run("untrusted certificate is permanent", func(t *testing.T) {
		srv := notifierstest.StartSMTP(t, notifierstest.SMTPOptions{})
		ch := emailChannel(srv, nil, nil)
		delete(ch.Settings, "ca_cert")
		s, err := New(ch, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(context.Background(), sampleMessage()); err == nil || Retryable(err) {
			t.Errorf("err = %v, want a permanent certificate error", err)
		}
	})
	t.Run("4xx is retryable", func(t *testing.T) {
		srv := notifierstest.StartSMTP(t, notifierstest.SMTPOptions{})
		srv.Reject(&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"})
		s, err := New(emailChannel(srv, nil, nil), Deps{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(context.Background(), sampleMessage()); err == nil || !Retryable(err) {
			t.Errorf("err = %v, want a retryable error", err)
		}
	})
	t.Run("plain connection without tls", func(t *testing.T) {
		srv := notifierstest.StartSMTP(t, notifierstest.SMTPOptions{NoTLS: true})
		s, err := New(emailChannel(srv, map[string]string{"tls": "none"}, nil), Deps{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(context.Background(), sampleMessage()); err != nil {
			t.Fatal(err)
		}
		if m := srv.Wait(t, 1)[0]; m.TLS {
			t.Error("tls none still upgraded")
		}
	})
}
