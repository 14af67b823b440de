package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"
)

const (
	// TargetPoints is about how many points per series a query without a step gets.
	TargetPoints = 1000
	// MaxQueryRange bounds To - From.
	MaxQueryRange = 10 * 366 * 24 * time.Hour
	// MinStep is the finest step a query may ask for.
	MinStep = time.Millisecond
	// maxReadPoints bounds the per-series buckets one query holds in memory before
	// aggregating them, which MaxPoints alone does not when many series aggregate
	// into few.
	maxReadPoints = 10_000_000
)

// niceSteps are the steps chosen when a query gives none; beyond the last, whole days.
var niceSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// QuerySeries answers a SeriesQuery.
//
//   - Selection: the series of q.Metric whose tags pass every filter. A series that
//     lacks a tag is compared as if its value were "" (as Prometheus does), so NEQ
//     and NREGEX match it and EQ "" selects series without the tag. REGEX and NREGEX
//     are PostgreSQL regular expressions anchored at both ends.
//   - Buckets: the step (chosen when zero: the "nice" step, 1s to 1d, giving about
//     TargetPoints points) cuts time into buckets aligned to multiples of the step
//     since the Unix epoch. A point is returned for every bucket that has samples and
//     starts in [From rounded down to the step, To); its time is the bucket start and
//     its value covers the whole bucket.
//   - Per series and bucket the value is the average of the samples, or their min,
//     max or count when q.Aggregate is MIN, MAX or COUNT.
//   - Rate: the value is instead the per-second increase between the last sample of
//     a bucket and the last sample of the series' previous bucket with data, divided
//     by the distance between the two bucket starts; a decrease is a counter reset,
//     whose increase is the new value itself. The first bucket has no rate. Rate
//     cannot be combined with COUNT.
//   - Aggregation: with NONE (or empty) every series is returned as is. Otherwise the
//     series are grouped by the q.GroupBy tags (a missing tag is its own group) and
//     each group becomes one series whose points combine its series' values per
//     bucket: AVG, SUM, MIN, MAX of the values, COUNT the sum of the counts, P50/P95/
//     P99 the percentile (linear interpolation) of the values. Its tags are those
//     shared, with the same value, by all its series, which include the group tags.
//   - Source: steps that are whole hours read samples_1h, whole minutes samples_1m,
//     others the raw samples. On plain PostgreSQL the rollups are read only for
//     buckets that end before the oldest minute still pending roll-up, and raw
//     samples from there on, so the answer is the one raw samples give.
//   - Limits: errors wrapping ErrBadQuery when the answer would hold more than
//     q.MaxPoints (DefaultMaxPoints) points, for bad input, and invalid regexes.
//
// Series and their points come sorted (series by tags, points by time); series
// without points in the range are left out.
func (s *Store) QuerySeries(ctx context.Context, q SeriesQuery) ([]Series, error) {
	return s.querySeries(ctx, q, sourceAuto)
}

// QuerySeriesRaw answers q from the raw samples whatever its step: the reference
// the rollups are checked against, in tests and in the query benchmark.
func (s *Store) QuerySeriesRaw(ctx context.Context, q SeriesQuery) ([]Series, error) {
	return s.querySeries(ctx, q, sourceRaw)
}

// source lets tests force the raw samples, to compare rollup answers with them.
type source int

const (
	sourceAuto source = iota
	sourceRaw
)

func (s *Store) querySeries(ctx context.Context, q SeriesQuery, src source) ([]Series, error) {
	plan, err := planQuery(q)
	if err != nil {
		return nil, err
	}
	if err := s.checkRegexes(ctx, q.Filters); err != nil {
		return nil, err
	}
	series, err := s.selectSeries(ctx, q.Metric, q.Filters)
	if err != nil {
		return nil, err
	}
	// Shares of the series in id order: series created together have their
	// rows on the same pages, so each share reads fewer of them.
	slices.SortFunc(series, func(a, b selectedSeries) int { return cmp.Compare(a.id, b.id) })
	var groups []seriesGroup
	outSeries := len(series)
	if plan.aggregate != AggNone {
		groups = groupSeries(series, q.GroupBy)
		outSeries = len(groups)
	}
	if err := plan.checkLimits(len(series), outSeries); err != nil {
		return nil, err
	}
	if len(series) == 0 {
		return nil, nil
	}
	if _, packed := s.packedTierFor(plan, src); plan.combinesInSQL() && !packed {
		return s.queryCombined(ctx, plan, q.Metric, series, groups)
	}
	if err := s.readBuckets(ctx, plan, series, src); err != nil {
		return nil, err
	}
	if plan.rate {
		for i := range series {
			series[i].points = rateOf(series[i].points, plan.step)
		}
	}
	if plan.aggregate == AggNone {
		return plan.seriesAsIs(q.Metric, series), nil
	}
	return plan.aggregated(q.Metric, series, groups), nil
}

