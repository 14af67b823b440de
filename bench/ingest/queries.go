package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/amas-eye/amas/app"
	"github.com/amas-eye/amas/store"
)

// queryResult holds the latency percentiles of the series query benchmark.
type queryResult struct {
	rawP50, rawP99, rollupP50, rollupP99 float64 // milliseconds
}

// chartStep is the step that cuts one day into about 500 points on a whole
// minute, so the query can be answered from the 1-minute rollup.
const chartStep = 3 * time.Minute

// benchQueries times the series query a dashboard sends for a day of the HTTP
// path's data: every series averaged into one line of about 500 points, answered
// from the raw samples and from the rollups; the RESULT line reports this one,
// the heaviest. The chart of a single series is timed too, for scale. The rollup role's work is done
// first and timed too (rolling up, then packing the ended hours and days), since
// it is what the rollup answer costs at ingest.
func benchQueries(ctx context.Context, a *app.App, o options, day time.Time) (queryResult, error) {
	st := a.Store().Store
	start := time.Now()
	minutes := 0
	for {
		n, err := st.RollupPending(ctx, 24*60)
		if err != nil {
			return queryResult{}, fmt.Errorf("roll up: %w", err)
		}
		if n == 0 {
			break
		}
		minutes += n
	}
	rolled := time.Since(start)
	packed, err := st.PackRollups(ctx, time.Now())
	if err != nil {
		return queryResult{}, fmt.Errorf("pack rollups: %w", err)
	}
	fmt.Printf("rollup of the ingested data: %d minutes in %s; packing them into %d rows in %s\n\n",
		minutes, rolled.Round(time.Millisecond), packed, (time.Since(start) - rolled).Round(time.Millisecond))
	// Settle what autovacuum would otherwise do in the middle of the timings
	// after loading 17 million rows: statistics and visibility maps.
	if _, err := st.Pool().Exec(ctx, `VACUUM (ANALYZE) samples, samples_1m, samples_1h,
		samples_1m_packed_sums, samples_1m_packed_values, samples_1h_packed_sums, samples_1h_packed_values`); err != nil {
		return queryResult{}, fmt.Errorf("vacuum: %w", err)
	}

	q := store.SeriesQuery{
		Metric: "bench.http", Aggregate: store.AggAvg,
		From: day, To: day.Add(o.span), Step: chartStep,
	}
	check, err := st.QuerySeries(ctx, q)
	if err != nil {
		return queryResult{}, err
	}
	if len(check) != 1 || len(check[0].Points) != int(o.span/chartStep) {
		return queryResult{}, fmt.Errorf("query answered %d series, want 1 of %d points", len(check), o.span/chartStep)
	}
	rawRuns := max(o.queryRuns/5, 5) // a raw answer reads every sample: fewer runs
	rawP50, rawP99, err := latency(ctx, rawRuns, func(ctx context.Context) error {
		_, err := st.QuerySeriesRaw(ctx, q)
		return err
	})
	if err != nil {
		return queryResult{}, err
	}
	rollupP50, rollupP99, err := latency(ctx, o.queryRuns, func(ctx context.Context) error {
		_, err := st.QuerySeries(ctx, q)
		return err
	})
	if err != nil {
		return queryResult{}, err
	}
	// For scale: the chart of one host, a series picked in turn among all.
	host := 0
	one := func(raw bool) func(context.Context) error {
		return func(ctx context.Context) error {
			q1 := q
			q1.Aggregate = store.AggNone
			q1.Filters = []store.TagFilter{{Key: "host", Op: store.OpEQ, Value: hostTag(host % o.series)}}
			host += 7
			var err error
			if raw {
				_, err = st.QuerySeriesRaw(ctx, q1)
			} else {
				_, err = st.QuerySeries(ctx, q1)
			}
			return err
		}
	}
	oneRawP50, oneRawP99, err := latency(ctx, o.queryRuns, one(true))
	if err != nil {
		return queryResult{}, err
	}
	oneP50, oneP99, err := latency(ctx, o.queryRuns, one(false))
	if err != nil {
		return queryResult{}, err
	}
	fmt.Printf("series queries over %s, step %s (%d points)\n", o.span, chartStep, o.span/chartStep)
	fmt.Printf("%-52s %6s %10s %10s\n", "query / source", "runs", "p50 ms", "p99 ms")
	fmt.Printf("%-52s %6d %10.1f %10.1f\n", fmt.Sprintf("avg of all %d series / raw samples", o.series), rawRuns, rawP50, rawP99)
	fmt.Printf("%-52s %6d %10.1f %10.1f\n", fmt.Sprintf("avg of all %d series / 1-minute rollup (packed)", o.series), o.queryRuns, rollupP50, rollupP99)
	fmt.Printf("%-52s %6d %10.1f %10.1f\n", "one series (host=...) / raw samples", o.queryRuns, oneRawP50, oneRawP99)
	fmt.Printf("%-52s %6d %10.1f %10.1f\n\n", "one series (host=...) / 1-minute rollup (packed)", o.queryRuns, oneP50, oneP99)
	return queryResult{rawP50: rawP50, rawP99: rawP99, rollupP50: rollupP50, rollupP99: rollupP99}, nil
}

// latency runs fn once to warm caches, then runs times and returns the p50 and
// p99 of the durations in milliseconds (nearest rank).
func latency(ctx context.Context, runs int, fn func(context.Context) error) (p50, p99 float64, err error) {
	if err := fn(ctx); err != nil {
		return 0, 0, err
	}
	ms := make([]float64, runs)
	for i := range ms {
		start := time.Now()
		if err := fn(ctx); err != nil {
			return 0, 0, err
		}
		ms[i] = float64(time.Since(start).Microseconds()) / 1000
	}
	slices.Sort(ms)
	rank := func(p float64) float64 { return ms[min(len(ms)-1, int(p*float64(len(ms))+0.999999)-1)] }
	return rank(0.50), rank(0.99), nil
}
