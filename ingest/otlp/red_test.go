package otlp

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/amas-eye/amas/ingest"
	"github.com/amas-eye/amas/store"
)

// points collects what the aggregator enqueues.
type points struct{ got []ingest.Point }

func (p *points) Enqueue(_ context.Context, pts []ingest.Point) error {
	p.got = append(p.got, pts...)
	return nil
}

func (p *points) value(metric, service, op string, t time.Time) (float64, bool) {
	for _, pt := range p.got {
		if pt.Metric == metric && pt.Tags["service"] == service && pt.Tags["operation"] == op && pt.Time.Equal(t) {
			return pt.Value, true
		}
	}
	return 0, false
}

func TestREDIntervals(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	out := &points{}
	red := NewRED(out, REDConfig{Interval: 10 * time.Second, Now: func() time.Time { return now }}, nil)
	span := func(at time.Duration, dur time.Duration, failed bool) store.Span {
		sp := store.Span{Service: "api", Name: "GET /users", Start: t0.Add(at), Duration: dur}
		if failed {
			sp.StatusCode = store.StatusError
		}
		return sp
	}
	var durs []time.Duration
	var batch []store.Span
	for i := range 20 {
		d := time.Duration(i+1) * time.Millisecond
		durs = append(durs, d)
		batch = append(batch, span(time.Duration(i)*100*time.Millisecond, d, i%5 == 0))
	}
	red.Observe(batch)
	red.Observe([]store.Span{span(12*time.Second, 7*time.Millisecond, false)})

	if pts := red.Due(t0.Add(15 * time.Second)); len(pts) != 0 {
		t.Errorf("interval [0s,10s) written at 15s: %v", pts)
	}
	out.got = red.Due(t0.Add(20 * time.Second))
	slices.Sort(durs)
	for _, tc := range []struct {
		metric string
		want   float64
	}{
		{MetricCalls, 20}, {MetricErrors, 4}, {MetricDurationAvg, 10.5},
		{MetricDurationP50, ms(Percentile(durs, 0.5))}, {MetricDurationP95, ms(Percentile(durs, 0.95))},
		{MetricDurationP99, ms(Percentile(durs, 0.99))},
	} {
		if got, ok := out.value(tc.metric, "api", "GET_/users", t0); !ok || got != tc.want {
			t.Errorf("%s = %v (found %v), want %v", tc.metric, got, ok, tc.want)
		}
	}
	if len(out.got) != 6 {
		t.Errorf("%d points at 20s, want the 6 of the first interval", len(out.got))
	}
	// A late span of the written interval counts in the oldest open one.
	red.Observe([]store.Span{span(time.Second, time.Millisecond, true)})
	out.got = nil
	if err := red.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls, _ := out.value(MetricCalls, "api", "GET_/users", t0.Add(10*time.Second)); calls != 2 {
		t.Errorf("calls of [10s,20s) = %v, want 2 (one on time, one late)", calls)
	}
	if errs, _ := out.value(MetricErrors, "api", "GET_/users", t0.Add(10*time.Second)); errs != 1 {
		t.Errorf("errors of [10s,20s) = %v, want 1", errs)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func TestPercentile(t *testing.T) {
	d := func(ms ...int) []time.Duration {
		var out []time.Duration
		for _, m := range ms {
			out = append(out, time.Duration(m)*time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", d(7), 0.99, 7 * time.Millisecond},
		{"median of even count interpolates", d(1, 2, 3, 4), 0.5, 2500 * time.Microsecond},
		{"p95 of 1..20", d(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 0.95, 19050 * time.Microsecond},
		{"max", d(1, 2, 3), 1, 3 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.q); got != tc.want {
				t.Errorf("Percentile = %s, want %s", got, tc.want)
			}
		})
	}
}