// bucketFunc is what one bucket of one series is reduced to.
type bucketFunc int

const (
	fnAvg bucketFunc = iota
	fnMin
	fnMax
	fnCount
	fnLast
)

// queryPlan is a validated query with its buckets worked out.
type queryPlan struct {
	from, end time.Time // start of the first bucket, end of the last
	step      time.Duration
	buckets   int64
	fn        bucketFunc
	aggregate Aggregate
	rate      bool
	maxPoints int
}

func planQuery(q SeriesQuery) (queryPlan, error) {
	if err := validateQuery(q); err != nil {
		return queryPlan{}, fmt.Errorf("%w: %w", ErrBadQuery, err)
	}
	p := queryPlan{step: q.Step, aggregate: q.Aggregate, rate: q.Rate, maxPoints: q.MaxPoints}
	if p.step == 0 {
		p.step = autoStep(q.To.Sub(q.From))
	}
	if p.aggregate == "" {
		p.aggregate = AggNone
	}
	if p.maxPoints == 0 {
		p.maxPoints = DefaultMaxPoints
	}
	p.from = floorTime(q.From, p.step)
	// The last bucket is the one that holds the instant just before To.
	p.end = floorTime(q.To.Add(-time.Microsecond), p.step).Add(p.step)
	p.buckets = int64(p.end.Sub(p.from) / p.step)
	p.fn = bucketFuncOf(p.aggregate, p.rate)
	return p, nil
}

