package otlp

import (
	"math"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/amas-eye/amas/ingest"
	"github.com/amas-eye/amas/store"
)

// quantiles are the percentiles estimated from histograms, with their suffixes.
var quantiles = []struct {
	q      float64
	suffix string
}{{0.5, ".p50"}, {0.95, ".p95"}, {0.99, ".p99"}}

// ConvertMetrics turns OTLP metrics into points following the package's naming
// convention. A data point is rejected whole when any point derived from it
// fails limits; data points flagged "no recorded value" are skipped. With
// windows, the percentiles of a cumulative histogram cover the observations
// since its previous export (nil: since its start).
func ConvertMetrics(md pmetric.Metrics, limits ingest.Limits, windows *HistogramWindows) ([]ingest.Point, Rejected) {
	c := metricConverter{limits: limits, windows: windows}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		c.resource = rm.Resource().Attributes()
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				c.metric(ms.At(k))
			}
		}
	}
	return c.out, c.rej
}

type metricConverter struct {
	limits   ingest.Limits
	windows  *HistogramWindows
	resource pcommon.Map
	out      []ingest.Point
	rej      Rejected
	dp       []ingest.Point // the points of the data point being converted
}

func (c *metricConverter) metric(m pmetric.Metric) {
	name := sanitize(m.Name())
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		c.numbers(name, m.Gauge().DataPoints())
	case pmetric.MetricTypeSum:
		c.numbers(name, m.Sum().DataPoints())
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		cumulative := h.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		dps := h.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			c.histogram(name, dps.At(i), cumulative)
		}
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			c.expHistogram(name, dps.At(i))
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			c.summary(name, dps.At(i))
		}
	default:
		c.rej.add("metric %q has no data (type %s)", m.Name(), m.Type())
	}
}

// tags merges the resource's and a data point's attributes.
func (c *metricConverter) tags(attrs pcommon.Map) map[string]string {
	tags := make(map[string]string, c.resource.Len()+attrs.Len())
	put := func(k string, v pcommon.Value) bool {
		if s := sanitize(v.AsString()); s != "" {
			tags[sanitize(k)] = s
		}
		return true
	}
	c.resource.Range(put)
	attrs.Range(put)
	if len(tags) == 0 {
		tags["source"] = "otlp"
	}
	return tags
}

func (c *metricConverter) begin() { c.dp = c.dp[:0] }

func (c *metricConverter) add(metric string, tags map[string]string, ts pcommon.Timestamp, v float64) {
	c.dp = append(c.dp, ingest.Point{Metric: metric, Tags: tags, Time: ts.AsTime(), Value: v})
}

// commit validates the data point's points and keeps them, or rejects them all.
func (c *metricConverter) commit(name string, ts pcommon.Timestamp, flags pmetric.DataPointFlags) {
	if flags.NoRecordedValue() {
		return
	}
	if ts == 0 {
		c.rej.add("a data point of %q has no timestamp", name)
		return
	}
	for _, p := range c.dp {
		if err := c.limits.Validate(p); err != nil {
			c.rej.add("a data point of %q: %v", name, err)
			return
		}
	}
	c.out = append(c.out, c.dp...)
}

func (c *metricConverter) numbers(name string, dps pmetric.NumberDataPointSlice) {
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		c.begin()
		v := dp.DoubleValue()
		if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
			v = float64(dp.IntValue())
		}
		c.add(name, c.tags(dp.Attributes()), dp.Timestamp(), v)
		c.commit(name, dp.Timestamp(), dp.Flags())
	}
}

// histogramPoint is what explicit and exponential histogram data points share.
type histogramPoint interface {
	Attributes() pcommon.Map
	Timestamp() pcommon.Timestamp
	Count() uint64
	HasSum() bool
	Sum() float64
	HasMin() bool
	Min() float64
	HasMax() bool
	Max() float64
}

// beginHistogram starts a histogram data point with its name.count, and its
// name.sum, .min and .max where it has them, and returns its tags and time.
func beginHistogram[P histogramPoint](c *metricConverter, name string, dp P) (map[string]string, pcommon.Timestamp) {
	c.begin()
	tags := c.tags(dp.Attributes())
	ts := dp.Timestamp()
	c.add(name+".count", tags, ts, float64(dp.Count()))
	if dp.HasSum() {
		c.add(name+".sum", tags, ts, dp.Sum())
	}
	if dp.HasMin() {
		c.add(name+".min", tags, ts, dp.Min())
	}
	if dp.HasMax() {
		c.add(name+".max", tags, ts, dp.Max())
	}
	return tags, ts
}

