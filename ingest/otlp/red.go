package otlp

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/amas-eye/amas/ingest"
	"github.com/amas-eye/amas/store"
)

// The RED metrics derived from spans, one series per (service, operation) with
// tags service and operation (the span name), both sanitized like tag values.
// Each point covers the spans that started in one interval (default 10s) and is
// stamped with the interval's start.
const (
	// MetricCalls is the number of spans (requests) in the interval.
	MetricCalls = "traces.span.calls"
	// MetricErrors is the number of those spans with status ERROR.
	MetricErrors = "traces.span.errors"
	// MetricDurationAvg and the percentiles are span durations in milliseconds.
	MetricDurationAvg = "traces.span.duration.avg"
	MetricDurationP50 = "traces.span.duration.p50"
	MetricDurationP95 = "traces.span.duration.p95"
	MetricDurationP99 = "traces.span.duration.p99"
)

// PointEnqueuer queues points for commit (ingest.Pipeline), waiting for room.
type PointEnqueuer interface {
	Enqueue(ctx context.Context, pts []ingest.Point) error
}

// REDConfig tunes the aggregator; zero fields take the defaults.
type REDConfig struct {
	// Interval is the width of one point (default 10s).
	Interval time.Duration
	// MaxSamples bounds the durations kept per series and interval for the
	// percentiles (default 10,000); beyond it a uniform reservoir sample is kept.
	MaxSamples int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// RED aggregates committed spans into rate, error and duration series. An
// interval is written once its end is one more interval in the past, so spans
// arriving a little late are still counted in it; spans that start in an
// interval already written count in the oldest one still open.
type RED struct {
	out PointEnqueuer
	cfg REDConfig
	log *slog.Logger

	mu      sync.Mutex
	open    map[time.Time]map[redKey]*redAcc
	flushed time.Time // start of the oldest interval not yet written
	rng     *rand.Rand
}

type redKey struct{ service, operation string }

type redAcc struct {
	calls, errors int64
	sum           time.Duration
	samples       []time.Duration
}

// NewRED returns an aggregator writing to out.
func NewRED(out PointEnqueuer, cfg REDConfig, log *slog.Logger) *RED {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.MaxSamples <= 0 {
		cfg.MaxSamples = 10_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &RED{out: out, cfg: cfg, log: log, open: map[time.Time]map[redKey]*redAcc{},
		rng: rand.New(rand.NewPCG(1, 2))}
}

// Observe counts committed spans.
func (r *RED) Observe(spans []store.Span) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range spans {
		sp := &spans[i]
		bucket := sp.Start.Truncate(r.cfg.Interval)
		if bucket.Before(r.flushed) {
			bucket = r.flushed
		}
		accs := r.open[bucket]
		if accs == nil {
			accs = map[redKey]*redAcc{}
			r.open[bucket] = accs
		}
		k := redKey{sp.Service, sp.Name}
		a := accs[k]
		if a == nil {
			a = &redAcc{}
			accs[k] = a
		}
		a.calls++
		if sp.StatusCode == store.StatusError {
			a.errors++
		}
		a.sum += sp.Duration
		if len(a.samples) < r.cfg.MaxSamples {
			a.samples = append(a.samples, sp.Duration)
		} else if j := r.rng.Int64N(a.calls); j < int64(r.cfg.MaxSamples) {
			a.samples[j] = sp.Duration
		}
	}
}

// Run writes due intervals every Interval until ctx ends; Flush writes the rest.
func (r *RED) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := r.write(ctx, r.Due(r.cfg.Now())); err != nil && ctx.Err() == nil {
				r.log.Warn("write RED metrics", "err", err)
			}
		}
	}
}

// Flush writes every open interval, due or not (at shutdown).
func (r *RED) Flush(ctx context.Context) error {
	return r.write(ctx, r.take(func(time.Time) bool { return true }, time.Time{}))
}

func (r *RED) write(ctx context.Context, pts []ingest.Point) error {
	if len(pts) == 0 {
		return nil
	}
	return r.out.Enqueue(ctx, pts)
}

// Due takes the points of the intervals that are due at now: those that ended
// at least one interval before it.
func (r *RED) Due(now time.Time) []ingest.Point {
	horizon := now.Add(-r.cfg.Interval).Truncate(r.cfg.Interval)
	return r.take(func(bucket time.Time) bool { return !bucket.Add(r.cfg.Interval).After(horizon) }, horizon)
}

// take removes the intervals that pass due and returns their points; flushedTo,
// when later, becomes the oldest interval still open.
func (r *RED) take(due func(time.Time) bool, flushedTo time.Time) []ingest.Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ingest.Point
	for bucket, accs := range r.open {
		if !due(bucket) {
			continue
		}
		for k, a := range accs {
			out = append(out, a.points(k, bucket)...)
		}
		delete(r.open, bucket)
		if next := bucket.Add(r.cfg.Interval); next.After(r.flushed) {
			r.flushed = next
		}
	}
	if flushedTo.After(r.flushed) {
		r.flushed = flushedTo
	}
	return out
}

func (a *redAcc) points(k redKey, t time.Time) []ingest.Point {
	tags := map[string]string{"service": tagValue(k.service), "operation": tagValue(k.operation)}
	slices.Sort(a.samples)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return []ingest.Point{
		{Metric: MetricCalls, Tags: tags, Time: t, Value: float64(a.calls)},
		{Metric: MetricErrors, Tags: tags, Time: t, Value: float64(a.errors)},
		{Metric: MetricDurationAvg, Tags: tags, Time: t, Value: ms(a.sum) / float64(a.calls)},
		{Metric: MetricDurationP50, Tags: tags, Time: t, Value: ms(Percentile(a.samples, 0.5))},
		{Metric: MetricDurationP95, Tags: tags, Time: t, Value: ms(Percentile(a.samples, 0.95))},
		{Metric: MetricDurationP99, Tags: tags, Time: t, Value: ms(Percentile(a.samples, 0.99))},
	}
}

// tagValue is s as a tag value: sanitized, "unknown" when nothing is left.
func tagValue(s string) string {
	if s = sanitize(s); s == "" {
		return "unknown"
	}
	return s
}

// Percentile interpolates linearly between the closest ranks of sorted, as
// PostgreSQL's percentile_cont does, so RED series and operationStats agree.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	lo := int(pos)
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	frac := pos - float64(lo)
	return sorted[lo] + time.Duration(frac*float64(sorted[lo+1]-sorted[lo]))
}
