package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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
	// Unix minutes, not time.Time keys: a batch holds few distinct minutes, often
	// in runs, and hashing a time per sample showed in profiles.
	minutes := map[int64]struct{}{}
	last := int64(math.MinInt64)
	for _, smp := range samples {
		if m := floorDiv(smp.Time.Unix(), 60); m != last {
			minutes[m], last = struct{}{}, m
		}
	}
	days := map[time.Time]bool{}
	minuteList := make([]time.Time, 0, len(minutes))
	for m := range minutes {
		t := time.Unix(m*60, 0).UTC()
		days[Day(t)] = true
		minuteList = append(minuteList, t)
	}
	dayList := make([]time.Time, 0, len(days))
	for d := range days {
		dayList = append(dayList, d)
	}
	if err := s.EnsurePartitions(ctx, dayList...); err != nil {
		return err
	}
	if s.timescale {
		minuteList = nil // continuous aggregates need no pending minutes
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
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	*buf = appendCopyBinary((*buf)[:0], samples)
	_, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(*buf), copySamplesSQL)
	return err
}

const copySamplesSQL = `COPY samples (time, series_id, value) FROM STDIN (FORMAT binary)`

// copyBuffers recycles the encoded COPY data of a batch (~40 bytes a sample).
var copyBuffers = sync.Pool{New: func() any { return new([]byte) }}

// pgEpochMicros is PostgreSQL's timestamp epoch, 2000-01-01 UTC, in Unix microseconds.
const pgEpochMicros = 946_684_800_000_000

// appendCopyBinary encodes samples in COPY's binary format: a header, per row
// the field count and each field's length and big-endian value (timestamptz
// as microseconds since 2000, as pgx encodes it), and the trailer. Written here
// rather than by pgx's CopyFrom, whose per-value type dispatch cost the ingest
// path ~10 % of its CPU for three fixed columns.
func appendCopyBinary(b []byte, samples []Sample) []byte {
	b = append(b, "PGCOPY\n\xff\r\n\x00"...)
	b = binary.BigEndian.AppendUint32(b, 0) // flags
	b = binary.BigEndian.AppendUint32(b, 0) // header extension length
	for _, smp := range samples {
		b = binary.BigEndian.AppendUint16(b, 3)
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, uint64(smp.Time.UnixMicro()-pgEpochMicros))
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, uint64(smp.SeriesID))
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(smp.Value))
	}
	return binary.BigEndian.AppendUint16(b, 0xffff) // trailer: -1
}

// floorDiv is a / b rounded down, also for negative a.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}
