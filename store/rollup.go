package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// timeRange is a half-open interval [lo, hi) of sample times.
type timeRange struct{ lo, hi time.Time }

// Locking rollup_pending in a mode that conflicts with the writers' ROW EXCLUSIVE is
// what keeps concurrent ingest from being lost. WriteSamples marks its minutes with
// INSERT ... ON CONFLICT DO NOTHING, which leaves no trace when the minute is already
// pending. Without the lock a writer could (1) insert samples into minute M, (2) find
// M already pending and do nothing, then (3) commit only after this transaction has
// deleted M and read the samples: its samples would be neither rolled up nor pending.
// Taking the lock waits for every writer that has already marked its minutes to
// commit, so the samples they wrote are visible to the recomputation below; writers
// that mark later wait for this transaction to commit and then find the minute gone,
// so they insert it again (a deleted, uncommitted row also makes a concurrent
// ON CONFLICT wait for the deleter). The mode is self-exclusive too: two replicas
// never recompute the same hour from each other's half-written minutes. The price is
// that ingest commits pause for the length of one rollup run, which maxMinutes bounds.
const lockPending = `LOCK TABLE rollup_pending IN SHARE ROW EXCLUSIVE MODE`

const takePending = `
DELETE FROM rollup_pending
WHERE bucket IN (SELECT bucket FROM rollup_pending ORDER BY bucket LIMIT $1)
RETURNING bucket`

// The samples index is (series_id, time): the lateral subquery, which the planner
// cannot flatten because it aggregates, makes one index range scan per series and
// time range instead of a scan of whole partitions. last is the value at the
// greatest time, ties broken by the greatest value, exactly as the query path
// computes it from raw samples. The ranges are disjoint, so no row is hit twice.
const rollupMinutes = `
INSERT INTO samples_1m AS r (series_id, bucket, min, max, sum, count, last)
SELECT sr.id, a.bucket, a.min, a.max, a.sum, a.count, a.last
FROM unnest($1::timestamptz[], $2::timestamptz[]) AS w(lo, hi)
CROSS JOIN series sr
CROSS JOIN LATERAL (
    SELECT date_bin('1 minute', s.time, TIMESTAMPTZ 'epoch') AS bucket, min(s.value), max(s.value),
           sum(s.value), count(*), (array_agg(s.value ORDER BY s.time DESC, s.value DESC))[1] AS last
    FROM samples s
    WHERE s.series_id = sr.id AND s.time >= w.lo AND s.time < w.hi
    GROUP BY 1) AS a
ON CONFLICT (series_id, bucket) DO UPDATE SET
    min = EXCLUDED.min, max = EXCLUDED.max, sum = EXCLUDED.sum, count = EXCLUDED.count, last = EXCLUDED.last`

const rollupHours = `
INSERT INTO samples_1h AS r (series_id, bucket, min, max, sum, count, last)
SELECT sr.id, a.bucket, a.min, a.max, a.sum, a.count, a.last
FROM unnest($1::timestamptz[], $2::timestamptz[]) AS w(lo, hi)
CROSS JOIN series sr
CROSS JOIN LATERAL (
    SELECT date_bin('1 hour', m.bucket, TIMESTAMPTZ 'epoch') AS bucket, min(m.min), max(m.max),
           sum(m.sum), sum(m.count) AS count, (array_agg(m.last ORDER BY m.bucket DESC))[1] AS last
    FROM samples_1m m
    WHERE m.series_id = sr.id AND m.bucket >= w.lo AND m.bucket < w.hi
    GROUP BY 1) AS a
ON CONFLICT (series_id, bucket) DO UPDATE SET
    min = EXCLUDED.min, max = EXCLUDED.max, sum = EXCLUDED.sum, count = EXCLUDED.count, last = EXCLUDED.last`

