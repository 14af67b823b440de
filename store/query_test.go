package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

// queryT0 is midnight, so minute and hour buckets start on it.
var queryT0 = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

type tv struct {
	at time.Duration // after queryT0
	v  float64
}

// writeTestSeries stores points of one series through the ingest path.
func writeTestSeries(t testing.TB, s *store.Store, metric string, tags map[string]string, pts ...tv) int64 {
	t.Helper()
	ctx := context.Background()
	ids, err := s.ResolveSeries(ctx, []store.SeriesRef{{Metric: metric, Tags: tags}})
	if err != nil {
		t.Fatal(err)
	}
	samples := make([]store.Sample, len(pts))
	for i, p := range pts {
		samples[i] = store.Sample{SeriesID: ids[0], Time: queryT0.Add(p.at), Value: p.v}
	}
	if err := s.WriteSamples(ctx, samples, metric); err != nil {
		t.Fatal(err)
	}
	return ids[0]
}

// rollupAll rolls up every pending minute and packs every span that has ended.
func rollupAll(t testing.TB, s *store.Store) {
	t.Helper()
	for {
		n, err := s.RollupPending(context.Background(), 10_000)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if _, err := s.PackRollups(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
}

// seedCPU writes three series over five minutes, m = 0..4:
//
//	host=a dc=x: 10m+1, 10m+3  (avg 10m+2, min 10m+1, max 10m+3, count 2)
//	host=b dc=x: 100+m         (count 1)
//	host=c:      m, m, m+3     (avg m+1, min m, max m+3, count 3)
func seedCPU(t testing.TB, s *store.Store) {
	var a, b, c []tv
	for m := range 5 {
		at := time.Duration(m) * time.Minute
		fm := float64(m)
		a = append(a, tv{at, 10*fm + 1}, tv{at + 30*time.Second, 10*fm + 3})
		b = append(b, tv{at + 15*time.Second, 100 + fm})
		c = append(c, tv{at + 10*time.Second, fm}, tv{at + 20*time.Second, fm}, tv{at + 40*time.Second, fm + 3})
	}
	writeTestSeries(t, s, "cpu", map[string]string{"host": "a", "dc": "x"}, a...)
	writeTestSeries(t, s, "cpu", map[string]string{"host": "b", "dc": "x"}, b...)
	writeTestSeries(t, s, "cpu", map[string]string{"host": "c"}, c...)
}

// series is an expected answer row: tags and one value per minute m = 0..4.
type series struct {
	tags map[string]string
	v    func(m float64) float64
}

func TestQuerySeriesAggregates(t *testing.T) {
	s, _ := storetest.Migrated(t)
	seedCPU(t, s)
	x := map[string]string{"dc": "x"}
	all := map[string]string{}
	for _, tc := range []struct {
		name    string
		agg     store.Aggregate
		groupBy []string
		want    []series
	}{
		{"none", store.AggNone, nil, []series{
			{map[string]string{"dc": "x", "host": "a"}, func(m float64) float64 { return 10*m + 2 }},
			{map[string]string{"dc": "x", "host": "b"}, func(m float64) float64 { return 100 + m }},
			{map[string]string{"host": "c"}, func(m float64) float64 { return m + 1 }},
		}},
		{"none ignores group by", "", []string{"dc"}, []series{
			{map[string]string{"dc": "x", "host": "a"}, func(m float64) float64 { return 10*m + 2 }},
			{map[string]string{"dc": "x", "host": "b"}, func(m float64) float64 { return 100 + m }},
			{map[string]string{"host": "c"}, func(m float64) float64 { return m + 1 }},
		}},
		{"avg", store.AggAvg, nil, []series{{all, func(m float64) float64 { return (12*m + 103) / 3 }}}},
		{"sum", store.AggSum, nil, []series{{all, func(m float64) float64 { return 12*m + 103 }}}},
		{"min of mins", store.AggMin, nil, []series{{all, func(m float64) float64 { return m }}}},
		{"max of maxes", store.AggMax, nil, []series{{all, func(m float64) float64 { return 100 + m }}}},
		{"count of samples", store.AggCount, nil, []series{{all, func(float64) float64 { return 6 }}}},
		{"p50 of averages", store.AggP50, nil, []series{{all, func(m float64) float64 { return 10*m + 2 }}}},
		{"p95 interpolates", store.AggP95, nil, []series{{all, func(m float64) float64 { return 10*m + 2 + 0.9*(98-9*m) }}}},
		{"p99 interpolates", store.AggP99, nil, []series{{all, func(m float64) float64 { return 10*m + 2 + 0.98*(98-9*m) }}}},
		{"avg by dc, missing dc is its own group", store.AggAvg, []string{"dc"}, []series{
			{x, func(m float64) float64 { return (11*m + 102) / 2 }},
			{map[string]string{"host": "c"}, func(m float64) float64 { return m + 1 }},
		}},
		{"sum by host", store.AggSum, []string{"host"}, []series{
			{map[string]string{"dc": "x", "host": "a"}, func(m float64) float64 { return 10*m + 2 }},
			{map[string]string{"dc": "x", "host": "b"}, func(m float64) float64 { return 100 + m }},
			{map[string]string{"host": "c"}, func(m float64) float64 { return m + 1 }},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := store.SeriesQuery{Metric: "cpu", Aggregate: tc.agg, GroupBy: tc.groupBy,
				From: queryT0, To: queryT0.Add(5 * time.Minute), Step: time.Minute}
			got, err := s.QuerySeries(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			checkSeries(t, got, tc.want, 5)
		})
	}
}

func checkSeries(t *testing.T, got []store.Series, want []series, minutes int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d series %v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Metric != "cpu" || !sameTags(g.Tags, w.tags) {
			t.Errorf("series %d: got %s %v, want tags %v", i, g.Metric, g.Tags, w.tags)
		}
		if len(g.Points) != minutes {
			t.Fatalf("series %d: got %d points, want %d", i, len(g.Points), minutes)
		}
		for m, p := range g.Points {
			wantT := queryT0.Add(time.Duration(m) * time.Minute)
			if !p.T.Equal(wantT) || !near(p.V, w.v(float64(m))) {
				t.Errorf("series %d point %d: got %v=%v, want %v=%v", i, m, p.T, p.V, wantT, w.v(float64(m)))
			}
		}
	}
}

func sameTags(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func TestQuerySeriesFilters(t *testing.T) {
	s, _ := storetest.Migrated(t)
	seedCPU(t, s)
	for _, tc := range []struct {
		name    string
		filters []store.TagFilter
		hosts   string // hosts of the answer, in order
		badErr  string // when set, the error must wrap ErrBadQuery and contain it
	}{
		{"no filter", nil, "abc", ""},
		{"eq", []store.TagFilter{{Key: "host", Op: store.OpEQ, Value: "b"}}, "b", ""},
		{"eq on two tags", []store.TagFilter{{Key: "dc", Op: store.OpEQ, Value: "x"}, {Key: "host", Op: store.OpEQ, Value: "a"}}, "a", ""},
		{"eq empty matches a missing tag", []store.TagFilter{{Key: "dc", Op: store.OpEQ, Value: ""}}, "c", ""},
		{"neq matches a missing tag", []store.TagFilter{{Key: "dc", Op: store.OpNEQ, Value: "x"}}, "c", ""},
		{"neq", []store.TagFilter{{Key: "host", Op: store.OpNEQ, Value: "a"}}, "bc", ""},
		{"regex is anchored", []store.TagFilter{{Key: "host", Op: store.OpRegex, Value: "a|b"}}, "ab", ""},
		{"regex not a substring", []store.TagFilter{{Key: "dc", Op: store.OpRegex, Value: "x."}}, "", ""},
		{"regex .* matches a missing tag", []store.TagFilter{{Key: "dc", Op: store.OpRegex, Value: ".*"}}, "abc", ""},
		{"nregex", []store.TagFilter{{Key: "host", Op: store.OpNRegex, Value: "[ab]"}}, "c", ""},
		{"nregex matches a missing tag", []store.TagFilter{{Key: "dc", Op: store.OpNRegex, Value: "x"}}, "c", ""},
		{"value with quotes is a parameter", []store.TagFilter{{Key: "host", Op: store.OpEQ, Value: `a' OR '1'='1`}}, "", ""},
		{"invalid regex names its filter", []store.TagFilter{{Key: "host", Op: store.OpEQ, Value: "a"}, {Key: "dc", Op: store.OpRegex, Value: "x("}}, "", `filter dc REGEX "x("`},
		{"invalid nregex", []store.TagFilter{{Key: "host", Op: store.OpNRegex, Value: "a)|(b"}}, "", `filter host NREGEX`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.QuerySeries(context.Background(), store.SeriesQuery{Metric: "cpu", Filters: tc.filters,
				From: queryT0, To: queryT0.Add(5 * time.Minute), Step: time.Minute})
			if tc.badErr != "" {
				if !errors.Is(err, store.ErrBadQuery) || !strings.Contains(err.Error(), tc.badErr) {
					t.Fatalf("got error %v, want ErrBadQuery containing %q", err, tc.badErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var hosts string
			for _, sr := range got {
				hosts += sr.Tags["host"]
			}
			if hosts != tc.hosts {
				t.Errorf("got hosts %q, want %q", hosts, tc.hosts)
			}
		})
	}
}

func TestQuerySeriesRate(t *testing.T) {
	s, _ := storetest.Migrated(t)
	// The last value of each minute counts: 100, 160, 220, reset to 10, 70, nothing
	// in minute 5, then 190 in minute 6.
	lasts := map[int]float64{0: 100, 1: 160, 2: 220, 3: 10, 4: 70, 6: 190}
	var a, b []tv
	for m, last := range lasts {
		at := time.Duration(m) * time.Minute
		a = append(a, tv{at + 5*time.Second, last - 5}, tv{at + 50*time.Second, last})
		b = append(b, tv{at + 50*time.Second, 2 * last})
	}
	writeTestSeries(t, s, "requests", map[string]string{"host": "a"}, a...)
	writeTestSeries(t, s, "requests", map[string]string{"host": "b"}, b...)
	wantA := []float64{1, 1, 10.0 / 60, 1, 1} // minutes 1, 2, 3, 4, 6
	wantT := []int{1, 2, 3, 4, 6}
	for _, tc := range []struct {
		name   string
		agg    store.Aggregate
		factor float64 // of wantA
	}{
		{"per series", store.AggNone, 1},
		{"sum of rates", store.AggSum, 3},
		{"max of rates", store.AggMax, 2},
	} {
		for _, rolled := range []bool{false, true} {
			if rolled {
				rollupAll(t, s)
			}
			got, err := s.QuerySeries(context.Background(), store.SeriesQuery{Metric: "requests", Aggregate: tc.agg, Rate: true,
				From: queryT0, To: queryT0.Add(7 * time.Minute), Step: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			pts := got[0].Points
			if len(pts) != len(wantA) {
				t.Fatalf("%s: got %d points %v, want %d", tc.name, len(pts), pts, len(wantA))
			}
			for i, p := range pts {
				if !p.T.Equal(queryT0.Add(time.Duration(wantT[i])*time.Minute)) || !near(p.V, tc.factor*wantA[i]) {
					t.Errorf("%s (rolled up %v): point %d = %v %v, want minute %d %v", tc.name, rolled, i, p.T, p.V, wantT[i], tc.factor*wantA[i])
				}
			}
		}
	}
}

func TestAutoStep(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		span, want time.Duration
	}{
		{10 * time.Second, time.Second},
		{1000 * time.Second, time.Second},
		{1001 * time.Second, 2 * time.Second},
		{time.Hour, 5 * time.Second},
		{day, 2 * time.Minute},
		{7 * day, 15 * time.Minute},
		{30 * day, time.Hour},
		{365 * day, 12 * time.Hour},
		{1000 * day, day},
		{5 * 365 * day, 2 * day},
	} {
		if got := store.AutoStep(tc.span); got != tc.want {
			t.Errorf("AutoStep(%s) = %s, want %s", tc.span, got, tc.want)
		}
	}
}

func TestQuerySeriesStepSelection(t *testing.T) {
	s, _ := storetest.Migrated(t)
	seedCPU(t, s)
	got, err := s.QuerySeries(context.Background(), store.SeriesQuery{Metric: "cpu", Filters: []store.TagFilter{{Key: "host", Op: store.OpEQ, Value: "a"}},
		From: queryT0.Add(-55*time.Minute - 3*time.Second), To: queryT0.Add(5 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	// One hour: 5 s steps; the samples at :00 and :30 of each minute fall in their own
	// buckets, aligned on the epoch, not on From.
	pts := got[0].Points
	if len(pts) != 10 {
		t.Fatalf("got %d points, want 10: %v", len(pts), pts)
	}
	if !pts[0].T.Equal(queryT0) || !pts[1].T.Equal(queryT0.Add(30*time.Second)) || pts[1].V != 3 {
		t.Errorf("got points %v", pts[:2])
	}
}

func TestQuerySeriesValidation(t *testing.T) {
	s, _ := storetest.Migrated(t)
	seedCPU(t, s)
	ok := store.SeriesQuery{Metric: "cpu", From: queryT0, To: queryT0.Add(time.Hour)}
	for _, tc := range []struct {
		name   string
		change func(q *store.SeriesQuery)
		want   string
	}{
		{"no metric", func(q *store.SeriesQuery) { q.Metric = "" }, "metric is required"},
		{"from after to", func(q *store.SeriesQuery) { q.From = q.To.Add(time.Second) }, "must be before"},
		{"empty range", func(q *store.SeriesQuery) { q.From = q.To }, "must be before"},
		{"range too long", func(q *store.SeriesQuery) { q.From = q.To.AddDate(-11, 0, 0) }, "longer than the maximum"},
		{"negative step", func(q *store.SeriesQuery) { q.Step = -time.Second }, "step"},
		{"step too fine", func(q *store.SeriesQuery) { q.Step = time.Microsecond }, "at least 1ms"},
		{"unknown aggregate", func(q *store.SeriesQuery) { q.Aggregate = "MEDIAN" }, `unknown aggregate "MEDIAN"`},
		{"rate with count", func(q *store.SeriesQuery) { q.Rate, q.Aggregate = true, store.AggCount }, "rate cannot"},
		{"filter without key", func(q *store.SeriesQuery) { q.Filters = []store.TagFilter{{Op: store.OpEQ, Value: "a"}} }, "no tag key"},
		{"unknown operator", func(q *store.SeriesQuery) { q.Filters = []store.TagFilter{{Key: "host", Op: "LIKE"}} }, `unknown operator "LIKE"`},
		{"too many points", func(q *store.SeriesQuery) { q.Step, q.MaxPoints = time.Second, 1000 },
			"could hold 10800 points (3 series × 3600 steps of 1s), more than the limit of 1000: use a larger step"},
		{"too many points after grouping", func(q *store.SeriesQuery) { q.Step, q.MaxPoints, q.Aggregate = time.Second, 3599, store.AggSum },
			"could hold 3600 points (1 series"},
		{"default limit", func(q *store.SeriesQuery) { q.Step, q.To = time.Millisecond, q.From.Add(time.Hour) }, "more than the limit of 1000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := ok
			tc.change(&q)
			_, err := s.QuerySeries(context.Background(), q)
			if !errors.Is(err, store.ErrBadQuery) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want ErrBadQuery containing %q", err, tc.want)
			}
		})
	}
	if _, err := s.QuerySeries(context.Background(), ok); err != nil {
		t.Fatalf("valid query: %v", err)
	}
}

func TestQuerySeriesHonoursContext(t *testing.T) {
	s, _ := storetest.Migrated(t)
	seedCPU(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.QuerySeries(ctx, store.SeriesQuery{Metric: "cpu", From: queryT0, To: queryT0.Add(time.Hour)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// seedRandom writes hours of 10 s samples of a few gauges and a counter that resets.
func seedRandom(t testing.TB, s *store.Store, hours int) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := hours * 360
	for h := range 4 {
		pts := make([]tv, 0, n)
		for i := range n {
			// Jitter, so samples are not always on bucket edges.
			at := time.Duration(i)*10*time.Second + time.Duration(rng.IntN(9000))*time.Millisecond
			pts = append(pts, tv{at, rng.NormFloat64()*10 + float64(h*100)})
		}
		writeTestSeries(t, s, "load", map[string]string{"host": string(rune('a' + h)), "dc": []string{"x", "y"}[h%2]}, pts...)
	}
	var counter float64
	pts := make([]tv, 0, n)
	for i := range n {
		counter += float64(rng.IntN(100))
		if i%1000 == 999 {
			counter = 0
		}
		pts = append(pts, tv{time.Duration(i) * 10 * time.Second, counter})
	}
	writeTestSeries(t, s, "load", map[string]string{"host": "counter"}, pts...)
}

// sourceCases are the queries answered both from rollups and from raw samples.
func sourceCases(from, to time.Time) []store.SeriesQuery {
	var qs []store.SeriesQuery
	for _, step := range []time.Duration{time.Minute, 5 * time.Minute, time.Hour, 2 * time.Hour} {
		for _, agg := range []store.Aggregate{store.AggNone, store.AggAvg, store.AggSum, store.AggMin, store.AggMax, store.AggCount, store.AggP95} {
			for _, rate := range []bool{false, true} {
				if rate && agg == store.AggCount {
					continue
				}
				qs = append(qs, store.SeriesQuery{Metric: "load", Aggregate: agg, GroupBy: []string{"dc"}, Rate: rate,
					From: from, To: to, Step: step})
			}
		}
	}
	return qs
}

// checkSourcesAgree runs every query from the chosen source and from raw samples and
// compares the answers.
func checkSourcesAgree(t *testing.T, s *store.Store, qs []store.SeriesQuery) {
	t.Helper()
	ctx := context.Background()
	for _, q := range qs {
		got, err := s.QuerySeries(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := s.QuerySeriesRaw(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffSeries(got, raw); d != "" {
			t.Errorf("step %s %s rate=%v: rollup and raw differ: %s", q.Step, q.Aggregate, q.Rate, d)
		}
	}
}

func diffSeries(a, b []store.Series) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d series vs %d", len(a), len(b))
	}
	for i := range a {
		if !sameTags(a[i].Tags, b[i].Tags) || len(a[i].Points) != len(b[i].Points) {
			return fmt.Sprintf("series %d: %v with %d points vs %v with %d", i, a[i].Tags, len(a[i].Points), b[i].Tags, len(b[i].Points))
		}
		for j, p := range a[i].Points {
			if q := b[i].Points[j]; !p.T.Equal(q.T) || !near(p.V, q.V) {
				return fmt.Sprintf("series %v point %d: %v=%v vs %v=%v", a[i].Tags, j, p.T, p.V, q.T, q.V)
			}
		}
	}
	return ""
}

func TestQuerySeriesRollupEqualsRaw(t *testing.T) {
	s, _ := storetest.Migrated(t)
	seedRandom(t, s, 5)
	rollupAll(t, s)
	if s.Timescale() {
		for _, v := range []string{"samples_1m", "samples_1h"} {
			if _, err := s.Pool().Exec(context.Background(), `CALL refresh_continuous_aggregate($1, NULL, NULL)`, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, pending, err := s.RollupWatermark(context.Background()); err != nil || pending {
		t.Fatalf("watermark after a full rollup: pending=%v err=%v", pending, err)
	}
	checkSourcesAgree(t, s, sourceCases(queryT0.Add(37*time.Second), queryT0.Add(4*time.Hour+time.Minute)))
}

func TestQuerySeriesRollupWatermark(t *testing.T) {
	s := plainMigrated(t, "plain PostgreSQL only: TimescaleDB's continuous aggregates need no rollup_pending")
	ctx := context.Background()
	seedRandom(t, s, 3)
	n, err := s.RollupPending(ctx, 90)
	if err != nil || n != 90 {
		t.Fatalf("RollupPending = %d, %v; want 90 minutes", n, err)
	}
	wm, pending, err := s.RollupWatermark(ctx)
	if err != nil || !pending || !wm.Equal(queryT0.Add(90*time.Minute)) {
		t.Fatalf("watermark = %v %v %v, want %v", wm, pending, err, queryT0.Add(90*time.Minute))
	}
	qs := sourceCases(queryT0, queryT0.Add(3*time.Hour))
	checkSourcesAgree(t, s, qs)

	// Prove the split: skew the minute rollups; buckets before the watermark move,
	// buckets from it on still come from raw samples.
	if _, err := s.Pool().Exec(ctx, `UPDATE samples_1m SET sum = sum + 1000 * count`); err != nil {
		t.Fatal(err)
	}
	q := store.SeriesQuery{Metric: "load", From: queryT0, To: queryT0.Add(3 * time.Hour), Step: time.Minute}
	got, err := s.QuerySeries(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.QuerySeriesRaw(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		for j, p := range got[i].Points {
			skew := p.V - raw[i].Points[j].V
			rolled := p.T.Before(wm)
			if rolled && !near(skew, 1000) || !rolled && !near(skew, 0) {
				t.Fatalf("series %d at %v (watermark %v): rollup - raw = %v", i, p.T, wm, skew)
			}
		}
	}
}

// TestQuerySeriesManySeries reads enough series for the buckets to be read by
// several connections at once, and checks every series and the aggregate.
func TestQuerySeriesManySeries(t *testing.T) {
	s, _ := storetest.Migrated(t)
	const n = 450
	for i := range n {
		pts := make([]tv, 0, 6)
		for m := range 6 {
			pts = append(pts, tv{time.Duration(m) * time.Minute, float64(i)})
		}
		writeTestSeries(t, s, "many", map[string]string{"host": fmt.Sprintf("h%03d", i)}, pts...)
	}
	ctx := context.Background()
	q := store.SeriesQuery{Metric: "many", From: queryT0, To: queryT0.Add(6 * time.Minute), Step: time.Minute}
	got, err := s.QuerySeries(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d series, want %d", len(got), n)
	}
	for i, sr := range got {
		if len(sr.Points) != 6 || sr.Points[0].V != float64(i) || sr.Points[5].V != float64(i) || sr.Tags["host"] != fmt.Sprintf("h%03d", i) {
			t.Fatalf("series %d: %v %v", i, sr.Tags, sr.Points)
		}
	}
	q.Aggregate = store.AggSum
	sum, err := s.QuerySeries(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if want := float64(n*(n-1)) / 2; len(sum) != 1 || len(sum[0].Points) != 6 || sum[0].Points[3].V != want {
		t.Fatalf("sum: %+v, want %v per minute", sum, want)
	}
}

// TestQuerySeriesCombinedAcrossShares checks the aggregates combined in SQL, per
// share of the series, against the same combination worked out here from the
// per-series answer: groups whose members fall in different shares, series
// missing from some buckets, and every source.
func TestQuerySeriesCombinedAcrossShares(t *testing.T) {
	s, _ := storetest.Migrated(t)
	const n = 420
	for i := range n {
		var pts []tv
		for m := range 12 {
			if (i+m)%7 == 0 { // a gap: this series has no sample in this minute
				continue
			}
			at := time.Duration(m)*time.Minute + time.Duration(i%50)*time.Second
			pts = append(pts, tv{at, float64((i*31+m*17)%97) / 4}, tv{at + 5*time.Second, float64(i%13) - 6})
		}
		writeTestSeries(t, s, "spread", map[string]string{"host": fmt.Sprintf("h%03d", i), "rack": fmt.Sprintf("r%d", i%3)}, pts...)
	}
	ctx := context.Background()
	for _, rolled := range []bool{false, true} {
		if rolled {
			rollupAll(t, s)
		}
		for _, step := range []time.Duration{30 * time.Second, 2 * time.Minute} {
			for _, agg := range []store.Aggregate{store.AggAvg, store.AggSum, store.AggMin, store.AggMax, store.AggCount} {
				q := store.SeriesQuery{Metric: "spread", Aggregate: agg, GroupBy: []string{"rack"},
					From: queryT0, To: queryT0.Add(12 * time.Minute), Step: step}
				got, err := s.QuerySeries(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if d := diffSeries(got, combineByRack(t, s, q)); d != "" {
					t.Errorf("rolled up %v, step %s, %s: %s", rolled, step, agg, d)
				}
			}
		}
	}
}

// combineByRack answers q by combining, here, the per-series answer of the
// same query without aggregate.
func combineByRack(t *testing.T, s *store.Store, q store.SeriesQuery) []store.Series {
	t.Helper()
	each := q
	each.Aggregate, each.GroupBy = store.AggNone, nil
	switch q.Aggregate {
	case store.AggMin, store.AggMax, store.AggCount:
		// A group of one series: its per-bucket min, max or count, not its average.
		each.Aggregate, each.GroupBy = q.Aggregate, []string{"host"}
	}
	per, err := s.QuerySeries(context.Background(), each)
	if err != nil {
		t.Fatal(err)
	}
	type acc struct{ v, n float64 }
	byRack := map[string]map[int64]*acc{}
	for _, sr := range per {
		rack := sr.Tags["rack"]
		if byRack[rack] == nil {
			byRack[rack] = map[int64]*acc{}
		}
		for _, p := range sr.Points {
			a := byRack[rack][p.T.UnixMicro()]
			if a == nil {
				byRack[rack][p.T.UnixMicro()] = &acc{p.V, 1}
				continue
			}
			switch q.Aggregate {
			case store.AggMin:
				a.v = math.Min(a.v, p.V)
			case store.AggMax:
				a.v = math.Max(a.v, p.V)
			default:
				a.v += p.V
			}
			a.n++
		}
	}
	var out []store.Series
	for _, rack := range []string{"r0", "r1", "r2"} {
		sr := store.Series{Metric: "spread", Tags: map[string]string{"rack": rack}}
		for at := q.From; at.Before(q.To); at = at.Add(q.Step) {
			if a := byRack[rack][at.UnixMicro()]; a != nil {
				v := a.v
				if q.Aggregate == store.AggAvg {
					v /= a.n
				}
				sr.Points = append(sr.Points, store.Point{T: at, V: v})
			}
		}
		out = append(out, sr)
	}
	return out
}

// TestQuerySeriesPackedNarrowRaw answers queries from the three sources at once:
// packed rollups, narrow rollup rows not yet packed, and raw samples not yet rolled
// up; then late samples in a packed hour must reach the packed rows.
func TestQuerySeriesPackedNarrowRaw(t *testing.T) {
	s := plainMigrated(t, "plain PostgreSQL only: it needs minutes pending roll-up, which TimescaleDB never has")
	ctx := context.Background()
	seedRandom(t, s, 30)
	// Every 7 s: 8 or 9 samples a minute, so its packed counts vary.
	irregular := make([]tv, 0, 30*3600/7)
	for at := time.Duration(0); at < 30*time.Hour; at += 7 * time.Second {
		irregular = append(irregular, tv{at, float64(at / time.Second % 97)})
	}
	writeTestSeries(t, s, "load", map[string]string{"host": "irregular"}, irregular...)
	if n, err := s.RollupPending(ctx, 26*60+30); err != nil || n != 26*60+30 {
		t.Fatalf("RollupPending = %d, %v", n, err)
	}
	// 6 series × 26 hours of minutes, and × 1 day of hours.
	if n, err := s.PackRollups(ctx, time.Now()); err != nil || n != 6*26+6 {
		t.Fatalf("PackRollups wrote %d rows, %v; want %d", n, err, 6*26+6)
	}
	// Minutes are packed up to the hour of the oldest pending minute, hours up to its day.
	for tier, want := range map[string]time.Time{"1m": queryT0.Add(26 * time.Hour), "1h": queryT0.Add(24 * time.Hour)} {
		var through time.Time
		if err := s.Pool().QueryRow(ctx, `SELECT through FROM rollup_packed WHERE tier = $1`, tier).Scan(&through); err != nil {
			t.Fatal(err)
		}
		if !through.Equal(want) {
			t.Errorf("%s packed through %v, want %v", tier, through, want)
		}
	}
	// The steady series pack their counts as one value, the irregular one
	// bucket by bucket: both forms are read below.
	var uniform, perBucket int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE length(count) = 8), count(*) FILTER (WHERE length(count) > 8)
		FROM samples_1m_packed_sums`).Scan(&uniform, &perBucket); err != nil || uniform == 0 || perBucket == 0 {
		t.Fatalf("packed count columns: %d of one value, %d bucket by bucket (%v); want both", uniform, perBucket, err)
	}
	qs := sourceCases(queryT0.Add(37*time.Second), queryT0.Add(30*time.Hour))
	checkSourcesAgree(t, s, qs)

	writeTestSeries(t, s, "load", map[string]string{"host": "a", "dc": "x"}, tv{time.Hour + 30*time.Second, 1e6})
	if n, err := s.RollupPending(ctx, 1); err != nil || n != 1 {
		t.Fatalf("RollupPending of the late minute = %d, %v", n, err)
	}
	checkSourcesAgree(t, s, qs)
}
