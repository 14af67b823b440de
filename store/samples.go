package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Sample is one stored value of one series.
type Sample struct {
	SeriesID int64
	Time     time.Time
	Value    float64
}

var sampleColumns = []string{"time", "series_id", "value"}

// partitionCache remembers which daily partitions exist, so the write path does
// not ask the catalogue on every batch.
type partitionCache struct {
	mu   sync.Mutex
	days map[time.Time]bool
}

func (c *partitionCache) has(day time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.days[day]
}

func (c *partitionCache) add(day time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.days == nil {
		c.days = map[time.Time]bool{}
	}
	c.days[day] = true
}

func (c *partitionCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.days = nil
}

// Day truncates t to its UTC day, the partition granularity.
func Day(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// PartitionName is the name of the daily samples partition that holds day.
func PartitionName(day time.Time) string {
	return "samples_p" + day.Format("20060102")
}

// EnsurePartitions creates the daily samples partitions covering days, if missing.
// On TimescaleDB the hypertable makes its own chunks and this does nothing.
func (s *Store) EnsurePartitions(ctx context.Context, days ...time.Time) error {
	if s.timescale {
		return nil
	}
	for _, d := range days {
		d = Day(d)
		if s.partitions.has(d) {
			continue
		}
		sql := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF samples FOR VALUES FROM ('%s') TO ('%s')`,
			pgx.Identifier{PartitionName(d)}.Sanitize(), d.Format(time.RFC3339), d.AddDate(0, 0, 1).Format(time.RFC3339))
		if _, err := s.pool.Exec(ctx, sql); err != nil && !isDuplicate(err) {
			return fmt.Errorf("create partition %s: %w", PartitionName(d), err)
		}
		s.partitions.add(d)
	}
	return nil
}

// isDuplicate reports a lost race with another writer creating the same table.
func isDuplicate(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "42P07" || pgErr.Code == "23505")
}

// isMissingPartition reports a COPY row with no partition to go to (one was dropped
// by retention since it was cached).
func isMissingPartition(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514"
}

const insertPending = `INSERT INTO rollup_pending (bucket) SELECT unnest($1::timestamptz[]) ON CONFLICT DO NOTHING`

// SamplesChannel is the LISTEN/NOTIFY channel on which every commit of samples is
// announced, so live subscriptions on any replica learn of new points.
const SamplesChannel = "amas_samples"

// AnyMetric is the notification payload that stands for "too many metrics to list".
const AnyMetric = "*"

// maxNotifyPayload keeps the payload under PostgreSQL's 8000-byte NOTIFY limit.
const maxNotifyPayload = 7900

// NotifyPayload joins metric names for the SamplesChannel, or returns AnyMetric
// when they would not fit.
func NotifyPayload(metrics []string) string {
	n := 0
	for _, m := range metrics {
		n += len(m) + 1
	}
	if n > maxNotifyPayload {
		return AnyMetric
	}
	return strings.Join(metrics, "\n")
}

// WriteSamples stores samples with COPY in one transaction. On plain PostgreSQL the
// same transaction marks the touched minutes for the rollup role, so a committed
// sample is always either rolled up or pending. The metrics, when given, are
// announced on SamplesChannel when the transaction commits.
func (s *Store) WriteSamples(ctx context.Context, samples []Sample, metrics ...string) error {
	if len(samples) == 0 {
		return nil
	}
	days := map[time.Time]bool{}
	minutes := map[time.Time]bool{}
	for _, smp := range samples {
		days[Day(smp.Time)] = true
		if !s.timescale {
			minutes[smp.Time.Truncate(time.Minute)] = true
		}
	}
	dayList := make([]time.Time, 0, len(days))
	for d := range days {
		dayList = append(dayList, d)
	}
	if err := s.EnsurePartitions(ctx, dayList...); err != nil {
		return err
	}
	minuteList := make([]time.Time, 0, len(minutes))
	for m := range minutes {
		minuteList = append(minuteList, m)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.copySamples(ctx, tx, samples); err != nil {
			return fmt.Errorf("copy samples: %w", err)
		}
		if len(minuteList) > 0 {
			if _, err := tx.Exec(ctx, insertPending, minuteList); err != nil {
				return fmt.Errorf("mark rollup buckets: %w", err)
			}
		}
		if len(metrics) > 0 {
			if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, SamplesChannel, NotifyPayload(metrics)); err != nil {
				return fmt.Errorf("announce samples: %w", err)
			}
		}
		return nil
	})
	if isMissingPartition(err) {
		s.partitions.reset()
	}
	return err
}

const insertSamples = `INSERT INTO samples (time, series_id, value) SELECT * FROM unnest($1::timestamptz[], $2::bigint[], $3::float8[])`

// insertBatch keeps each INSERT's message small: pglite-socket hands PGlite every
// TCP read as it comes, so a message split across reads breaks the protocol.
const insertBatch = 500

// copySamples writes samples with COPY, or with one INSERT of arrays where the
// server cannot COPY FROM STDIN.
func (s *Store) copySamples(ctx context.Context, tx pgx.Tx, samples []Sample) error {
	if s.noCopy {
		for len(samples) > insertBatch {
			if err := s.copySamples(ctx, tx, samples[:insertBatch]); err != nil {
				return err
			}
			samples = samples[insertBatch:]
		}
		times := make([]time.Time, len(samples))
		ids := make([]int64, len(samples))
		values := make([]float64, len(samples))
		for i, smp := range samples {
			times[i], ids[i], values[i] = smp.Time, smp.SeriesID, smp.Value
		}
		_, err := tx.Exec(ctx, insertSamples, times, ids, values)
		return err
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"samples"}, sampleColumns, pgx.CopyFromSlice(len(samples), func(i int) ([]any, error) {
		return []any{samples[i].Time, samples[i].SeriesID, samples[i].Value}, nil
	}))
	return err
}
