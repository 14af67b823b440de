package live

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amas-eye/amas/store"
)

// SpanReader reads the spans of one announced commit (store.Store).
type SpanReader interface {
	BatchSpans(ctx context.Context, b store.SpanBatch, f store.SpanFilter) ([]store.Span, error)
}

// SpanHub pushes newly stored spans to live subscriptions. It holds one
// dedicated connection that LISTENs on store.SpansChannel, where every span
// commit on any replica is announced; for each announcement a subscription
// whose filter can match reads that commit's matching spans.
type SpanHub struct {
	connect ConnectFunc
	r       SpanReader
	log     *slog.Logger
	opt     Options

	listening atomic.Bool

	mu   sync.Mutex
	subs map[*spanSubscription]struct{}
}

// spanBacklog is how many announced commits may wait for one slow subscriber;
// beyond it, commits are skipped for it and the skip is logged.
const spanBacklog = 64

type spanSubscription struct {
	f       store.SpanFilter
	batches chan store.SpanBatch
	skipped atomic.Int64
}

// NewSpanHub returns a hub listening through connections from connect and
// reading spans with r. Of opt, only the back-off bounds are used.
func NewSpanHub(connect ConnectFunc, r SpanReader, log *slog.Logger, opt Options) *SpanHub {
	opt.fill()
	return &SpanHub{connect: connect, r: r, log: log.With("component", "live-spans"), opt: opt,
		subs: map[*spanSubscription]struct{}{}}
}

// Listening reports whether the LISTEN connection is up.
func (h *SpanHub) Listening() bool { return h.listening.Load() }

// Run listens until ctx ends, reconnecting with exponential back-off.
func (h *SpanHub) Run(ctx context.Context) error {
	backoff := h.opt.MinBackoff
	for {
		connected, err := h.listen(ctx)
		h.listening.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			backoff = h.opt.MinBackoff
		}
		h.log.Warn("listen connection lost, reconnecting", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, h.opt.MaxBackoff)
	}
}

func (h *SpanHub) listen(ctx context.Context) (bool, error) {
	conn, err := h.connect(ctx)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{store.SpansChannel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	h.listening.Store(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, fmt.Errorf("wait for notification: %w", err)
		}
		var b store.SpanBatch
		if err := json.Unmarshal([]byte(n.Payload), &b); err != nil {
			h.log.Warn("unreadable span notification", "payload", n.Payload, "err", err)
			continue
		}
		h.dispatch(b)
	}
}

// dispatch hands a commit to every subscription whose service it may contain.
func (h *SpanHub) dispatch(b store.SpanBatch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.f.Service != "" && b.Services != nil && !slices.Contains(b.Services, s.f.Service) {
			continue
		}
		select {
		case s.batches <- b:
		default:
			s.skipped.Add(1)
		}
	}
}

// Subscribe pushes, until ctx ends, the spans passing f of every commit
// announced from now on, one slice per commit (at most store.MaxLiveSpans).
// The channel is closed when ctx ends.
func (h *SpanHub) Subscribe(ctx context.Context, f store.SpanFilter) (<-chan []store.Span, error) {
	s := &spanSubscription{f: f, batches: make(chan store.SpanBatch, spanBacklog)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	out := make(chan []store.Span)
	go func() {
		defer close(out)
		defer func() {
			h.mu.Lock()
			delete(h.subs, s)
			h.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-s.batches:
				if n := s.skipped.Swap(0); n > 0 {
					h.log.Warn("live span subscriber too slow: commits skipped", "skipped", n)
				}
				spans, err := h.r.BatchSpans(ctx, b, s.f)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					h.log.Warn("read live spans", "batch", b.Batch, "err", err)
					continue
				}
				if len(spans) == 0 {
					continue
				}
				select {
				case out <- spans:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
