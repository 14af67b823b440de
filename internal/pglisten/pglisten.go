// Package pglisten keeps one dedicated PostgreSQL connection LISTENing on a
// channel: it connects, LISTENs, hands the connection to its caller's serve
// function, and when the connection is lost reconnects with exponential
// back-off until the context ends.
package pglisten

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// ConnectFunc opens a dedicated LISTEN connection (outside any pool: it is held
// for as long as it stays up).
type ConnectFunc func(ctx context.Context) (*pgx.Conn, error)

// ServeFunc runs one connection whose LISTEN succeeded, until it fails; the
// error it returns is logged as the reason the connection was lost.
type ServeFunc func(ctx context.Context, conn *pgx.Conn) error

// Listener LISTENs on one channel through connections from its ConnectFunc.
type Listener struct {
	connect                ConnectFunc
	channel                string
	minBackoff, maxBackoff time.Duration
	log                    *slog.Logger

	listening atomic.Bool
}

// New returns a Listener on channel whose wait before reconnecting starts at
// minBackoff, doubles after each failed attempt up to maxBackoff, and starts
// over once a LISTEN succeeds. Both bounds must be positive.
func New(connect ConnectFunc, channel string, minBackoff, maxBackoff time.Duration, log *slog.Logger) *Listener {
	return &Listener{connect: connect, channel: channel, minBackoff: minBackoff, maxBackoff: maxBackoff, log: log}
}

// Listening reports whether a connection is LISTENing now.
func (l *Listener) Listening() bool { return l.listening.Load() }

// Run listens until ctx ends, calling serve with each connection once its
// LISTEN succeeded, and reconnecting with back-off when the connection is lost.
// It returns nil when ctx ends.
func (l *Listener) Run(ctx context.Context, serve ServeFunc) error {
	backoff := l.minBackoff
	for {
		connected, err := l.listen(ctx, serve)
		l.listening.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			backoff = l.minBackoff
		}
		l.log.Warn("listen connection lost, reconnecting", "channel", l.channel, "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, l.maxBackoff)
	}
}

// listen runs one connection: LISTEN, then serve. connected reports whether
// LISTEN succeeded.
func (l *Listener) listen(ctx context.Context, serve ServeFunc) (connected bool, err error) {
	conn, err := l.connect(ctx)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.channel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	l.listening.Store(true)
	return true, serve(ctx, conn)
}

// Each calls handle with the payload of every notification conn receives, until
// waiting for one fails.
func Each(ctx context.Context, conn *pgx.Conn, handle func(payload string)) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		handle(n.Payload)
	}
}