func validateQuery(q SeriesQuery) error {
	switch {
	case q.Metric == "":
		return errors.New("metric is required")
	case !q.From.Before(q.To):
		return fmt.Errorf("from (%s) must be before to (%s)", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	case q.To.Sub(q.From) > MaxQueryRange:
		return fmt.Errorf("time range %s is longer than the maximum of %s", q.To.Sub(q.From), MaxQueryRange)
	case q.Step < 0 || (q.Step > 0 && q.Step < MinStep):
		return fmt.Errorf("step %s is not allowed: it must be at least %s", q.Step, MinStep)
	case q.Step%time.Microsecond != 0:
		return fmt.Errorf("step %s is finer than a microsecond", q.Step)
	case q.MaxPoints < 0:
		return fmt.Errorf("max points %d is negative", q.MaxPoints)
	case !knownAggregate(q.Aggregate):
		return fmt.Errorf("unknown aggregate %q", q.Aggregate)
	case q.Rate && q.Aggregate == AggCount:
		return errors.New("rate cannot be combined with the COUNT aggregate")
	}
	for i, f := range q.Filters {
		if f.Key == "" {
			return fmt.Errorf("filter %d has no tag key", i+1)
		}
		switch f.Op {
		case OpEQ, OpNEQ, OpRegex, OpNRegex:
		default:
			return fmt.Errorf("filter on %q has unknown operator %q", f.Key, f.Op)
		}
	}
	return nil
}

func knownAggregate(a Aggregate) bool {
	switch a {
	case "", AggNone, AggAvg, AggSum, AggMin, AggMax, AggCount, AggP50, AggP95, AggP99:
		return true
	}
	return false
}

// autoStep is the smallest nice step that cuts span into at most TargetPoints buckets.
func autoStep(span time.Duration) time.Duration {
	raw := span / TargetPoints
	for _, st := range niceSteps {
		if st >= raw {
			return st
		}
	}
	day := 24 * time.Hour
	return (raw + day - 1) / day * day
}

func bucketFuncOf(a Aggregate, rate bool) bucketFunc {
	switch {
	case rate:
		return fnLast
	case a == AggMin:
		return fnMin
	case a == AggMax:
		return fnMax
	case a == AggCount:
		return fnCount
	}
	return fnAvg
}

// checkLimits refuses, before reading samples, a query whose answer could exceed
// the point limit, or whose per-series buckets would not fit in memory.
func (p queryPlan) checkLimits(readSeries, outSeries int) error {
	if n := int64(outSeries) * p.buckets; n > int64(p.maxPoints) {
		return fmt.Errorf("%w: the answer could hold %d points (%d series × %d steps of %s), more than the limit of %d: use a larger step, a shorter range or narrower filters",
			ErrBadQuery, n, outSeries, p.buckets, p.step, p.maxPoints)
	}
	if n := int64(readSeries) * p.buckets; n > maxReadPoints {
		return fmt.Errorf("%w: the query would aggregate up to %d points (%d series × %d steps of %s), more than the limit of %d: use a larger step, a shorter range or narrower filters",
			ErrBadQuery, n, readSeries, p.buckets, p.step, maxReadPoints)
	}
	return nil
}

const checkRegex = `SELECT '' ~ $1`

// invalidRegex is PostgreSQL's SQLSTATE for a regular expression that does not compile.
const invalidRegex = "2201B"

// checkRegexes compiles every regex filter in PostgreSQL, whose dialect is the one
// the filters use, in one round trip, so that the error names the bad filter. The
// bare pattern is compiled: when it compiles, its parentheses balance and anchoring
// it cannot change what it means.
func (s *Store) checkRegexes(ctx context.Context, filters []TagFilter) error {
	batch := &pgx.Batch{}
	var regexes []TagFilter
	for _, f := range filters {
		if f.Op == OpRegex || f.Op == OpNRegex {
			batch.Queue(checkRegex, f.Value)
			regexes = append(regexes, f)
		}
	}
	if len(regexes) == 0 {
		return nil
	}
	results := s.pool.SendBatch(ctx, batch)
	defer results.Close()
	for _, f := range regexes {
		var ignored bool
		if err := results.QueryRow().Scan(&ignored); err != nil {
			return regexError(f, err)
		}
	}
	return nil
}

func regexError(f TagFilter, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == invalidRegex {
		return fmt.Errorf("%w: filter %s %s %q: %s", ErrBadQuery, f.Key, f.Op, f.Value, pgErr.Message)
	}
	return fmt.Errorf("check regex of filter on %s: %w", f.Key, err)
}

// selectedSeries is one series of the answer and, once read, its buckets.
type selectedSeries struct {
	id     int64
	tags   map[string]string
	points []bucketValue
}

// bucketValue is the value of the bucket that starts idx steps after the plan's from.
type bucketValue struct {
	idx int64
	v   float64
}

const selectSeriesOfMetric = `SELECT id, tags FROM series WHERE metric = $1`

// Tag filter conditions, with placeholders for the key's and the value's parameter
// numbers. Containment needs only the value (a JSON object holding the key) and can
// use the GIN index: every tag value is a JSON string, so it is equality.
const (
	condContains  = ` AND tags @> $%d::jsonb`
	condEQ        = ` AND coalesce(tags->>$%d, '') = $%d`
	condNEQ       = ` AND coalesce(tags->>$%d, '') <> $%d`
	condRegex     = ` AND coalesce(tags->>$%d, '') ~ $%d`
	condNotRegex  = ` AND coalesce(tags->>$%d, '') !~ $%d`
	regexAnchored = `^(?:%s)$`
)

func (s *Store) selectSeries(ctx context.Context, metric string, filters []TagFilter) ([]selectedSeries, error) {
	sql, args, err := seriesFilterSQL(metric, filters)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("select series of %s: %w", metric, err)
	}
	defer rows.Close()
	var out []selectedSeries
	for rows.Next() {
		var ss selectedSeries
		if err := rows.Scan(&ss.id, &ss.tags); err != nil {
			return nil, fmt.Errorf("select series of %s: %w", metric, err)
		}
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == invalidRegex {
			return nil, fmt.Errorf("%w: invalid regular expression in a filter: %s", ErrBadQuery, pgErr.Message)
		}
		return nil, fmt.Errorf("select series of %s: %w", metric, err)
	}
	return out, nil
}

