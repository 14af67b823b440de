package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/amas-eye/amas/store"
)

// Store is what the pipeline needs from the database.
type Store interface {
	ResolveSeries(ctx context.Context, refs []store.SeriesRef) ([]int64, error)
	WriteSamples(ctx context.Context, samples []store.Sample, metrics ...string) error
	TouchSeries(ctx context.Context, ids []int64, times []time.Time) error
}

// Config tunes the pipeline; zero fields take the defaults.
type Config struct {
	QueueSize       int           // points accepted but not yet committed; beyond it, back-pressure
	BatchSize       int           // most points in one COPY
	Writers         int           // concurrent COPY transactions
	SeriesCacheSize int           // series ids kept in memory
	TouchInterval   time.Duration // how often a series' last_seen is refreshed
	RetryMin        time.Duration // first back-off after a failed write
	RetryMax        time.Duration // longest back-off
}

// DefaultConfig holds the defaults used for zero Config fields.
var DefaultConfig = Config{
	QueueSize:       500_000,
	BatchSize:       20_000,
	Writers:         2,
	SeriesCacheSize: 1_000_000,
	TouchInterval:   time.Minute,
	RetryMin:        100 * time.Millisecond,
	RetryMax:        5 * time.Second,
}

func (c Config) withDefaults() Config {
	d := DefaultConfig
	if c.QueueSize > 0 {
		d.QueueSize = c.QueueSize
	}
	if c.BatchSize > 0 {
		d.BatchSize = c.BatchSize
	}
	if c.Writers > 0 {
		d.Writers = c.Writers
	}
	if c.SeriesCacheSize > 0 {
		d.SeriesCacheSize = c.SeriesCacheSize
	}
	if c.TouchInterval > 0 {
		d.TouchInterval = c.TouchInterval
	}
	if c.RetryMin > 0 {
		d.RetryMin = c.RetryMin
	}
	if c.RetryMax > 0 {
		d.RetryMax = c.RetryMax
	}
	return d
}

// request is one caller's points; done is nil for fire-and-forget Enqueue calls.
type request struct {
	points []Point
	done   chan error
}

// Pipeline takes validated points from the wire protocols and commits them in
// batches: a bounded queue, series ids resolved through an in-memory cache, and
// one COPY transaction per batch. Points accepted by Write or Enqueue are written
// even when the database is down for a while: writes are retried with back-off
// until they commit, and while they wait the queue fills and callers get
// back-pressure instead.
type Pipeline struct {
	store   Store
	cfg     Config
	log     *slog.Logger
	metrics *pipelineMetrics

	room   *semaphore.Weighted // queue capacity in points
	queue  chan *request
	closed atomic.Bool
	mu     sync.RWMutex // held for reading by senders, for writing by Close
	wg     sync.WaitGroup

	cache   *seriesCache
	touched *touchTracker
	rate    *rateMeter
	queued  atomic.Int64
}

// NewPipeline returns a pipeline writing to st. Run starts it.
func NewPipeline(st Store, cfg Config, log *slog.Logger, reg prometheus.Registerer) *Pipeline {
	cfg = cfg.withDefaults()
	p := &Pipeline{
		store:   st,
		cfg:     cfg,
		log:     log,
		room:    semaphore.NewWeighted(int64(cfg.QueueSize)),
		queue:   make(chan *request, cfg.QueueSize),
		cache:   newSeriesCache(cfg.SeriesCacheSize),
		touched: newTouchTracker(cfg.TouchInterval),
		rate:    newRateMeter(10),
	}
	p.metrics = newPipelineMetrics(reg, func() float64 { return float64(p.queued.Load()) })
	return p
}

// Start launches the writers. They run until Close has drained the queue.
func (p *Pipeline) Start() {
	for range p.cfg.Writers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.writer()
		}()
	}
}

// Close stops accepting points and waits until everything accepted is committed,
// or ctx ends; then the points still queued are reported as lost.
func (p *Pipeline) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed.Swap(true) {
		close(p.queue)
	}
	p.mu.Unlock()
	finished := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush ingest queue: %d points not committed: %w", p.queued.Load(), ctx.Err())
	}
}

// Write queues pts and waits until they are committed. A full queue fails at once
// with ErrOverloaded.
func (p *Pipeline) Write(ctx context.Context, pts []Point) error {
	if len(pts) == 0 {
		return nil
	}
	if len(pts) > p.cfg.QueueSize {
		return fmt.Errorf("%d points in one request: at most %d fit in the write queue", len(pts), p.cfg.QueueSize)
	}
	if !p.room.TryAcquire(int64(len(pts))) {
		p.metrics.rejected.Add(float64(len(pts)))
		return ErrOverloaded
	}
	req := &request{points: pts, done: make(chan error, 1)}
	if err := p.send(req); err != nil {
		return err
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		// The points stay queued and will be committed; only the caller stops waiting.
		return ctx.Err()
	}
}

// Enqueue waits for room in the queue, queues pts and returns without waiting for
// the commit. Blocking here is how the TCP protocol pushes back on its clients.
func (p *Pipeline) Enqueue(ctx context.Context, pts []Point) error {
	if len(pts) == 0 {
		return nil
	}
	if len(pts) > p.cfg.QueueSize {
		return fmt.Errorf("%d points at once: at most %d fit in the write queue", len(pts), p.cfg.QueueSize)
	}
	if err := p.room.Acquire(ctx, int64(len(pts))); err != nil {
		return err
	}
	return p.send(&request{points: pts})
}

func (p *Pipeline) send(req *request) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed.Load() {
		p.room.Release(int64(len(req.points)))
		return ErrClosed
	}
	p.queued.Add(int64(len(req.points)))
	p.queue <- req // never blocks: the semaphore keeps the queue under its capacity
	return nil
}

