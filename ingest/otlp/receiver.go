package otlp

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/amas-eye/amas/ingest"
	"github.com/amas-eye/amas/store"
)

// SpanWriter commits spans and waits for the commit (SpanPipeline).
type SpanWriter interface {
	Write(ctx context.Context, spans []store.Span) error
}

// PointWriter commits points and waits for the commit (ingest.Pipeline).
type PointWriter interface {
	Write(ctx context.Context, pts []ingest.Point) error
}

// maxHistogramWindows bounds the cumulative histogram series whose last counts
// are kept for windowed percentiles.
const maxHistogramWindows = 100_000

// RetryAfter is the delay the back-pressure replies suggest.
const RetryAfter = time.Second

// Receiver is the protocol-independent part of the OTLP services: convert,
// commit, and count what was refused.
type Receiver struct {
	spans    SpanWriter
	points   PointWriter
	limits   ingest.Limits
	windows  *HistogramWindows
	log      *slog.Logger
	rejected *prometheus.CounterVec
}

// NewReceiver returns a receiver committing to spans and points; reg may be nil.
func NewReceiver(spans SpanWriter, points PointWriter, limits ingest.Limits, log *slog.Logger, reg prometheus.Registerer) *Receiver {
	r := &Receiver{spans: spans, points: points, limits: limits, log: log,
		windows: NewHistogramWindows(maxHistogramWindows),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "amas_otlp_rejected_total", Help: "Spans and metric data points refused as invalid, by signal.",
		}, []string{"signal"})}
	if reg != nil {
		reg.MustRegister(r.rejected)
	}
	return r
}

// ExportTraces stores td's valid spans. It returns the refused ones for the
// partial success, or an error for the whole request (ingest.ErrOverloaded,
// ingest.ErrClosed, or a commit failure).
func (r *Receiver) ExportTraces(ctx context.Context, td ptrace.Traces) (Rejected, error) {
	spans, rej := ConvertTraces(td)
	r.rejected.WithLabelValues("traces").Add(float64(rej.Count))
	if err := r.spans.Write(ctx, spans); err != nil {
		return rej, err
	}
	return rej, nil
}

// ExportMetrics stores md's data points as metric points.
func (r *Receiver) ExportMetrics(ctx context.Context, md pmetric.Metrics) (Rejected, error) {
	pts, rej := ConvertMetrics(md, r.limits, r.windows)
	r.rejected.WithLabelValues("metrics").Add(float64(rej.Count))
	if err := r.points.Write(ctx, pts); err != nil {
		return rej, err
	}
	return rej, nil
}

// retryable reports errors a client should retry after RetryAfter.
func retryable(err error) bool {
	return errors.Is(err, ingest.ErrOverloaded) || errors.Is(err, ingest.ErrClosed)
}
