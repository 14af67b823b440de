package opentsdb

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
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

// TCPServer serves OpenTSDB's telnet protocol.
type TCPServer struct {
	cfg   TCPConfig
	w     Writer
	authn Authenticator
	log   *slog.Logger
	conns prometheus.Gauge
}

// NewTCPServer returns a server writing to w. It registers its own metrics on
// reg; RejectedPoints is registered by the caller.
func NewTCPServer(cfg TCPConfig, w Writer, authn Authenticator, log *slog.Logger, reg prometheus.Registerer) *TCPServer {
	if cfg.MaxLineBytes <= 0 {
		cfg.MaxLineBytes = 4096
	}
	s := &TCPServer{cfg: cfg, w: w, authn: authn, log: log,
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "amas_put_connections", Help: "Open telnet put connections.",
		})}
	reg.MustRegister(s.conns)
	return s
}

// Serve accepts connections until ctx ends, then closes the listener and every
// connection and returns once their handlers are done; every point handed to
// the pipeline by then stays queued.
func (s *TCPServer) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: wait, as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept", "err", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			wg.Wait()
			return err
		}
		delay = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, conn)
		}()
	}
}

// session is one connection's state.
type session struct {
	s       *TCPServer
	conn    net.Conn
	r       *bufio.Reader
	out     *bufio.Writer
	allowed bool // trusted network, or an auth line with a token that can write
	batch   []ingest.Point
}

func (s *TCPServer) serveConn(ctx context.Context, conn net.Conn) {
	s.conns.Inc()
	defer s.conns.Dec()
	defer conn.Close()
	// Unblock a read when the server stops.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	ss := &session{
		s: s, conn: conn,
		r:       bufio.NewReaderSize(conn, max(s.cfg.MaxLineBytes+1, 64<<10)),
		out:     bufio.NewWriter(conn),
		allowed: s.trusted(conn.RemoteAddr()),
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

var errExit = errors.New("exit")

// run reads lines until the client leaves. Puts are gathered while more lines
// are already buffered, then handed over in one batch; replies are flushed
// before every read that would block.
func (ss *session) run(ctx context.Context) error {
	for {
		if ss.r.Buffered() == 0 || len(ss.batch) >= maxBatch {
			if err := ss.flush(ctx); err != nil {
				return err
			}
		}
		line, err := ss.readLine()
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				RejectedPoints.WithLabelValues(protoTelnet, reasonLineTooLong).Inc()
				ss.reply("put: illegal argument: line too long: more than %d bytes (--ingest-max-line-bytes)", ss.s.cfg.MaxLineBytes)
				continue
			}
			_ = ss.flush(ctx)
			return err
		}
		if err := ss.handle(ctx, line); err != nil {
			_ = ss.flush(ctx)
			return err
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its end; a line longer than
// MaxLineBytes is consumed and reported as errLineTooLong.
func (ss *session) readLine() (string, error) {
	b, err := ss.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || (err == nil && len(b) > ss.s.cfg.MaxLineBytes+1) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = ss.r.ReadSlice('\n')
		}
		if err != nil {
			return "", err
		}
		return "", errLineTooLong
	}
	if err != nil {
		if len(b) > 0 && errors.Is(err, io.EOF) {
			return string(bytes.TrimRight(b, "\r")), nil // a last line without its newline
		}
		return "", err
	}
	b = bytes.TrimRight(b[:len(b)-1], "\r")
	if len(b) > ss.s.cfg.MaxLineBytes {
		return "", errLineTooLong
	}
	return string(b), nil
}

// handle runs one command line.
func (ss *session) handle(ctx context.Context, line string) error {
	cmd, rest, _ := strings.Cut(strings.TrimLeft(line, " \t"), " ")
	switch cmd {
	case "":
		return nil
	case "put":
		if !ss.allowed {
			RejectedPoints.WithLabelValues(protoTelnet, reasonUnauthorized).Inc()
			ss.reply("put: authentication required: send \"auth <token>\" first (a token whose role can write)")
			return nil
		}
		p, err := ParsePutLine(line, ss.s.cfg.Limits)
		if err != nil {
			RejectedPoints.WithLabelValues(protoTelnet, ingest.ReasonOf(err)).Inc()
			ss.reply("put: %s", err)
			return nil
		}
		ss.batch = append(ss.batch, p)
	case "auth":
		ss.authenticate(ctx, strings.TrimSpace(rest))
	case "version":
		// Replies come after every earlier point was queued, so a client can use
		// version as a barrier.
		if err := ss.flush(ctx); err != nil {
			return err
		}
		ss.reply("%s", ss.s.cfg.Version)
	case "help":
		ss.reply("available commands: auth exit help put version")
	case "exit":
		return errExit
	default:
		ss.reply("unknown command: %s.  Try `help'.", cmd)
	}
	return nil
}

func (ss *session) authenticate(ctx context.Context, token string) {
	if token == "" {
		ss.reply("AUTH_FAIL: usage: auth <token>")
		return
	}
	p, err := ss.s.authn(ctx, token)
	switch {
	case err != nil:
		ss.allowed = false
		ss.reply("AUTH_FAIL: %s", err)
	case !p.Role.CanWrite():
		ss.allowed = false
		ss.reply("AUTH_FAIL: token %q has role %s, which cannot write data", p.TokenName, p.Role)
	default:
		ss.allowed = true
		ss.reply("AUTH_SUCCESS")
	}
}

// flush hands the gathered points to the pipeline, waiting for room (the
// back-pressure a telnet client feels), and sends the pending replies.
func (ss *session) flush(ctx context.Context) error {
	if len(ss.batch) > 0 {
		pts := ss.batch
		ss.batch = make([]ingest.Point, 0, len(pts))
		if err := ss.s.w.Enqueue(ctx, pts); err != nil {
			RejectedPoints.WithLabelValues(protoTelnet, reasonOverloaded).Add(float64(len(pts)))
			ss.reply("put: %d points not stored: %s", len(pts), err)
			_ = ss.out.Flush()
			return err
		}
	}
	return ss.out.Flush()
}

func (ss *session) reply(format string, args ...any) {
	_, _ = ss.out.WriteString(strings.TrimRight(fmt.Sprintf(format, args...), "\n") + "\n")
}