// Rate is the number of points committed per second over the last ten seconds.
func (p *Pipeline) Rate() float64 { return p.rate.perSecond(time.Now()) }

// writer takes requests off the queue, as many as fit in one batch, and commits them.
func (p *Pipeline) writer() {
	for first := range p.queue {
		batch, n := GatherBatch(p.queue, first, func(r *request) int { return len(r.points) }, p.cfg.BatchSize)
		p.commitAll(batch, n)
		p.queued.Add(-int64(n))
		p.room.Release(int64(n))
	}
}

// GatherBatch starts a batch with first and adds the requests already waiting
// in queue, without waiting for more, until the batch holds limit items (as
// counted by size) or the queue is empty or closed. It returns the batch and
// its item count; the writers of both the point and the span pipelines use it.
func GatherBatch[R any](queue <-chan R, first R, size func(R) int, limit int) ([]R, int) {
	batch := []R{first}
	n := size(first)
	for n < limit {
		select {
		case req, ok := <-queue:
			if !ok {
				return batch, n
			}
			batch = append(batch, req)
			n += size(req)
		default:
			return batch, n
		}
	}
	return batch, n
}

// commitAll commits a batch and hands each request its outcome. When the database
// rejects the batch for its data, the requests are retried one by one, so one
// caller's bad point does not fail the others.
func (p *Pipeline) commitAll(batch []*request, n int) {
	err := p.commit(batch, n)
	if err != nil && len(batch) > 1 {
		for _, req := range batch {
			p.commitAll([]*request{req}, len(req.points))
		}
		return
	}
	for _, req := range batch {
		if req.done != nil {
			req.done <- err
		}
	}
}

// commit writes one batch, retrying with back-off until it succeeds. It gives up
// only when the database rejects the data itself, which retrying cannot fix.
func (p *Pipeline) commit(batch []*request, n int) error {
	backoff := p.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := p.writeBatch(context.Background(), batch, n)
		p.metrics.batchSeconds.Observe(time.Since(start).Seconds())
		if err == nil {
			p.metrics.committed.Add(float64(n))
			p.rate.add(time.Now(), n)
			return nil
		}
		p.metrics.writeErrors.Inc()
		if isDataError(err) {
			p.log.Error("ingest batch rejected by the database", "points", n, "err", err)
			return err
		}
		p.log.Warn("ingest batch failed, retrying", "points", n, "attempt", attempt, "retry_in", backoff, "err", err)
		time.Sleep(backoff)
		backoff = min(backoff*2, p.cfg.RetryMax)
	}
}

// isDataError reports PostgreSQL's class 22 (data exception): the rows themselves
// are unacceptable. Everything else (connection loss, timeouts, locks, a database
// being restarted) is worth retrying.
func isDataError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22")
}

func (p *Pipeline) writeBatch(ctx context.Context, batch []*request, n int) error {
	samples := make([]store.Sample, 0, n)
	var misses []store.SeriesRef
	var missIdx []int
	var missKeys []string
	metrics := map[string]struct{}{}
	lastMetric := ""
	var key []byte
	p.cache.mu.RLock() // one lock for the batch, not one per point
	for _, req := range batch {
		for _, pt := range req.points {
			// The key is built in a reused buffer and the lookup converts it
			// without allocating; only a miss keeps a string of it.
			key = appendSeriesKey(key[:0], pt.Metric, pt.Tags)
			id, ok := p.cache.ids[string(key)]
			if !ok {
				misses = append(misses, store.SeriesRef{Metric: pt.Metric, Tags: pt.Tags})
				missIdx = append(missIdx, len(samples))
				missKeys = append(missKeys, string(key))
			}
			samples = append(samples, store.Sample{SeriesID: id, Time: pt.Time, Value: pt.Value})
			if pt.Metric != lastMetric { // points of one metric come in runs
				metrics[pt.Metric] = struct{}{}
				lastMetric = pt.Metric
			}
		}
	}
	p.cache.mu.RUnlock()
	if len(misses) > 0 {
		ids, err := p.store.ResolveSeries(ctx, misses)
		if err != nil {
			return fmt.Errorf("resolve %d series: %w", len(misses), err)
		}
		for i, id := range ids {
			samples[missIdx[i]].SeriesID = id
			p.cache.put(missKeys[i], id)
		}
		p.metrics.seriesCreated.Add(float64(len(misses)))
	}
	names := make([]string, 0, len(metrics))
	for m := range metrics {
		names = append(names, m)
	}
	sort.Strings(names)
	if err := p.store.WriteSamples(ctx, samples, names...); err != nil {
		return err
	}
	if ids, times := p.touched.due(samples, time.Now()); len(ids) > 0 {
		if err := p.store.TouchSeries(ctx, ids, times); err != nil {
			p.log.Warn("update series last_seen", "series", len(ids), "err", err)
		}
	}
	return nil
}

// appendSeriesKey appends the series key of metric and tags to b: the bytes of
// store.SeriesRef.Key, without its string allocation.
func appendSeriesKey(b []byte, metric string, tags map[string]string) []byte {
	type tag struct{ k, v string }
	var buf [16]tag // the tags without allocating, for the usual few
	sorted := buf[:0]
	for k, v := range tags {
		// Insertion into place: a point has a few tags, and keeping the values
		// with the keys saves looking each one up again.
		i := len(sorted)
		sorted = append(sorted, tag{})
		for i > 0 && sorted[i-1].k > k {
			sorted[i] = sorted[i-1]
			i--
		}
		sorted[i] = tag{k, v}
	}
	b = append(b, metric...)
	for _, t := range sorted {
		b = append(b, 0)
		b = append(b, t.k...)
		b = append(b, '=')
		b = append(b, t.v...)
	}
	return b
}
