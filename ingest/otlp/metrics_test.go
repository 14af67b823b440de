package otlp

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/amas-eye/amas/ingest"
)

var ts = pcommon.NewTimestampFromTime(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))

// newMetric returns a metric in a resource with service.name=svc.
func newMetric(name string) (pmetric.Metrics, pmetric.Metric) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "svc")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	return md, m
}

// pointText renders points as sorted "metric{k=v,...}=value" lines.
func pointText(pts []ingest.Point) []string {
	var out []string
	for _, p := range pts {
		var tags []string
		for k, v := range p.Tags {
			tags = append(tags, k+"="+v)
		}
		slices.Sort(tags)
		out = append(out, p.Metric+"{"+strings.Join(tags, ",")+"}="+strconvG(p.Value))
	}
	slices.Sort(out)
	return out
}

// strconvG rounds away floating-point noise below 1e-9.
func strconvG(f float64) string { return strconv.FormatFloat(math.Round(f*1e9)/1e9, 'f', -1, 64) }

func TestConvertMetrics(t *testing.T) {
	for _, tc := range []struct {
		name     string
		build    func() pmetric.Metrics
		want     []string
		rejected int64
		message  string
	}{
		{"gauge with sanitized attributes", func() pmetric.Metrics {
			md, m := newMetric("cpu usage%")
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetDoubleValue(0.5)
			dp.Attributes().PutStr("core id", "0")
			dp.Attributes().PutStr("empty", "")
			return md
		}, []string{"cpu_usage_{core_id=0,service.name=svc}=0.5"}, 0, ""},
		{"monotonic int sum, data point attribute wins", func() pmetric.Metrics {
			md, m := newMetric("http.requests")
			sum := m.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp := sum.DataPoints().AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetIntValue(42)
			dp.Attributes().PutStr("service.name", "override")
			dp.Attributes().PutInt("code", 200)
			return md
		}, []string{"http.requests{code=200,service.name=override}=42"}, 0, ""},
		{"histogram", func() pmetric.Metrics {
			md, m := newMetric("latency")
			dp := m.SetEmptyHistogram().DataPoints().AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetCount(10)
			dp.SetSum(100)
			dp.ExplicitBounds().FromRaw([]float64{1, 10, 100})
			dp.BucketCounts().FromRaw([]uint64{0, 4, 4, 2})
			return md
		}, []string{
			"latency.bucket{le=1,service.name=svc}=0", "latency.bucket{le=10,service.name=svc}=4",
			"latency.bucket{le=100,service.name=svc}=8", "latency.bucket{le=inf,service.name=svc}=10",
			"latency.count{service.name=svc}=10",
			// rank 5 is the first of 4 in (10, 100]: 10 + 90/4; rank 9.5 and 9.9 fall in
			// the open last bucket, whose known bound is 100.
			"latency.p50{service.name=svc}=32.5", "latency.p95{service.name=svc}=100", "latency.p99{service.name=svc}=100",
			"latency.sum{service.name=svc}=100",
		}, 0, ""},
		{"summary", func() pmetric.Metrics {
			md, m := newMetric("rpc.duration")
			dp := m.SetEmptySummary().DataPoints().AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetCount(3)
			dp.SetSum(6)
			q := dp.QuantileValues().AppendEmpty()
			q.SetQuantile(0.99)
			q.SetValue(2.5)
			return md
		}, []string{"rpc.duration.count{service.name=svc}=3", "rpc.duration.sum{service.name=svc}=6",
			"rpc.duration{quantile=0.99,service.name=svc}=2.5"}, 0, ""},
		{"exponential histogram", func() pmetric.Metrics {
			md, m := newMetric("size")
			dp := m.SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetScale(0) // base 2: bucket i is (2^i, 2^(i+1)]
			dp.SetCount(4)
			dp.SetSum(20)
			dp.SetMin(3)
			dp.SetMax(8)
			dp.Positive().SetOffset(1)
			dp.Positive().BucketCounts().FromRaw([]uint64{2, 2}) // (2,4] and (4,8]
			return md
		}, []string{"size.count{service.name=svc}=4", "size.max{service.name=svc}=8", "size.min{service.name=svc}=3",
			"size.p50{service.name=svc}=4", "size.p95{service.name=svc}=7.6", "size.p99{service.name=svc}=7.92",
			"size.sum{service.name=svc}=20"}, 0, ""},
		{"no attributes at all", func() pmetric.Metrics {
			md := pmetric.NewMetrics()
			m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName("bare")
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetIntValue(1)
			return md
		}, []string{"bare{source=otlp}=1"}, 0, ""},
		{"no timestamp is rejected, no recorded value skipped", func() pmetric.Metrics {
			md, m := newMetric("g")
			dps := m.SetEmptyGauge().DataPoints()
			dps.AppendEmpty().SetIntValue(1)
			skipped := dps.AppendEmpty()
			skipped.SetTimestamp(ts)
			skipped.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
			return md
		}, nil, 1, `a data point of "g" has no timestamp`},
		{"NaN is rejected", func() pmetric.Metrics {
			md, m := newMetric("g")
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetDoubleValue(math.NaN())
			return md
		}, nil, 1, "NaN"},
		{"bucket counts that do not fit the bounds", func() pmetric.Metrics {
			md, m := newMetric("h")
			dp := m.SetEmptyHistogram().DataPoints().AppendEmpty()
			dp.SetTimestamp(ts)
			dp.ExplicitBounds().FromRaw([]float64{1})
			dp.BucketCounts().FromRaw([]uint64{1, 2, 3})
			return md
		}, nil, 1, "3 bucket counts for 1 bounds"},
		{"a metric without data", func() pmetric.Metrics {
			md, _ := newMetric("empty")
			return md
		}, nil, 1, `metric "empty" has no data`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pts, rej := ConvertMetrics(tc.build(), ingest.DefaultLimits, nil)
			if got := pointText(pts); !slices.Equal(got, tc.want) {
				t.Errorf("points\n%q\nwant\n%q", got, tc.want)
			}
			if rej.Count != tc.rejected || !strings.Contains(rej.Message, tc.message) {
				t.Errorf("rejected %d %q, want %d %q", rej.Count, rej.Message, tc.rejected, tc.message)
			}
			for _, p := range pts {
				if !p.Time.Equal(ts.AsTime()) {
					t.Errorf("%s at %s, want %s", p.Metric, p.Time, ts.AsTime())
				}
			}
		})
	}
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"http.server.duration": "http.server.duration",
		"GET /users/{id}":      "GET_/users/_id_",
		"über-größe":           "über-größe",
		"a\x00b\xffc":          "a_b_c",
		"":                     "",
	} {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCumulativeHistogramPercentilesAreWindowed exports one cumulative
// histogram three times: the second export's percentiles describe only what
// was observed since the first, and a restart (new start time) starts over.
func TestCumulativeHistogramPercentilesAreWindowed(t *testing.T) {
	windows := NewHistogramWindows(10)
	export := func(start time.Time, counts ...uint64) string {
		md, m := newMetric("latency")
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := h.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		dp.SetTimestamp(ts)
		dp.ExplicitBounds().FromRaw([]float64{1, 10, 100})
		dp.BucketCounts().FromRaw(counts)
		pts, rej := ConvertMetrics(md, ingest.DefaultLimits, windows)
		if rej.Count > 0 {
			t.Fatal(rej.Message)
		}
		for _, p := range pts {
			if p.Metric == "latency.p50" {
				return strconvG(p.Value)
			}
		}
		return "none"
	}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		start  time.Time
		counts []uint64
		want   string
	}{
		{"first export: everything so far", t0, []uint64{0, 4, 4, 2}, "32.5"},
		{"second: only the 10 new ones in (1, 10]", t0, []uint64{0, 14, 4, 2}, "5.5"},
		{"nothing new: no percentile", t0, []uint64{0, 14, 4, 2}, "none"},
		{"restarted process: its own counts", t0.Add(time.Hour), []uint64{0, 2, 0, 0}, "5.5"},
	} {
		if got := export(tc.start, tc.counts...); got != tc.want {
			t.Errorf("%s: p50 %s, want %s", tc.name, got, tc.want)
		}
	}
}
