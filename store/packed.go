package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// A packed tier holds the rows of a narrow rollup table gathered one row per
// series and span (an hour of minutes, a day of hours), so that a query over many
// series reads 60 (24) times fewer rows: read row by row, grouping 1,000 series ×
// a day of minutes costs PostgreSQL ~0.4 s, the same day packed ~40 ms. The
// narrow tables (the rollup role's tables, or TimescaleDB's continuous
// aggregates) stay the source; the packed tables (migration 0007) are a read
// path. Each tier has two: _sums with sum and count (avg, count) and
// _values with min, max and last, so that a query reads only the bytes it needs.
//
// Spans are packed once they have ended, not minute by minute: rewriting every
// series' packed row at each roll-up would write its ~2.5 kB a minute, many times
// the samples themselves. rollup_packed.through says how far a tier is packed; a
// query reads the packed rows before it and the narrow rows after it. On plain
// PostgreSQL a span before through whose minutes are rolled up again (late
// samples) is repacked in the same transaction. On TimescaleDB a span is packed
// once the continuous aggregate's refresh window has passed it (tsdbSettle):
// later samples do not reach the materialised aggregate either.
type packedTier struct {
	name   string        // rollup_packed.tier
	sums   string        // the packed table of sum and count
	values string        // the packed table of min, max and last
	narrow string        // the rollup table they pack
	unit   time.Duration // the narrow table's bucket
	span   time.Duration // what one packed row covers
	// tsdbSettle is the start_offset of the continuous aggregate's refresh
	// policy (migration 0002): older buckets are no longer refreshed.
	tsdbSettle time.Duration
}

var (
	packed1m = packedTier{name: "1m", sums: "samples_1m_packed_sums", values: "samples_1m_packed_values", narrow: "samples_1m",
		unit: time.Minute, span: time.Hour, tsdbSettle: 3 * time.Hour}
	packed1h = packedTier{name: "1h", sums: "samples_1h_packed_sums", values: "samples_1h_packed_values", narrow: "samples_1h",
		unit: time.Hour, span: 24 * time.Hour, tsdbSettle: 48 * time.Hour}

	packedTiers = []packedTier{packed1m, packed1h}
)

// packSpans (re)writes the packed rows of the spans in the ranges ($1 starts,
// $2 ends, whole spans) from the narrow table %[3]s into %[1]s (sums) and %[2]s
// (values); $3 is the span, $4 the narrow bucket in seconds. The lateral
// subquery makes one index range scan per series, as the roll-up itself does;
// the CTE, read twice, is computed once. A count column holds one value when
// every bucket of the span has the same count (a series sent at a steady
// rate): an avg then reads about half the bytes.
const packSpans = `
WITH packed AS (
    SELECT sr.id AS series_id, a.bucket, a.slots, a.min, a.max, a.sum, a.count, a.last
    FROM unnest($1::timestamptz[], $2::timestamptz[]) AS w(lo, hi)
    CROSS JOIN series sr
    CROSS JOIN LATERAL (
        SELECT date_bin($3, n.bucket, TIMESTAMPTZ 'epoch') AS bucket,
               string_agg(set_byte('\x00'::bytea, 0,
                   extract(epoch FROM n.bucket - date_bin($3, n.bucket, TIMESTAMPTZ 'epoch'))::int / $4::int),
                   ''::bytea ORDER BY n.bucket) AS slots,
               string_agg(float8send(n.min), ''::bytea ORDER BY n.bucket) AS min,
               string_agg(float8send(n.max), ''::bytea ORDER BY n.bucket) AS max,
               string_agg(float8send(n.sum), ''::bytea ORDER BY n.bucket) AS sum,
               CASE WHEN min(n.count) = max(n.count) THEN float8send(min(n.count)::float8)
                    ELSE string_agg(float8send(n.count::float8), ''::bytea ORDER BY n.bucket) END AS count,
               string_agg(float8send(n.last), ''::bytea ORDER BY n.bucket) AS last
        FROM %[3]s n
        WHERE n.series_id = sr.id AND n.bucket >= w.lo AND n.bucket < w.hi
        GROUP BY 1) AS a
), sums AS (
    INSERT INTO %[1]s (series_id, bucket, slots, sum, count)
    SELECT series_id, bucket, slots, sum, count FROM packed
    ON CONFLICT (series_id, bucket) DO UPDATE SET slots = EXCLUDED.slots, sum = EXCLUDED.sum, count = EXCLUDED.count
)
INSERT INTO %[2]s (series_id, bucket, slots, min, max, last)
SELECT series_id, bucket, slots, min, max, last FROM packed
ON CONFLICT (series_id, bucket) DO UPDATE SET
    slots = EXCLUDED.slots, min = EXCLUDED.min, max = EXCLUDED.max, last = EXCLUDED.last`

