package live

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/amas-eye/amas/internal/pglisten"
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
	listener *pglisten.Listener
	r        SpanReader
	log      *slog.Logger

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
	log = log.With("component", "live-spans")
	return &SpanHub{listener: pglisten.New(connect, store.SpansChannel, opt.MinBackoff, opt.MaxBackoff, log),
		r: r, log: log, subs: map[*spanSubscription]struct{}{}}
}

// Listening reports whether the LISTEN connection is up.
func (h *SpanHub) Listening() bool { return h.listener.Listening() }

// Run listens until ctx ends, reconnecting with exponential back-off.
func (h *SpanHub) Run(ctx context.Context) error {
	return h.listener.Run(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		return pglisten.Each(ctx, conn, func(payload string) {
			var b store.SpanBatch
			if err := json.Unmarshal([]byte(payload), &b); err != nil {
				h.log.Warn("unreadable span notification", "payload", payload, "err", err)
				return
			}
			h.dispatch(b)
		})
	})
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