// seriesFilterSQL appends one condition per filter; only placeholders are added to
// the text, every key and value is a parameter.
func seriesFilterSQL(metric string, filters []TagFilter) (string, []any, error) {
	var b strings.Builder
	b.WriteString(selectSeriesOfMetric)
	args := []any{metric}
	for _, f := range filters {
		if f.Op == OpEQ && f.Value != "" {
			obj, err := json.Marshal(map[string]string{f.Key: f.Value})
			if err != nil {
				return "", nil, fmt.Errorf("encode filter on %s: %w", f.Key, err)
			}
			args = append(args, string(obj))
			fmt.Fprintf(&b, condContains, len(args))
			continue
		}
		cond, value := condEQ, f.Value
		switch f.Op {
		case OpNEQ:
			cond = condNEQ
		case OpRegex:
			cond, value = condRegex, fmt.Sprintf(regexAnchored, f.Value)
		case OpNRegex:
			cond, value = condNotRegex, fmt.Sprintf(regexAnchored, f.Value)
		}
		args = append(args, f.Key, value)
		fmt.Fprintf(&b, cond, len(args)-1, len(args))
	}
	return b.String(), args, nil
}

// seriesGroup is the positions, in the selected series, of one group's members.
type seriesGroup struct {
	members []int
}

// groupSeries splits series by the values of the groupBy tags; a series without one
// of them groups apart from the series that have it, even with an empty value.
func groupSeries(series []selectedSeries, groupBy []string) []seriesGroup {
	var groups []seriesGroup
	byKey := map[string]int{}
	for i, ss := range series {
		var key strings.Builder
		for _, k := range groupBy {
			if v, ok := ss.tags[k]; ok {
				key.WriteByte(1)
				key.WriteString(v)
			}
			key.WriteByte(0)
		}
		g, ok := byKey[key.String()]
		if !ok {
			g = len(groups)
			byKey[key.String()] = g
			groups = append(groups, seriesGroup{})
		}
		groups[g].members = append(groups[g].members, i)
	}
	return groups
}

// rawBucketExpr is, per bucketFunc, a bucket's value from raw samples (last:
// the value at the greatest time, ties to the greatest value, as the rollups
// compute it).
var rawBucketExpr = [...]string{
	fnAvg:   `avg(value)`,
	fnMin:   `min(value)`,
	fnMax:   `max(value)`,
	fnCount: `count(*)::float8`,
	fnLast:  `(array_agg(value ORDER BY time DESC, value DESC))[1]`,
}

// Bucket statements yield (key, b, v): the series id (or, combined, its group
// number), the bucket start and the series' value for the bucket. $1 series
// ids, $2 first bucket, $3 end of the last bucket, $4 step, and, combined, $5
// the group of each series of $1, at the same position. %[1]s is the key
// column, g.id or g.grp, of the series list g, %[2]s the list itself.
const (
	seriesList        = `unnest($1::bigint[]) AS g(id)`
	seriesGroupedList = `unnest($1::bigint[], $5::int[]) AS g(id, grp)`
)

// rawBuckets reads the buckets (value %[3]s) of every series from the raw
// samples in [$2, $3), in one scan, not one series at a time: samples are
// stored in time order, each page holding rows of many series, and one bitmap
// scan reads each page once. Rollups are read by readPackedShare.
const rawBuckets = `
SELECT %[1]s, per.b, per.v
FROM (
    SELECT series_id, date_bin($4, time, TIMESTAMPTZ 'epoch') AS b, %[3]s AS v
    FROM samples
    WHERE series_id = ANY($1) AND time >= $2 AND time < $3
    GROUP BY 1, 2) AS per
JOIN %[2]s ON g.id = per.series_id`

func rawBucketSQL(fn bucketFunc, key, list string) string {
	return fmt.Sprintf(rawBuckets, key, list, rawBucketExpr[fn])
}

// combinesInSQL reports whether the series of a group can be combined in SQL,
// bucket by bucket, into the same values combine computes: AVG, SUM, MIN, MAX
// and COUNT of the per-series bucket values fold into a sum or a min or max and
// a count, which shares of the series can return and Go can merge exactly.
// Rates are computed per series first and percentiles need every value, so
// both combine in Go. It concerns raw reads: rollups are folded into buckets,
// and so combined, in Go (readPackedShare).
func (p queryPlan) combinesInSQL() bool {
	if p.rate {
		return false
	}
	switch p.aggregate {
	case AggAvg, AggSum, AggMin, AggMax, AggCount:
		return true
	}
	return false
}

// combineExpr folds the per-series values v of one group and bucket: AVG sums
// them here and divides by their count once every share is in, COUNT sums the
// per-series counts.
func combineExpr(agg Aggregate) string {
	switch agg {
	case AggMin:
		return `min(per.v)`
	case AggMax:
		return `max(per.v)`
	}
	return `sum(per.v)`
}

