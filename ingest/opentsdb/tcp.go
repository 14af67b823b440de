package opentsdb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/ingest"
)

// TCPConfig configures the telnet-style listener.
type TCPConfig struct {
	// TrustedCIDRs are the networks whose connections may put without an
	// "auth <token>" line (tcollector cannot send one).
	TrustedCIDRs []netip.Prefix
	// MaxLineBytes bounds one line; a longer one is refused and skipped.
	MaxLineBytes int
	Limits       ingest.Limits
	// Version is the answer to the version command.
	Version string
}

// Authenticator checks the token of an "auth" line.
type Authenticator func(ctx context.Context, token string) (auth.Principal, error)

// maxBatch is the most points one connection hands to the pipeline at once:
// lines already in the read buffer are gathered up to it, so a fast client costs
// one queue operation per batch rather than per point.
const maxBatch = 1000

// drainTimeout bounds how long a stopping server still waits for queue room for
// the points it has already read, so that a stop loses nothing the pipeline can
// take, yet cannot hang on a database that is down.
const drainTimeout = 10 * time.Second

// TCPServer serves OpenTSDB's telnet protocol.
type TCPServer struct {
	cfg   TCPConfig
	w     Writer
	authn Authenticator
	log   *slog.Logger
	conns prometheus.Gauge
	tags  *tagCache // shared by the connections: agents resend the same series
}

// NewTCPServer returns a server writing to w. It registers its own metrics on
// reg (amas_put_connections); RejectedPoints is registered by the caller.
func NewTCPServer(cfg TCPConfig, w Writer, authn Authenticator, log *slog.Logger, reg prometheus.Registerer) *TCPServer {
	if cfg.MaxLineBytes <= 0 {
		cfg.MaxLineBytes = 4096
	}
	s := &TCPServer{cfg: cfg, w: w, authn: authn, log: log, tags: newTagCache(),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "amas_put_connections", Help: "Open telnet put connections.",
		})}
	reg.MustRegister(s.conns)
	return s
}

// Serve accepts connections until ctx ends. Then it closes the listener, ends
// every connection once the lines already received are handled, and returns
// nil when their handlers are done. Points already read are still queued,
// waiting up to drainTimeout for room.
func (s *TCPServer) Serve(ctx context.Context, ln net.Listener) error {
	connCtx, stopConns := context.WithCancel(ctx)
	queueCtx, stopQueue := context.WithCancel(context.WithoutCancel(ctx))
	defer stopQueue()
	stopListening := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stopListening()

	var wg sync.WaitGroup
	err := s.accept(ctx, ln, func(conn net.Conn) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(connCtx, queueCtx, conn)
		}()
	})
	stopConns()
	drainDeadline := time.AfterFunc(drainTimeout, stopQueue)
	defer drainDeadline.Stop()
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// accept hands each new connection to serve until ctx ends or the listener is
// closed. Other accept errors (out of file descriptors and the like) are waited
// out, as net/http does.
func (s *TCPServer) accept(ctx context.Context, ln net.Listener, serve func(net.Conn)) error {
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err == nil {
			delay = 0
			serve(conn)
			continue
		}
		if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("accept put connections: %w", err)
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		s.log.Warn("accept put connection", "err", err, "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
	}
}

func (s *TCPServer) serveConn(ctx, queueCtx context.Context, conn net.Conn) {
	s.conns.Inc()
	defer s.conns.Dec()
	defer conn.Close()
	// When the server stops, reads end once the buffered lines are handled, and
	// a client that does not read its replies cannot hold the server up.
	stop := context.AfterFunc(ctx, func() {
		_ = conn.SetReadDeadline(time.Now())
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	})
	defer stop()
	ss := &session{
		s:        s,
		queueCtx: queueCtx,
		r:        bufio.NewReaderSize(conn, max(s.cfg.MaxLineBytes+1, 64<<10)),
		out:      bufio.NewWriter(conn),
		allowed:  s.trusted(conn.RemoteAddr()),
	}
	err := ss.run(ctx)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, errExit) && ctx.Err() == nil {
		s.log.Debug("put connection ended", "remote", conn.RemoteAddr().String(), "err", err)
	}
}

func (s *TCPServer) trusted(addr net.Addr) bool {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range s.cfg.TrustedCIDRs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
