// Package events fans alert state changes out to live subscribers (the GraphQL
// alertEvents subscription). A Hub holds one dedicated PostgreSQL connection that
// LISTENs on store.AlertsChannel, where every engine, on any replica, announces
// each change it commits; the Hub reads the changes from alert_history and hands
// them to the subscriptions that match.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/internal/pglisten"
	"github.com/amas-eye/amas/store"
)

// History reads state changes (store.Store).
type History interface {
	AlertHistory(ctx context.Context, f store.HistoryFilter) ([]store.AlertHistoryEntry, error)
}

// ConnectFunc opens the Hub's LISTEN connection (outside the pool).
type ConnectFunc = pglisten.ConnectFunc

// Filter selects the changes a subscription receives; zero fields select all.
type Filter struct {
	RuleID int64
	States []alerting.State  // the state changed to
	Labels map[string]string // every pair must be in the alert's labels
}

func (f Filter) match(e store.AlertHistoryEntry) bool {
	if f.RuleID != 0 && e.RuleID != f.RuleID {
		return false
	}
	if len(f.States) > 0 && !slices.Contains(f.States, e.To) {
		return false
	}
	for k, v := range f.Labels {
		if e.Labels[k] != v {
			return false
		}
	}
	return true
}

// Options tune a Hub; the zero value gives the defaults.
type Options struct {
	// Buffer is how many changes may wait for one subscriber (default 256). A
	// subscriber that falls further behind is disconnected (its channel closed):
	// memory stays bounded, and the client re-reads alertHistory and subscribes
	// again rather than silently missing changes.
	Buffer int
	// Gather is how long the Hub waits for more notifications before reading a
	// burst of them from the history in one query (default 20ms).
	Gather time.Duration
	// MinBackoff and MaxBackoff bound the wait before reconnecting (100ms, 10s).
	MinBackoff, MaxBackoff time.Duration
}

func (o *Options) fill() {
	if o.Buffer <= 0 {
		o.Buffer = 256
	}
	if o.Gather <= 0 {
		o.Gather = 20 * time.Millisecond
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(10*time.Second, o.MinBackoff)
	}
}

// maxBurst bounds the changes read from the history in one query.
const maxBurst = 1000

type subscriber struct {
	f  Filter
	ch chan store.AlertHistoryEntry
}

// Hub fans changes out. Run owns the connection; Subscribe may be called at any time.
type Hub struct {
	listener *pglisten.Listener
	hist     History
	log      *slog.Logger
	opt      Options

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	lastID int64 // the newest change handed out, for catching up after a reconnect
}

// New returns a Hub.
func New(connect ConnectFunc, hist History, log *slog.Logger, opt Options) *Hub {
	opt.fill()
	log = log.With("component", "alert-events")
	return &Hub{listener: pglisten.New(connect, store.AlertsChannel, opt.MinBackoff, opt.MaxBackoff, log),
		hist: hist, log: log, opt: opt, subs: map[*subscriber]struct{}{}}
}

// Subscribe returns the changes matching f from now on. The channel is closed when
// ctx ends, or when the subscriber falls Buffer changes behind.
func (h *Hub) Subscribe(ctx context.Context, f Filter) <-chan store.AlertHistoryEntry {
	s := &subscriber{f: f, ch: make(chan store.AlertHistoryEntry, h.opt.Buffer)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	go func() {
		<-ctx.Done()
		h.drop(s)
	}()
	return s.ch
}

// drop removes s and closes its channel, once.
func (h *Hub) drop(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

// Run listens until ctx ends, reconnecting with back-off. It returns nil when ctx ends.
func (h *Hub) Run(ctx context.Context) error { return h.listener.Run(ctx, h.serve) }

// serve catches up on one LISTENing connection, then delivers its notifications.
func (h *Hub) serve(ctx context.Context, conn *pgx.Conn) error {
	// Changes committed while nobody listened: read them from the history.
	h.mu.Lock()
	last := h.lastID
	h.mu.Unlock()
	if last > 0 {
		if err := h.deliver(ctx, store.HistoryFilter{AfterID: last, Limit: maxBurst}); err != nil {
			return err
		}
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		ids := []int64{historyID(n.Payload)}
		// Gather the rest of a burst, so a storm costs one history query.
		for len(ids) < maxBurst {
			gctx, cancel := context.WithTimeout(ctx, h.opt.Gather)
			n, err := conn.WaitForNotification(gctx)
			cancel()
			if err != nil {
				if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
					return fmt.Errorf("wait for notification: %w", err)
				}
				break
			}
			ids = append(ids, historyID(n.Payload))
		}
		if err := h.deliver(ctx, store.HistoryFilter{IDs: ids, Limit: len(ids)}); err != nil {
			return err
		}
	}
}

func historyID(payload string) int64 {
	var ev store.AlertEvent
	if err := json.Unmarshal([]byte(payload), &ev); err != nil {
		return 0
	}
	return ev.HistoryID
}

// deliver reads the changes f selects and hands them, oldest first, to the
// matching subscribers.
func (h *Hub) deliver(ctx context.Context, f store.HistoryFilter) error {
	h.mu.Lock()
	idle := len(h.subs) == 0
	if idle {
		for _, id := range f.IDs {
			h.lastID = max(h.lastID, id)
		}
	}
	h.mu.Unlock()
	if idle {
		return nil
	}
	entries, err := h.hist.AlertHistory(ctx, f)
	if err != nil {
		return err
	}
	slices.SortFunc(entries, func(a, b store.AlertHistoryEntry) int { return int(a.ID - b.ID) })
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range entries {
		h.lastID = max(h.lastID, e.ID)
		for s := range h.subs {
			if !s.f.match(e) {
				continue
			}
			select {
			case s.ch <- e:
			default:
				h.log.Warn("alert events subscriber too slow, disconnected", "buffer", h.opt.Buffer)
				delete(h.subs, s)
				close(s.ch)
			}
		}
	}
	return nil
}
