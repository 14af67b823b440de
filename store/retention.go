package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// RetentionResult is what one ApplyRetention pass removed.
type RetentionResult struct {
	DroppedPartitions []string
	Deleted1m         int64
	Deleted1h         int64
	DeletedPacked     int64 // rows of the packed tables (samples_1m_packed_sums, ...)
}

// retentionBatch bounds the rows one DELETE removes, so expiring a large backlog of
// rollup rows does not hold one long transaction and its locks.
const retentionBatch = 10_000

// CreatePartitionsAhead creates the daily samples partitions of the days from
// from's day to days days later, so ingest at midnight never waits on DDL. On
// TimescaleDB the hypertable makes its own chunks and this does nothing.
func (s *Store) CreatePartitionsAhead(ctx context.Context, from time.Time, days int) error {
	if days < 0 {
		return fmt.Errorf("create partitions ahead: days must not be negative, got %d", days)
	}
	list := make([]time.Time, 0, days+1)
	for d := 0; d <= days; d++ {
		list = append(list, Day(from).AddDate(0, 0, d))
	}
	return s.EnsurePartitions(ctx, list...)
}

const selectPartitions = `
SELECT c.relname
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'samples'::regclass
ORDER BY c.relname`

// deleteExpired removes one batch of rollup rows older than $1. The oldest rows are
// the first ones inserted, so the scan behind the LIMIT finds them early.
const deleteExpired = `
DELETE FROM %[1]s
WHERE (series_id, bucket) IN (SELECT series_id, bucket FROM %[1]s WHERE bucket < $1 LIMIT $2)`

// ApplyRetention enforces the retention periods on plain PostgreSQL as of now: it
// drops the daily raw partitions that end at or before now - raw (so never the
// partition of now's day, which ends after now), deletes the samples_1m and
// samples_1h rows whose bucket starts before now - r1m and now - r1h, and the
// packed rows of spans that end by then. On TimescaleDB it deletes only the
// packed rows: the retention policies, set by SetRetentionPolicies, drop the rest
// in the background.
func (s *Store) ApplyRetention(ctx context.Context, now time.Time, raw, r1m, r1h time.Duration) (RetentionResult, error) {
	var res RetentionResult
	for name, d := range map[string]time.Duration{"raw": raw, "1m": r1m, "1h": r1h} {
		if d <= 0 {
			return res, fmt.Errorf("apply retention: %s retention must be positive, got %s", name, d)
		}
	}
	if s.timescale {
		return res, s.deletePackedBefore(ctx, now, r1m, r1h, &res)
	}
	dropped, err := s.dropPartitionsBefore(ctx, now.Add(-raw))
	res.DroppedPartitions = dropped
	if err != nil {
		return res, err
	}
	if res.Deleted1m, err = s.deleteRollupsBefore(ctx, "samples_1m", now.Add(-r1m)); err != nil {
		return res, err
	}
	if res.Deleted1h, err = s.deleteRollupsBefore(ctx, "samples_1h", now.Add(-r1h)); err != nil {
		return res, err
	}
	return res, s.deletePackedBefore(ctx, now, r1m, r1h, &res)
}

// deletePackedBefore deletes a packed row once its whole span is past the
// cutoff: the rows of one span are kept up to a span (an hour, a day) longer
// than the narrow ones.
func (s *Store) deletePackedBefore(ctx context.Context, now time.Time, r1m, r1h time.Duration, res *RetentionResult) error {
	for _, tier := range []struct {
		t packedTier
		d time.Duration
	}{{packed1m, r1m}, {packed1h, r1h}} {
		for _, table := range []string{tier.t.sums, tier.t.values} {
			n, err := s.deleteRollupsBefore(ctx, table, floorTime(now.Add(-tier.d), tier.t.span))
			res.DeletedPacked += n
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// dropPartitionsBefore drops the daily partitions that end at or before cutoff;
// partitions whose name is not a PartitionName are left alone.
// SamplesPartitions lists the partitions (TimescaleDB: chunks) of samples by name.
func (s *Store) SamplesPartitions(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, selectPartitions)
	if err != nil {
		return nil, fmt.Errorf("list samples partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list samples partitions: %w", err)
	}
	return names, nil
}

func (s *Store) dropPartitionsBefore(ctx context.Context, cutoff time.Time) ([]string, error) {
	names, err := s.SamplesPartitions(ctx)
	if err != nil {
		return nil, err
	}
	var dropped []string
	for _, name := range names {
		day, ok := partitionDay(name)
		if !ok || day.AddDate(0, 0, 1).After(cutoff) {
			continue
		}
		if _, err := s.pool.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{name}.Sanitize()); err != nil {
			return dropped, fmt.Errorf("drop partition %s: %w", name, err)
		}
		dropped = append(dropped, name)
	}
	if len(dropped) > 0 {
		// EnsurePartitions must not trust its cache for a dropped day again.
		s.partitions.reset()
	}
	return dropped, nil
}

// partitionDay parses the day out of a PartitionName.
func partitionDay(name string) (time.Time, bool) {
	const prefix = "samples_p"
	if len(name) != len(prefix)+8 || name[:len(prefix)] != prefix {
		return time.Time{}, false
	}
	day, err := time.Parse("20060102", name[len(prefix):])
	if err != nil {
		return time.Time{}, false
	}
	return day, true
}

func (s *Store) deleteRollupsBefore(ctx context.Context, table string, cutoff time.Time) (int64, error) {
	sql := fmt.Sprintf(deleteExpired, pgx.Identifier{table}.Sanitize())
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, sql, cutoff, retentionBatch)
		if err != nil {
			return total, fmt.Errorf("expire %s rows before %s: %w", table, cutoff.Format(time.RFC3339), err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < retentionBatch {
			return total, nil
		}
	}
}

// retentionPolicyLock serialises SetRetentionPolicies across replicas (a
// transaction-level advisory lock; "amasretn").
const retentionPolicyLock int64 = 0x616d61737265746e

const (
	removeRetentionPolicy = `SELECT remove_retention_policy($1::regclass, if_exists => true)`
	addRetentionPolicy    = `SELECT add_retention_policy($1::regclass, drop_after => $2 * INTERVAL '1 microsecond')`
)

// SetRetentionPolicies makes TimescaleDB's retention policies on samples,
// samples_1m and samples_1h drop data older than raw, r1m and r1h, replacing the
// policies the migration installed, so the configured periods apply on TimescaleDB
// as ApplyRetention applies them on plain PostgreSQL.
func (s *Store) SetRetentionPolicies(ctx context.Context, raw, r1m, r1h time.Duration) error {
	if !s.timescale {
		return errors.New("set retention policies: the database has no TimescaleDB")
	}
	policies := []struct {
		table string
		keep  time.Duration
	}{{"samples", raw}, {"samples_1m", r1m}, {"samples_1h", r1h}}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, retentionPolicyLock); err != nil {
			return fmt.Errorf("set retention policies: %w", err)
		}
		for _, p := range policies {
			if p.keep <= 0 {
				return fmt.Errorf("set retention policy of %s: retention must be positive, got %s", p.table, p.keep)
			}
			if _, err := tx.Exec(ctx, removeRetentionPolicy, p.table); err != nil {
				return fmt.Errorf("remove retention policy of %s: %w", p.table, err)
			}
			if _, err := tx.Exec(ctx, addRetentionPolicy, p.table, p.keep.Microseconds()); err != nil {
				return fmt.Errorf("add retention policy of %s: %w", p.table, err)
			}
		}
		return nil
	})
}