// combinedBuckets combines the per-series bucket values of each group (keyed
// by group number) per bucket. The count is how many series had a value in the
// bucket.
const combinedBuckets = `
SELECT per.grp, per.b, %[2]s, count(*)::float8
FROM (%[1]s) AS per(grp, b, v)
GROUP BY 1, 2`

// groupAcc accumulates one group's combined buckets as the shares of its
// series come in.
type groupAcc struct {
	v    []float64
	n    []float64 // series with a value, per bucket: 0 for a bucket without data
	seen int
}

// queryCombined answers an aggregate that combinesInSQL: each share of the
// series returns, per group and bucket, its combined value and how many series
// it combines, and the shares are merged here.
func (s *Store) queryCombined(ctx context.Context, p queryPlan, metric string, series []selectedSeries, groups []seriesGroup) ([]Series, error) {
	grp := make([]int32, len(series))
	for g, sg := range groups {
		for _, i := range sg.members {
			grp[i] = int32(g)
		}
	}
	sql := fmt.Sprintf(combinedBuckets, rawBucketSQL(p.fn, "g.grp", seriesGroupedList), combineExpr(p.aggregate))
	size := s.shareSize(len(series))
	shares := make([][]combinedRow, (len(series)+size-1)/size)
	g, gctx := errgroup.WithContext(ctx)
	for k := range shares {
		lo, hi := k*size, min((k+1)*size, len(series))
		g.Go(func() error {
			rows, err := s.readCombinedShare(gctx, p, sql, series[lo:hi], grp[lo:hi])
			shares[k] = rows
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	accs := make([]groupAcc, len(groups))
	for _, rows := range shares { // in share order, so sums add up the same way every time
		for _, r := range rows {
			a := &accs[r.grp]
			if a.v == nil {
				a.v, a.n = make([]float64, p.buckets), make([]float64, p.buckets)
			}
			if a.n[r.idx] == 0 {
				a.v[r.idx] = r.v
				a.seen++
			} else {
				a.v[r.idx] = accumulate(p.aggregate, a.v[r.idx], r.v)
			}
			a.n[r.idx] += r.n
		}
	}
	var out []Series
	for gi, a := range accs {
		if a.seen == 0 {
			continue
		}
		pts := make([]bucketValue, 0, a.seen)
		for i, n := range a.n {
			if n == 0 {
				continue
			}
			v := a.v[i]
			if p.aggregate == AggAvg {
				v /= n
			}
			pts = append(pts, bucketValue{idx: int64(i), v: v})
		}
		tags := make([]map[string]string, len(groups[gi].members))
		for j, i := range groups[gi].members {
			tags[j] = series[i].tags
		}
		out = append(out, Series{Metric: metric, Tags: sharedTags(tags), Points: p.toPoints(pts)})
	}
	sortSeries(out)
	return out, nil
}

// combinedRow is one group's combined bucket from one share of its series.
type combinedRow struct {
	grp  int32
	idx  int64
	v, n float64
}

func (s *Store) readCombinedShare(ctx context.Context, p queryPlan, sql string, series []selectedSeries, grp []int32) ([]combinedRow, error) {
	ids := make([]int64, len(series))
	for i, ss := range series {
		ids[i] = ss.id
	}
	fromUS, stepUS := p.from.UnixMicro(), p.step.Microseconds()
	var (
		out    []combinedRow
		r      combinedRow
		bucket time.Time
	)
	err := s.readRows(ctx, sql, []any{ids, p.from, p.end, p.step, grp}, []any{&r.grp, &bucket, &r.v, &r.n}, func() {
		r.idx = (bucket.UnixMicro() - fromUS) / stepUS
		out = append(out, r)
	})
	if err != nil {
		return nil, fmt.Errorf("read combined buckets: %w", err)
	}
	return out, nil
}

// readRows runs a statement reading raw buckets in a read-only transaction of
// its own, scanning each row into dest and calling row after each. The
// statement is planned for its actual arguments every time rather than
// prepared: the generic plan of a prepared statement cannot see how many series
// and buckets it reads, guesses far too many groups, and sorts them instead of
// hashing (a third slower, measured on 1,000 series × 1 day).
func (s *Store) readRows(ctx context.Context, sql string, args, dest []any, row func()) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		return queryEach(ctx, tx, sql, append([]any{pgx.QueryExecModeExec}, args...), dest, row)
	})
}

