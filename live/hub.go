// Package live keeps series queries current for GraphQL subscriptions. A Hub holds
// one dedicated PostgreSQL connection that LISTENs on store.SamplesChannel; every
// commit of samples, on any replica, announces its metrics there, and the Hub
// re-runs the subscriptions of those metrics from where each last left off.
package live

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/amas-eye/amas/internal/pglisten"
	"github.com/amas-eye/amas/store"
)

// Querier runs series queries (store.Store).
type Querier interface {
	QuerySeries(ctx context.Context, q store.SeriesQuery) ([]store.Series, error)
}

// ConnectFunc opens the Hub's dedicated LISTEN connection.
type ConnectFunc = pglisten.ConnectFunc

// PoolConnector opens connections with pool's settings but outside it: a LISTEN
// connection is held for the life of the Hub and must not take a pool slot.
func PoolConnector(pool *pgxpool.Pool) ConnectFunc {
	return func(ctx context.Context) (*pgx.Conn, error) {
		return pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	}
}

// Options tune a Hub; the zero value gives the defaults.
type Options struct {
	// Coalesce is the least time between two re-runs of one subscription's query
	// (default 250ms): a burst of commits costs one query.
	Coalesce time.Duration
	// Buffer is how many updates may wait for a slow subscriber (default 4). When
	// they are all waiting the Hub stops querying for it, and its next update,
	// once there is room, covers the gap.
	Buffer int
	// MinBackoff and MaxBackoff bound the wait before reconnecting a lost LISTEN
	// connection (defaults 100ms and 10s).
	MinBackoff, MaxBackoff time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o *Options) fill() {
	if o.Coalesce <= 0 {
		o.Coalesce = 250 * time.Millisecond
	}
	if o.Buffer <= 0 {
		o.Buffer = 4
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(10*time.Second, o.MinBackoff)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// futureSlack is how far past the clock an update reads (at most 100 steps), so
// samples stamped a little ahead (agents' clocks) are not held back until the
// clock catches up.
const futureSlack = time.Minute

// Hub fans notifications out to subscriptions. Run owns its connection; Subscribe
// may be called before, during and after Run.
type Hub struct {
	listener *pglisten.Listener
	q        Querier
	log      *slog.Logger
	opt      Options

	mu       sync.Mutex
	byMetric map[string]map[*subscription]struct{}
}

// New returns a Hub that listens through connections from connect and re-runs
// queries with q.
func New(connect ConnectFunc, q Querier, log *slog.Logger, opt Options) *Hub {
	opt.fill()
	log = log.With("component", "live")
	return &Hub{
		listener: pglisten.New(connect, store.SamplesChannel, opt.MinBackoff, opt.MaxBackoff, log),
		q:        q,
		log:      log,
		opt:      opt,
		byMetric: map[string]map[*subscription]struct{}{},
	}
}

// Listening reports whether the LISTEN connection is up: until it is, commits are
// not seen (subscriptions catch up when it comes back).
func (h *Hub) Listening() bool { return h.listener.Listening() }

// Run listens until ctx ends, reconnecting with exponential back-off when the
// connection is lost. It returns nil when ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	return h.listener.Run(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		// Commits made while no connection listened were not announced.
		h.wakeAll()
		return pglisten.Each(ctx, conn, h.dispatch)
	})
}

// dispatch wakes the subscriptions of the metrics a notification names.
func (h *Hub) dispatch(payload string) {
	if payload == store.AnyMetric {
		h.wakeAll()
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for metric := range strings.SplitSeq(payload, "\n") {
		for s := range h.byMetric[metric] {
			s.nudge()
		}
	}
}

func (h *Hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, subs := range h.byMetric {
		for s := range subs {
			s.nudge()
		}
	}
}

func (h *Hub) add(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	subs := h.byMetric[s.q.Metric]
	if subs == nil {
		subs = map[*subscription]struct{}{}
		h.byMetric[s.q.Metric] = subs
	}
	subs[s] = struct{}{}
}

func (h *Hub) remove(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.byMetric[s.q.Metric], s)
	if len(h.byMetric[s.q.Metric]) == 0 {
		delete(h.byMetric, s.q.Metric)
	}
}