// RollupPending brings the 1-minute and 1-hour rollups up to date for at most
// maxMinutes of the oldest minutes marked pending by WriteSamples, and returns how
// many minutes it rolled up. The minutes are taken out of rollup_pending, their
// samples_1m rows recomputed from samples and the samples_1h rows of their hours
// recomputed from samples_1m, and the packed rows of spans already packed
// repacked, all in one transaction: a failed run leaves the minutes pending. On
// TimescaleDB the continuous aggregates do this and it is a no-op.
func (s *Store) RollupPending(ctx context.Context, maxMinutes int) (int, error) {
	if s.timescale || maxMinutes <= 0 {
		return 0, nil
	}
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The packing markers first: a PackRollups holding them is waited for
		// before rollup_pending is locked, so ingest commits never wait for it.
		through, err := lockPackedThrough(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, lockPending); err != nil {
			return fmt.Errorf("lock rollup_pending: %w", err)
		}
		minutes, err := takePendingMinutes(ctx, tx, maxMinutes)
		if err != nil {
			return err
		}
		n = len(minutes)
		if n == 0 {
			return nil
		}
		minuteRanges := mergeRanges(minutes, time.Minute)
		if err := execRanges(ctx, tx, rollupMinutes, minuteRanges); err != nil {
			return fmt.Errorf("roll up minutes: %w", err)
		}
		if err := execRanges(ctx, tx, rollupHours, mergeRanges(minutes, time.Hour)); err != nil {
			return fmt.Errorf("roll up hours: %w", err)
		}
		return repackTouched(ctx, tx, through, minutes)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func takePendingMinutes(ctx context.Context, tx pgx.Tx, max int) ([]time.Time, error) {
	rows, err := tx.Query(ctx, takePending, max)
	if err != nil {
		return nil, fmt.Errorf("take pending minutes: %w", err)
	}
	minutes, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return nil, fmt.Errorf("take pending minutes: %w", err)
	}
	slices.SortFunc(minutes, time.Time.Compare)
	return minutes, nil
}

func execRanges(ctx context.Context, tx pgx.Tx, sql string, ranges []timeRange) error {
	los := make([]time.Time, len(ranges))
	his := make([]time.Time, len(ranges))
	for i, r := range ranges {
		los[i], his[i] = r.lo, r.hi
	}
	_, err := tx.Exec(ctx, sql, los, his)
	return err
}

// mergeRanges turns the instants ts, sorted ascending (DELETE ... RETURNING is not), into the fewest ranges of
// whole units (epoch-aligned) covering them, so a backlog of contiguous minutes
// costs one index range per series instead of one statement per minute.
func mergeRanges(ts []time.Time, unit time.Duration) []timeRange {
	var out []timeRange
	for _, t := range ts {
		lo := floorTime(t, unit)
		hi := lo.Add(unit)
		if n := len(out); n > 0 && !lo.After(out[n-1].hi) {
			if hi.After(out[n-1].hi) {
				out[n-1].hi = hi
			}
			continue
		}
		out = append(out, timeRange{lo, hi})
	}
	return out
}

const selectWatermark = `SELECT min(bucket) FROM rollup_pending`

// RollupWatermark returns the oldest minute still waiting for RollupPending: every
// bucket that ends at or before it is complete in samples_1m and samples_1h. ok is
// false when nothing is pending (all rollups are complete), and always on
// TimescaleDB, whose continuous aggregates are real-time.
func (s *Store) RollupWatermark(ctx context.Context) (watermark time.Time, ok bool, err error) {
	if s.timescale {
		return time.Time{}, false, nil
	}
	var oldest *time.Time
	if err := s.pool.QueryRow(ctx, selectWatermark).Scan(&oldest); err != nil {
		return time.Time{}, false, fmt.Errorf("read rollup watermark: %w", err)
	}
	if oldest == nil {
		return time.Time{}, false, nil
	}
	return oldest.UTC(), true, nil
}

// floorTime rounds t down to a multiple of d since the Unix epoch (also before it).
func floorTime(t time.Time, d time.Duration) time.Time {
	du := d.Microseconds()
	return time.UnixMicro(floorDiv(t.UnixMicro(), du) * du).UTC()
}