// pack returns how many packed rows it wrote.
func (t packedTier) pack(ctx context.Context, tx pgx.Tx, ranges []timeRange) (int64, error) {
	if len(ranges) == 0 {
		return 0, nil
	}
	los := make([]time.Time, len(ranges))
	his := make([]time.Time, len(ranges))
	for i, r := range ranges {
		los[i], his[i] = r.lo, r.hi
	}
	tag, err := tx.Exec(ctx, fmt.Sprintf(packSpans, t.sums, t.values, t.narrow), los, his, t.span, int(t.unit/time.Second))
	if err != nil {
		return 0, fmt.Errorf("pack %s: %w", t.narrow, err)
	}
	return tag.RowsAffected(), nil
}

// lockPackedThrough reads how far each tier is packed and locks the markers, which
// serialises PackRollups with RollupPending: a span is never packed from narrow
// rows that a concurrent roll-up is changing.
func lockPackedThrough(ctx context.Context, tx pgx.Tx) (map[string]time.Time, error) {
	rows, err := tx.Query(ctx, `SELECT tier, through FROM rollup_packed ORDER BY tier FOR UPDATE`)
	if err != nil {
		return nil, fmt.Errorf("lock rollup_packed: %w", err)
	}
	through := map[string]time.Time{}
	var (
		tier string
		t    time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&tier, &t}, func() error {
		through[tier] = t
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lock rollup_packed: %w", err)
	}
	return through, nil
}

// repackTouched repacks, after a roll-up of minutes, the spans already packed
// (before through) that hold any of them: late samples changed their narrow rows.
func repackTouched(ctx context.Context, tx pgx.Tx, through map[string]time.Time, minutes []time.Time) error {
	for _, t := range packedTiers {
		var old []time.Time
		for _, m := range minutes {
			if m.Before(through[t.name]) {
				old = append(old, m)
			}
		}
		if _, err := t.pack(ctx, tx, mergeRanges(old, t.span)); err != nil {
			return err
		}
	}
	return nil
}