// Subscribe answers q and keeps the answer current until ctx ends, when the
// channel is closed. The first value is the answer for [q.From, q.To]; each
// following one holds, per series, the points that are new or whose value
// changed since the last value sent, from one step before the newest point sent
// onwards (past q.To too). A bad query is an error here, before any value; a
// later update that the store refuses (the subscriber fell so far behind that the
// gap exceeds the point limit) ends the subscription.
func (h *Hub) Subscribe(ctx context.Context, q store.SeriesQuery) (<-chan []store.Series, error) {
	if q.Step == 0 && q.From.Before(q.To) {
		q.Step = autoStep(q.To.Sub(q.From))
	}
	s := &subscription{
		q:    q,
		wake: make(chan struct{}, 1),
		out:  make(chan []store.Series, h.opt.Buffer),
		last: map[string]store.Point{},
	}
	// Registered before the first query, so a commit it does not see still wakes it.
	h.add(s)
	first, err := h.q.QuerySeries(ctx, q)
	if err != nil {
		h.remove(s)
		return nil, err
	}
	s.record(first)
	s.out <- first
	go h.serve(ctx, s)
	return s.out, nil
}

// serve re-runs s's query when woken, at most once per Coalesce, until ctx ends.
func (h *Hub) serve(ctx context.Context, s *subscription) {
	defer close(s.out)
	defer h.remove(s)
	var lastRun time.Time
	var retry <-chan time.Time // set while the subscriber is behind
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-retry:
		}
		retry = nil
		if wait := h.opt.Coalesce - h.opt.Now().Sub(lastRun); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if len(s.out) == cap(s.out) {
			// Behind: no query until it has read something; the cursor stays, so
			// that update covers everything since.
			retry = time.After(h.opt.Coalesce)
			continue
		}
		lastRun = h.opt.Now()
		if err := h.update(ctx, s); err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, store.ErrBadQuery) {
				h.log.Warn("live query refused, ending subscription", "metric", s.q.Metric, "err", err)
				return
			}
			// Retried on the next commit, or when the LISTEN connection is back.
			h.log.Warn("live query failed", "metric", s.q.Metric, "err", err)
		}
	}
}

// update queries from s's cursor to now and sends what changed.
func (h *Hub) update(ctx context.Context, s *subscription) error {
	q := s.q
	if !s.cursor.IsZero() {
		// One step back: that bucket may have grown, and a rate needs it.
		q.From = s.cursor.Add(-q.Step)
	}
	q.To = h.opt.Now().Add(min(futureSlack, 100*q.Step))
	if !q.From.Before(q.To) {
		return nil
	}
	series, err := h.q.QuerySeries(ctx, q)
	if err != nil {
		return err
	}
	if delta := s.changes(series); len(delta) > 0 {
		// Never blocks: serve is the only sender and saw room.
		s.out <- delta
		s.record(delta)
	}
	return nil
}

// subscription is one live query. Only its serve goroutine touches cursor and
// last once it runs.
type subscription struct {
	q    store.SeriesQuery // Step always set
	wake chan struct{}
	out  chan []store.Series

	cursor time.Time              // newest point time sent
	last   map[string]store.Point // newest point sent, per series
}

// nudge asks for a re-run without blocking; one pending nudge is enough.
func (s *subscription) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// changes keeps, of an answer, the points each series has not sent yet: newer
// than its last point sent, or that point with a new value.
func (s *subscription) changes(series []store.Series) []store.Series {
	var out []store.Series
	for _, sr := range series {
		last, seen := s.last[seriesKey(sr)]
		var pts []store.Point
		for _, p := range sr.Points {
			if !seen || p.T.After(last.T) || (p.T.Equal(last.T) && p.V != last.V) {
				pts = append(pts, p)
			}
		}
		if len(pts) > 0 {
			out = append(out, store.Series{Metric: sr.Metric, Tags: sr.Tags, Points: pts})
		}
	}
	return out
}

// record moves the cursor past what was sent.
func (s *subscription) record(sent []store.Series) {
	for _, sr := range sent {
		if n := len(sr.Points); n > 0 {
			p := sr.Points[n-1]
			s.last[seriesKey(sr)] = p
			if p.T.After(s.cursor) {
				s.cursor = p.T
			}
		}
	}
}

func seriesKey(sr store.Series) string {
	return store.SeriesRef{Metric: sr.Metric, Tags: sr.Tags}.Key()
}

// niceSteps mirrors the store's choice for a query without a step, so that a live
// chart and a one-off query of the same range show the same points. The Hub needs
// the step itself: its updates cover short ranges, for which the store would
// choose a finer one.
var niceSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

func autoStep(span time.Duration) time.Duration {
	raw := span / store.TargetPoints
	for _, st := range niceSteps {
		if st >= raw {
			return st
		}
	}
	day := 24 * time.Hour
	return (raw + day - 1) / day * day
}
