package opentsdb

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/amas-eye/amas/ingest"
)

// session is one connection's state.
type session struct {
	s        *TCPServer
	queueCtx context.Context // outlives the connection's context while the server drains
	r        *bufio.Reader
	out      *bufio.Writer
	allowed  bool // trusted network, or an auth line with a token that can write
	batch    []ingest.Point
}

var errExit = errors.New("exit")

// run reads lines until the client leaves. Puts are gathered while more lines
// are already buffered, then handed over in one batch; replies are flushed
// before every read that would block.
func (ss *session) run(ctx context.Context) error {
	for {
		if ss.r.Buffered() == 0 || len(ss.batch) >= maxBatch {
			if err := ss.flush(); err != nil {
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
			_ = ss.flush()
			return err
		}
		if err := ss.handle(ctx, line); err != nil {
			_ = ss.flush()
			return err
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its end ("\n" or "\r\n"); a line
// longer than MaxLineBytes is consumed and reported as errLineTooLong. A last
// line without its newline counts when the client closes its side.
func (ss *session) readLine() (string, error) {
	b, err := ss.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = ss.r.ReadSlice('\n')
		}
		if err != nil {
			return "", err
		}
		return "", errLineTooLong
	}
	if err != nil && !(errors.Is(err, io.EOF) && len(b) > 0) {
		return "", err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) > ss.s.cfg.MaxLineBytes {
		return "", errLineTooLong
	}
	return string(b), nil
}

// handle runs one command line.
func (ss *session) handle(ctx context.Context, line string) error {
	cmd, rest := nextField(line)
	switch cmd {
	case "":
		return nil
	case "put":
		if !ss.allowed {
			RejectedPoints.WithLabelValues(protoTelnet, reasonUnauthorized).Inc()
			ss.reply("put: authentication required: send \"auth <token>\" first (a token whose role can write)")
			return nil
		}
		p, err := parsePutLine(line, ss.s.cfg.Limits, ss.s.tags)
		if err != nil {
			RejectedPoints.WithLabelValues(protoTelnet, ingest.ReasonOf(err)).Inc()
			ss.reply("put: %s", err)
			return nil
		}
		ss.batch = append(ss.batch, p)
	case "auth":
		ss.authenticate(ctx, trimBlanks(rest))
	case "version":
		// Replies come after every earlier point was queued, so a client can use
		// version as a barrier.
		if err := ss.flush(); err != nil {
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

// authenticate answers as OpenTSDB's AuthenticationChannelHandler does,
// AUTH_SUCCESS or AUTH_FAIL, which is what clients written for it look for;
// Amas adds why it failed. A failed auth leaves the connection open and unable
// to put, whatever it could do before.
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
func (ss *session) flush() error {
	if len(ss.batch) > 0 {
		pts := ss.batch
		ss.batch = make([]ingest.Point, 0, len(pts))
		if err := ss.s.w.Enqueue(ss.queueCtx, pts); err != nil {
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
