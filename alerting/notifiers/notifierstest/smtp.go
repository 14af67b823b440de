// Package notifierstest runs a real SMTP server for tests of the email channel:
// go-smtp speaking ESMTP with STARTTLS (a certificate made for 127.0.0.1) and
// AUTH PLAIN, keeping every message it accepts.
package notifierstest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is one message the server accepted.
type Mail struct {
	From     string
	To       []string
	Data     []byte
	TLS      bool   // the message came over a connection upgraded by STARTTLS
	AuthUser string // who authenticated, empty when nobody did
}

// SMTPServer is a running test server.
type SMTPServer struct {
	Addr string
	// CACert is the PEM of the server's self-signed certificate, for the
	// channel's ca_cert setting.
	CACert string

	mu    sync.Mutex
	mails []Mail
	// Reject, when set, answers MAIL FROM with this error (e.g. a 451 to test
	// retries); it is read under mu.
	reject error
	got    chan struct{}
}

// SMTPOptions choose what the server offers.
type SMTPOptions struct {
	// NoTLS leaves STARTTLS out of the server's extensions.
	NoTLS bool
	// Username and Password are the only credentials AUTH PLAIN accepts; with
	// Username empty the server takes mail without authentication.
	Username, Password string
}

// StartSMTP starts a server on 127.0.0.1 that stops when the test ends.
func StartSMTP(t testing.TB, opts SMTPOptions) *SMTPServer {
	t.Helper()
	certPEM, cert := selfSigned(t)
	s := &SMTPServer{CACert: certPEM, got: make(chan struct{}, 100)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: s, conn: c, opts: opts}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	if !opts.NoTLS {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return s
}

// Reject makes MAIL FROM fail with err until called with nil.
func (s *SMTPServer) Reject(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = err
}

// Mails returns the messages accepted so far.
func (s *SMTPServer) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Wait waits up to 10 seconds for the server to hold n messages.
func (s *SMTPServer) Wait(t testing.TB, n int) []Mail {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		if m := s.Mails(); len(m) >= n {
			return m
		}
		select {
		case <-s.got:
		case <-timeout:
			t.Fatalf("SMTP server got %d messages, want %d", len(s.Mails()), n)
		}
	}
}

type session struct {
	srv  *SMTPServer
	conn *smtp.Conn
	opts SMTPOptions
	mail Mail
}

var errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}

func (s *session) AuthMechanisms() []string {
	if s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.opts.Username || password != s.opts.Password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.mail.AuthUser = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.srv.mu.Lock()
	reject := s.srv.reject
	s.srv.mu.Unlock()
	if reject != nil {
		return reject
	}
	if s.opts.Username != "" && s.mail.AuthUser == "" {
		return errAuthRequired
	}
	_, s.mail.TLS = s.conn.TLSConnectionState()
	s.mail.From = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.mail.To = append(s.mail.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := s.mail
	m.Data = bytes.Clone(b)
	s.srv.mu.Lock()
	s.srv.mails = append(s.srv.mails, m)
	s.srv.mu.Unlock()
	select {
	case s.srv.got <- struct{}{}:
	default:
	}
	return nil
}

func (s *session) Reset() {
	s.mail = Mail{AuthUser: s.mail.AuthUser}
}

func (s *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and localhost.
func selfSigned(t testing.TB) (string, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "amas test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(errors.Join(errors.New("test certificate"), err))
	}
	return string(certPEM), cert
}