// PackRollups packs every span that has ended by now and whose minutes are all
// rolled up (on TimescaleDB: that ended before the refresh window of its
// continuous aggregate), and returns how many packed rows it wrote. It runs
// beside RollupPending, not inside its transaction, so that ingest commits do
// not wait for it.
func (s *Store) PackRollups(ctx context.Context, now time.Time) (int64, error) {
	var written int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		written = 0
		through, err := lockPackedThrough(ctx, tx)
		if err != nil {
			return err
		}
		var oldest *time.Time
		if err := tx.QueryRow(ctx, selectWatermark).Scan(&oldest); err != nil {
			return fmt.Errorf("read rollup watermark: %w", err)
		}
		for _, t := range packedTiers {
			from := through[t.name]
			to := floorTime(now, t.span)
			if s.timescale {
				to = floorTime(now.Add(-t.tsdbSettle), t.span)
			}
			if oldest != nil {
				to = minTime(to, floorTime(*oldest, t.span))
			}
			if !to.After(from) {
				continue
			}
			n, err := t.pack(ctx, tx, []timeRange{{from, to}})
			if err != nil {
				return err
			}
			written += n
			if _, err := tx.Exec(ctx, `UPDATE rollup_packed SET through = $2 WHERE tier = $1`, t.name, to); err != nil {
				return fmt.Errorf("advance rollup_packed: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return written, nil
}

// packedTierFor is the packed tier a query reads, if any: minute steps read the
// packed minutes, hour steps the packed hours; other steps read raw samples.
func (s *Store) packedTierFor(p queryPlan, src source) (packedTier, bool) {
	switch {
	case src == sourceRaw:
		return packedTier{}, false
	case p.step%time.Hour == 0:
		return packed1h, true
	case p.step%time.Minute == 0:
		return packed1m, true
	}
	return packedTier{}, false
}

// packedColumns are, per bucketFunc, the packed table read (the tier's _sums or
// _values), its value column and whether the counts are read too (min, max and
// last need only the value: a bucket present has data).
var packedColumns = [...]struct {
	sums   bool
	value  string
	counts bool
}{
	fnAvg:   {true, "sum", true},
	fnMin:   {false, "min", false},
	fnMax:   {false, "max", false},
	fnCount: {true, "count", false},
	fnLast:  {false, "last", false},
}

const (
	selectPackedBounds = `SELECT (SELECT min(bucket) FROM rollup_pending), (SELECT through FROM rollup_packed WHERE tier = $1)`
	selectPackedRows   = `SELECT series_id, bucket, slots, %[2]s, %[3]s FROM %[1]s WHERE series_id = ANY($1) AND bucket >= $2 AND bucket < $3`
	selectNarrowRows   = `SELECT series_id, bucket, %[2]s, count::float8 FROM %[1]s WHERE series_id = ANY($1) AND bucket >= $2 AND bucket < $3`
)

// readPackedShare reads the buckets of one share of a query's series into
// series[i].points, sorted by time, from three sources cut at two instants, all in
// one snapshot: packed rows before the tier's through, narrow rollup rows from
// there to the split (the first step bucket not complete in the rollups: the
// one holding the oldest minute pending roll-up), raw samples from the split on.
// The rollup values are folded into buckets here, so the packed and narrow
// parts may share a bucket.
func (s *Store) readPackedShare(ctx context.Context, p queryPlan, t packedTier, series []selectedSeries) error {
	ids, pos := seriesIDs(series)
	acc := newBucketAcc(p, len(series))
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	err := pgx.BeginTxFunc(ctx, s.pool, opts, func(tx pgx.Tx) error {
		var (
			oldest  *time.Time
			through time.Time
		)
		if err := tx.QueryRow(ctx, selectPackedBounds, t.name).Scan(&oldest, &through); err != nil {
			return fmt.Errorf("read rollup bounds: %w", err)
		}
		split := p.end
		if oldest != nil {
			split = maxTime(p.from, minTime(floorTime(*oldest, p.step), p.end))
		}
		packedTo := minTime(through, split)
		if err := acc.readPacked(ctx, tx, t, pos, ids, p.from, packedTo); err != nil {
			return err
		}
		if narrowFrom := maxTime(p.from, packedTo); narrowFrom.Before(split) {
			if err := acc.readNarrow(ctx, tx, t, pos, ids, narrowFrom, split); err != nil {
				return err
			}
		}
		for i := range series {
			series[i].points = acc.points(i)
		}
		if !split.Before(p.end) {
			return nil
		}
		// The tail is short: JIT-compiling it (PostgreSQL's cost estimate for a
		// grouped read asks for it) would take longer than running it.
		if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
			return err
		}
		return queryRawBuckets(ctx, tx, p, series, ids, pos, split)
	})
	if err != nil {
		return fmt.Errorf("read buckets: %w", err)
	}
	for i := range series {
		sortBuckets(series[i].points)
	}
	return nil
}

// bucketAcc folds rollup buckets (minutes, hours) into the query's step buckets
// for a share of series: cell i*buckets+b is series i's bucket b.
type bucketAcc struct {
	fn             bucketFunc
	buckets        int64
	fromUS, stepUS int64
	v, n           []float64 // the sum, min, max or last; the count of samples or of rollup buckets
	lastUS         []int64   // fnLast: the time of the rollup bucket v came from
}

func newBucketAcc(p queryPlan, series int) *bucketAcc {
	cells := int64(series) * p.buckets
	a := &bucketAcc{fn: p.fn, buckets: p.buckets, fromUS: p.from.UnixMicro(), stepUS: p.step.Microseconds(),
		v: make([]float64, cells), n: make([]float64, cells)}
	if p.fn == fnLast {
		a.lastUS = make([]int64, cells)
	}
	return a
}

// add folds the rollup bucket of series i that starts at us, with value v and
// count n (the number of samples; 1 where the function needs no count).
func (a *bucketAcc) add(i int, us int64, v, n float64) {
	c := int64(i)*a.buckets + (us-a.fromUS)/a.stepUS
	first := a.n[c] == 0
	a.n[c] += n
	switch a.fn {
	case fnAvg, fnCount:
		a.v[c] += v
	case fnMin:
		if first || v < a.v[c] {
			a.v[c] = v
		}
	case fnMax:
		if first || v > a.v[c] {
			a.v[c] = v
		}
	case fnLast:
		if first || us > a.lastUS[c] {
			a.v[c], a.lastUS[c] = v, us
		}
	}
}

// addSums folds the sums and counts of one packed row of series i into its
// buckets: add for fnAvg, without its per-bucket dispatch (the hot loop of an
// avg over many series).
func (a *bucketAcc) addSums(i int, startUS, unitUS, fromUS, toUS int64, slots, sums, counts []byte) {
	base := int64(i) * a.buckets
	for k, slot := range slots {
		us := startUS + int64(slot)*unitUS
		if us < fromUS || us >= toUS {
			continue
		}
		c := base + (us-a.fromUS)/a.stepUS
		a.v[c] += float8At(sums, k)
		a.n[c] += countAt(counts, k)
	}
}

// points are series i's buckets with data, in time order.
func (a *bucketAcc) points(i int) []bucketValue {
	base := int64(i) * a.buckets
	filled := 0
	for _, n := range a.n[base : base+a.buckets] {
		if n != 0 {
			filled++
		}
	}
	pts := make([]bucketValue, 0, filled) // once, not grown bucket by bucket
	for b := range a.buckets {
		n := a.n[base+b]
		if n == 0 {
			continue
		}
		v := a.v[base+b]
		if a.fn == fnAvg {
			v /= n
		}
		pts = append(pts, bucketValue{idx: b, v: v})
	}
	return pts
}

// readPacked folds the packed rows' buckets in [from, to).
func (a *bucketAcc) readPacked(ctx context.Context, tx pgx.Tx, t packedTier, pos map[int64]int, ids []int64, from, to time.Time) error {
	if !from.Before(to) {
		return nil
	}
	cols := packedColumns[a.fn]
	counts := "''::bytea"
	if cols.counts {
		counts = "count"
	}
	var (
		id            int64
		bucket        time.Time
		slots, vs, ns pgtype.DriverBytes // valid until the next row: decoded at once
	)
	fromUS, toUS, unitUS := from.UnixMicro(), to.UnixMicro(), t.unit.Microseconds()
	table := t.values
	if cols.sums {
		table = t.sums
	}
	valueAt := float8At
	if cols.value == "count" {
		valueAt = countAt
	}
	sql := fmt.Sprintf(selectPackedRows, table, cols.value, counts)
	err := queryEach(ctx, tx, sql, []any{ids, floorTime(from, t.span), to}, []any{&id, &bucket, &slots, &vs, &ns}, func() {
		i, startUS := pos[id], bucket.UnixMicro()
		if a.fn == fnAvg {
			a.addSums(i, startUS, unitUS, fromUS, toUS, slots, vs, ns)
			return
		}
		for k, slot := range slots {
			us := startUS + int64(slot)*unitUS
			if us < fromUS || us >= toUS {
				continue
			}
			n := 1.0
			if cols.counts {
				n = countAt(ns, k)
			}
			a.add(i, us, valueAt(vs, k), n)
		}
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	return nil
}

// readNarrow folds the narrow rollup rows in [from, to), the spans not yet packed.
func (a *bucketAcc) readNarrow(ctx context.Context, tx pgx.Tx, t packedTier, pos map[int64]int, ids []int64, from, to time.Time) error {
	cols := packedColumns[a.fn]
	var (
		id     int64
		bucket time.Time
		v, n   float64
	)
	value := cols.value
	if value == "count" {
		value = "count::float8"
	}
	err := queryEach(ctx, tx, fmt.Sprintf(selectNarrowRows, t.narrow, value), []any{ids, from, to}, []any{&id, &bucket, &v, &n}, func() {
		if !cols.counts {
			n = 1
		}
		a.add(pos[id], bucket.UnixMicro(), v, n)
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", t.narrow, err)
	}
	return nil
}

// countAt decodes the k-th count of a packed count column, which holds one
// value for all its buckets when they all have the same.
func countAt(b []byte, k int) float64 {
	if len(b) == 8 {
		return float8At(b, 0)
	}
	return float8At(b, k)
}

// float8At decodes the k-th float8send value of a packed column.
func float8At(b []byte, k int) float64 {
	return math.Float64frombits(binary.BigEndian.Uint64(b[k*8:]))
}