// queryEach runs sql in tx, scanning each row into dest and calling row after each.
func queryEach(ctx context.Context, tx pgx.Tx, sql string, args, dest []any, row func()) error {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		row()
	}
	return rows.Err()
}

// parallelReadSeries is the number of series from which a query's buckets are
// read by several connections at once, one share of the series each: a single
// statement uses one core, and a big query is CPU-bound in PostgreSQL.
const parallelReadSeries = 200

// readBuckets reads the per-series buckets, computed in SQL, into
// series[i].points, sorted by time.
func (s *Store) readBuckets(ctx context.Context, p queryPlan, series []selectedSeries, src source) error {
	g, gctx := errgroup.WithContext(ctx)
	size := s.shareSize(len(series))
	for lo := 0; lo < len(series); lo += size {
		share := series[lo:min(lo+size, len(series))]
		g.Go(func() error { return s.readShare(gctx, p, share, src) })
	}
	return g.Wait()
}

// shareSize is how many of n series one connection reads.
func (s *Store) shareSize(n int) int {
	parts := 1
	if n >= parallelReadSeries {
		parts = min(runtime.GOMAXPROCS(0), int(s.pool.Config().MaxConns)/2, n/(parallelReadSeries/2))
		parts = max(parts, 1)
	}
	return (n + parts - 1) / parts
}

// readShare reads the buckets of one share of a query's series; shares are
// disjoint, so they fill their series without locking.
func (s *Store) readShare(ctx context.Context, p queryPlan, series []selectedSeries, src source) error {
	if t, ok := s.packedTierFor(p, src); ok {
		return s.readPackedShare(ctx, p, t, series)
	}
	ids, pos := seriesIDs(series)
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		return queryRawBuckets(ctx, tx, p, series, ids, pos, p.from)
	})
	if err != nil {
		return fmt.Errorf("read buckets: %w", err)
	}
	for i := range series {
		sortBuckets(series[i].points)
	}
	return nil
}

// seriesIDs returns the ids of series, in order, and each id's position.
func seriesIDs(series []selectedSeries) ([]int64, map[int64]int) {
	ids := make([]int64, len(series))
	pos := make(map[int64]int, len(series))
	for i, ss := range series {
		ids[i] = ss.id
		pos[ss.id] = i
	}
	return ids, pos
}

// queryRawBuckets appends to each series' points its buckets from the raw
// samples in [from, p.end), read in tx; ids and pos are seriesIDs(series). The
// statement is planned for its arguments, as readRows says.
func queryRawBuckets(ctx context.Context, tx pgx.Tx, p queryPlan, series []selectedSeries, ids []int64, pos map[int64]int, from time.Time) error {
	fromUS, stepUS := p.from.UnixMicro(), p.step.Microseconds()
	var (
		id     int64
		bucket time.Time
		v      float64
	)
	args := []any{pgx.QueryExecModeExec, ids, from, p.end, p.step}
	return queryEach(ctx, tx, rawBucketSQL(p.fn, "g.id", seriesList), args, []any{&id, &bucket, &v}, func() {
		i := pos[id]
		series[i].points = append(series[i].points, bucketValue{idx: (bucket.UnixMicro() - fromUS) / stepUS, v: v})
	})
}

func sortBuckets(pts []bucketValue) {
	byIdx := func(a, b bucketValue) int { return int(a.idx - b.idx) }
	if !slices.IsSortedFunc(pts, byIdx) {
		slices.SortFunc(pts, byIdx)
	}
}

// rateOf turns the last values of buckets into per-second increases, in place.
func rateOf(pts []bucketValue, step time.Duration) []bucketValue {
	if len(pts) < 2 {
		return pts[:0]
	}
	prev := pts[0]
	out := pts[:0]
	for _, cur := range pts[1:] {
		inc := cur.v - prev.v
		if inc < 0 { // counter reset: it restarted from zero
			inc = cur.v
		}
		secs := float64(cur.idx-prev.idx) * step.Seconds()
		out = append(out, bucketValue{idx: cur.idx, v: inc / secs})
		prev = cur
	}
	return out
}

func (p queryPlan) seriesAsIs(metric string, series []selectedSeries) []Series {
	var out []Series
	for _, ss := range series {
		if len(ss.points) == 0 {
			continue
		}
		out = append(out, Series{Metric: metric, Tags: ss.tags, Points: p.toPoints(ss.points)})
	}
	sortSeries(out)
	return out
}

