package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/amas-eye/amas/ingest"
	"github.com/amas-eye/amas/store"
)

// SpanStore commits span batches (store.SpanWriter).
type SpanStore interface {
	WriteSpans(ctx context.Context, spans []store.Span) error
}

// SpanPipelineConfig tunes a SpanPipeline; zero fields take the defaults.
type SpanPipelineConfig struct {
	QueueSize int // spans accepted but not yet committed; beyond it, back-pressure
	BatchSize int // most spans in one COPY
	Writers   int // concurrent COPY transactions
	RetryMin  time.Duration
	RetryMax  time.Duration
	// OnCommit, when set, is given every committed batch (the RED aggregator).
	OnCommit func(spans []store.Span)
}

// DefaultSpanPipelineConfig holds the defaults of zero fields.
var DefaultSpanPipelineConfig = SpanPipelineConfig{
	QueueSize: 200_000,
	BatchSize: 8192,
	Writers:   2,
	RetryMin:  100 * time.Millisecond,
	RetryMax:  5 * time.Second,
}

func (c SpanPipelineConfig) withDefaults() SpanPipelineConfig {
	d := DefaultSpanPipelineConfig
	if c.QueueSize > 0 {
		d.QueueSize = c.QueueSize
	}
	if c.BatchSize > 0 {
		d.BatchSize = c.BatchSize
	}
	if c.Writers > 0 {
		d.Writers = c.Writers
	}
	if c.RetryMin > 0 {
		d.RetryMin = c.RetryMin
	}
	if c.RetryMax > 0 {
		d.RetryMax = c.RetryMax
	}
	d.OnCommit = c.OnCommit
	return d
}

// errTooLarge is a request that can never fit; retrying it cannot help.
var errTooLarge = errors.New("request too large")

type spanRequest struct {
	spans []store.Span
	done  chan error
}

// SpanPipeline commits spans in batches: a bounded queue, one COPY transaction
// per batch of requests, retried with back-off while the database is away, so a
// Write that returns nil means its spans are committed. A full queue fails at
// once with ingest.ErrOverloaded, which the receivers turn into retryable
// back-pressure.
type SpanPipeline struct {
	st  SpanStore
	cfg SpanPipelineConfig
	log *slog.Logger

	room   *semaphore.Weighted
	queue  chan *spanRequest
	mu     sync.RWMutex // senders read-lock, Close write-locks
	closed atomic.Bool
	wg     sync.WaitGroup
	queued atomic.Int64

	committed, overloaded, writeErrors prometheus.Counter
	batchSeconds                       prometheus.Histogram
}

// NewSpanPipeline returns a pipeline into st; Start starts it. reg may be nil.
func NewSpanPipeline(st SpanStore, cfg SpanPipelineConfig, log *slog.Logger, reg prometheus.Registerer) *SpanPipeline {
	cfg = cfg.withDefaults()
	p := &SpanPipeline{
		st: st, cfg: cfg, log: log,
		room:  semaphore.NewWeighted(int64(cfg.QueueSize)),
		queue: make(chan *spanRequest, cfg.QueueSize),
		committed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "amas_spans_committed_total", Help: "Spans committed to the database."}),
		overloaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "amas_spans_overloaded_total", Help: "Spans refused with back-pressure because the span queue was full."}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "amas_spans_batch_errors_total", Help: "Failed span batch writes (each is retried unless the data was rejected)."}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "amas_spans_batch_write_seconds", Help: "Time to write one span batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	if reg != nil {
		reg.MustRegister(p.committed, p.overloaded, p.writeErrors, p.batchSeconds,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "amas_spans_queue", Help: "Spans accepted and waiting to be committed."},
				func() float64 { return float64(p.queued.Load()) }))
	}
	return p
}

// Start launches the writers; they run until Close has drained the queue.
func (p *SpanPipeline) Start() {
	for range p.cfg.Writers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.writer()
		}()
	}
}

// Write queues spans and waits for their commit.
func (p *SpanPipeline) Write(ctx context.Context, spans []store.Span) error {
	if len(spans) == 0 {
		return nil
	}
	if len(spans) > p.cfg.QueueSize {
		return fmt.Errorf("%w: %d spans in one request, at most %d fit in the span queue", errTooLarge, len(spans), p.cfg.QueueSize)
	}
	if !p.room.TryAcquire(int64(len(spans))) {
		p.overloaded.Add(float64(len(spans)))
		return ingest.ErrOverloaded
	}
	req := &spanRequest{spans: spans, done: make(chan error, 1)}
	p.mu.RLock()
	if p.closed.Load() {
		p.mu.RUnlock()
		p.room.Release(int64(len(spans)))
		return ingest.ErrClosed
	}
	p.queued.Add(int64(len(spans)))
	p.queue <- req // never blocks: the semaphore keeps the queue under its capacity
	p.mu.RUnlock()
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		// The spans stay queued and will be committed; only the caller stops waiting.
		return ctx.Err()
	}
}

// Close stops accepting spans and waits until everything accepted is committed,
// or ctx ends.
func (p *SpanPipeline) Close(ctx context.Context) error {
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
		return fmt.Errorf("flush span queue: %d spans not committed: %w", p.queued.Load(), ctx.Err())
	}
}

func (p *SpanPipeline) writer() {
	for first := range p.queue {
		batch, n := ingest.GatherBatch(p.queue, first, func(r *spanRequest) int { return len(r.spans) }, p.cfg.BatchSize)
		p.commitAll(batch, n)
		p.queued.Add(-int64(n))
		p.room.Release(int64(n))
	}
}

// commitAll commits a batch; when the database refuses its data, the requests
// are retried one by one so that one caller's bad span fails only that caller.
func (p *SpanPipeline) commitAll(batch []*spanRequest, n int) {
	spans := batch[0].spans
	if len(batch) > 1 {
		spans = make([]store.Span, 0, n)
		for _, req := range batch {
			spans = append(spans, req.spans...)
		}
	}
	err := p.commit(spans)
	if err != nil && len(batch) > 1 {
		for _, req := range batch {
			p.commitAll([]*spanRequest{req}, len(req.spans))
		}
		return
	}
	if err == nil && p.cfg.OnCommit != nil {
		p.cfg.OnCommit(spans)
	}
	for _, req := range batch {
		req.done <- err
	}
}

func (p *SpanPipeline) commit(spans []store.Span) error {
	backoff := p.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := p.st.WriteSpans(context.Background(), spans)
		p.batchSeconds.Observe(time.Since(start).Seconds())
		if err == nil {
			p.committed.Add(float64(len(spans)))
			return nil
		}
		p.writeErrors.Inc()
		if isDataError(err) {
			p.log.Error("span batch rejected by the database", "spans", len(spans), "err", err)
			return err
		}
		p.log.Warn("span batch failed, retrying", "spans", len(spans), "attempt", attempt, "retry_in", backoff, "err", err)
		time.Sleep(backoff)
		backoff = min(backoff*2, p.cfg.RetryMax)
	}
}

// isDataError reports PostgreSQL's class 22 (data exception): retrying the same
// rows cannot succeed.
func isDataError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22")
}