func (c *metricConverter) histogram(name string, dp pmetric.HistogramDataPoint, cumulative bool) {
	tags, ts := beginHistogram(c, name, dp)
	bounds, counts := dp.ExplicitBounds().AsRaw(), dp.BucketCounts().AsRaw()
	if len(counts) == len(bounds)+1 {
		var cum uint64
		for i, n := range counts {
			cum += n
			le := "inf"
			if i < len(bounds) {
				le = formatBound(bounds[i])
			}
			bt := make(map[string]string, len(tags)+1)
			for k, v := range tags {
				bt[k] = v
			}
			bt["le"] = le
			c.add(name+".bucket", bt, ts, float64(cum))
		}
		b := buckets{lower: math.Inf(-1), upper: math.Inf(1)}
		if dp.HasMin() {
			b.lower = dp.Min()
		}
		if dp.HasMax() {
			b.upper = dp.Max()
		}
		if cumulative && c.windows != nil {
			if delta, ok := c.windows.delta(store.SeriesRef{Metric: name, Tags: tags}.Key(), dp.StartTimestamp(), counts); ok {
				// min and max are of the whole life: they do not bound the window.
				counts, b = delta, buckets{lower: math.Inf(-1), upper: math.Inf(1)}
			}
		}
		for _, q := range quantiles {
			if v, ok := b.explicitQuantile(q.q, bounds, counts); ok {
				c.add(name+q.suffix, tags, ts, v)
			}
		}
	} else if len(counts) > 0 {
		c.rej.add("a histogram data point of %q has %d bucket counts for %d bounds", name, len(counts), len(bounds))
		return
	}
	c.commit(name, ts, dp.Flags())
}

// formatBound writes a bucket bound without '+' (not a tag character).
func formatBound(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// buckets holds the known extremes of a histogram's values.
type buckets struct{ lower, upper float64 }

// explicitQuantile estimates quantile q as Prometheus' histogram_quantile does:
// linear interpolation inside the bucket that holds the rank. The open-ended
// first and last buckets are closed by the data point's min and max when known,
// else by their one finite bound.
func (b buckets) explicitQuantile(q float64, bounds []float64, counts []uint64) (float64, bool) {
	var total uint64
	for _, n := range counts {
		total += n
	}
	if total == 0 {
		return 0, false
	}
	rank := q * float64(total)
	var cum float64
	for i, n := range counts {
		if n == 0 || cum+float64(n) < rank {
			cum += float64(n)
			continue
		}
		lo, hi := b.lower, b.upper
		if i > 0 {
			lo = max(lo, bounds[i-1])
		}
		if i < len(bounds) {
			hi = min(hi, bounds[i])
		}
		if i == 0 && math.IsInf(lo, -1) && hi > 0 {
			lo = 0 // as histogram_quantile: values are taken to be non-negative
		}
		switch {
		case math.IsInf(lo, -1) && math.IsInf(hi, 1):
			return 0, false
		case math.IsInf(lo, -1):
			return hi, true
		case math.IsInf(hi, 1):
			return lo, true
		}
		return lo + (hi-lo)*(rank-cum)/float64(n), true
	}
	return b.upper, !math.IsInf(b.upper, 1)
}

func (c *metricConverter) expHistogram(name string, dp pmetric.ExponentialHistogramDataPoint) {
	tags, ts := beginHistogram(c, name, dp)
	// Explicit buckets, lowest first: negative ones (mirrored), zero, positive.
	base := math.Pow(2, math.Pow(2, -float64(dp.Scale())))
	var bounds []float64
	var counts []uint64
	neg := dp.Negative()
	for i := neg.BucketCounts().Len() - 1; i >= 0; i-- {
		bounds = append(bounds, -math.Pow(base, float64(int(neg.Offset())+i)))
		counts = append(counts, neg.BucketCounts().At(i))
	}
	if len(counts) > 0 || dp.ZeroCount() > 0 {
		bounds = append(bounds, 0)
		counts = append(counts, dp.ZeroCount())
	}
	pos := dp.Positive()
	for i := 0; i < pos.BucketCounts().Len(); i++ {
		if len(counts) == 0 {
			// The first positive bucket's lower bound closes the open first bucket.
			bounds = append(bounds, math.Pow(base, float64(int(pos.Offset())+i)))
			counts = append(counts, 0)
		}
		bounds = append(bounds, math.Pow(base, float64(int(pos.Offset())+i+1)))
		counts = append(counts, pos.BucketCounts().At(i))
	}
	if len(counts) > 0 {
		counts = append(counts, 0)
		b := buckets{lower: math.Inf(-1), upper: math.Inf(1)}
		if dp.HasMin() {
			b.lower = dp.Min()
		}
		if dp.HasMax() {
			b.upper = dp.Max()
		}
		for _, q := range quantiles {
			if v, ok := b.explicitQuantile(q.q, bounds, counts); ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
				c.add(name+q.suffix, tags, ts, v)
			}
		}
	}
	c.commit(name, ts, dp.Flags())
}

func (c *metricConverter) summary(name string, dp pmetric.SummaryDataPoint) {
	c.begin()
	tags := c.tags(dp.Attributes())
	ts := dp.Timestamp()
	c.add(name+".count", tags, ts, float64(dp.Count()))
	c.add(name+".sum", tags, ts, dp.Sum())
	qs := dp.QuantileValues()
	for i := 0; i < qs.Len(); i++ {
		qt := make(map[string]string, len(tags)+1)
		for k, v := range tags {
			qt[k] = v
		}
		qt["quantile"] = formatBound(qs.At(i).Quantile())
		c.add(name, qt, ts, qs.At(i).Value())
	}
	c.commit(name, ts, dp.Flags())
}