func (p queryPlan) aggregated(metric string, series []selectedSeries, groups []seriesGroup) []Series {
	var out []Series
	for _, g := range groups {
		members := make([][]bucketValue, len(g.members))
		tags := make([]map[string]string, len(g.members))
		for j, i := range g.members {
			members[j], tags[j] = series[i].points, series[i].tags
		}
		pts := combine(p.aggregate, members, p.buckets)
		if len(pts) == 0 {
			continue
		}
		out = append(out, Series{Metric: metric, Tags: sharedTags(tags), Points: p.toPoints(pts)})
	}
	sortSeries(out)
	return out
}

// combine merges the buckets of a group's series into one, bucket by bucket.
func combine(agg Aggregate, members [][]bucketValue, buckets int64) []bucketValue {
	if pct, ok := percentileOf(agg); ok {
		return combinePercentile(pct, members, buckets)
	}
	acc := make([]float64, buckets)
	seen := make([]bool, buckets)
	n := 0
	for _, pts := range members {
		for _, bv := range pts {
			if !seen[bv.idx] {
				seen[bv.idx], acc[bv.idx] = true, bv.v
				n++
				continue
			}
			acc[bv.idx] = accumulate(agg, acc[bv.idx], bv.v)
		}
	}
	counts := memberCounts(agg, members, buckets)
	out := make([]bucketValue, 0, n)
	for i, ok := range seen {
		if !ok {
			continue
		}
		v := acc[i]
		if counts != nil {
			v /= float64(counts[i])
		}
		out = append(out, bucketValue{idx: int64(i), v: v})
	}
	return out
}

// accumulate folds v into acc; AVG sums here and divides in combine. COUNT sums,
// because each series' value is already its count.
func accumulate(agg Aggregate, acc, v float64) float64 {
	switch agg {
	case AggMin:
		return math.Min(acc, v)
	case AggMax:
		return math.Max(acc, v)
	}
	return acc + v
}

// memberCounts is, for AVG, how many series have each bucket; nil otherwise.
func memberCounts(agg Aggregate, members [][]bucketValue, buckets int64) []int32 {
	if agg != AggAvg {
		return nil
	}
	counts := make([]int32, buckets)
	for _, pts := range members {
		for _, bv := range pts {
			counts[bv.idx]++
		}
	}
	return counts
}

func percentileOf(agg Aggregate) (float64, bool) {
	switch agg {
	case AggP50:
		return 0.50, true
	case AggP95:
		return 0.95, true
	case AggP99:
		return 0.99, true
	}
	return 0, false
}

func combinePercentile(pct float64, members [][]bucketValue, buckets int64) []bucketValue {
	values := make([][]float64, buckets)
	for _, pts := range members {
		for _, bv := range pts {
			values[bv.idx] = append(values[bv.idx], bv.v)
		}
	}
	var out []bucketValue
	for i, vs := range values {
		if len(vs) > 0 {
			out = append(out, bucketValue{idx: int64(i), v: percentile(vs, pct)})
		}
	}
	return out
}

// percentile interpolates linearly between the closest ranks (numpy's default,
// Excel's PERCENTILE.INC); it sorts vs.
func percentile(vs []float64, pct float64) float64 {
	sort.Float64s(vs)
	rank := pct * float64(len(vs)-1)
	lo := int(math.Floor(rank))
	hi := int(math.Ceil(rank))
	return vs[lo] + (vs[hi]-vs[lo])*(rank-float64(lo))
}

// sharedTags is the tags that every one of tagSets has with the same value.
func sharedTags(tagSets []map[string]string) map[string]string {
	out := map[string]string{}
	if len(tagSets) == 0 {
		return out
	}
	for k, v := range tagSets[0] {
		out[k] = v
	}
	for _, tags := range tagSets[1:] {
		for k, v := range out {
			if tv, ok := tags[k]; !ok || tv != v {
				delete(out, k)
			}
		}
	}
	return out
}

func (p queryPlan) toPoints(pts []bucketValue) []Point {
	out := make([]Point, len(pts))
	for i, bv := range pts {
		out[i] = Point{T: p.from.Add(time.Duration(bv.idx) * p.step), V: bv.v}
	}
	return out
}

func sortSeries(series []Series) {
	sort.Slice(series, func(i, j int) bool {
		return SeriesRef{Tags: series[i].Tags}.Key() < SeriesRef{Tags: series[j].Tags}.Key()
	})
}
