package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The catalogue's match arguments are case-insensitive PostgreSQL regular
// expressions, not anchored (a search box: "cpu" finds "sys.cpu.user"); empty
// matches everything. An invalid one is an error wrapping ErrBadQuery.

// MetricInfo describes one metric for the catalogue.
type MetricInfo struct {
	Name        string
	Description string
	Unit        string
	TagKeys     []string // sorted, over all the metric's series
	SeriesCount int64
	// LastDataTime is the newest series.last_seen of the metric's series; nil when
	// none has recorded one.
	LastDataTime *time.Time
}

// StoreStats is the overview page's picture of the store.
type StoreStats struct {
	SeriesCount  int64
	MetricCount  int64
	SamplesBytes int64 // samples table with its indexes, all partitions or chunks
	// OldestDay and NewestDay are the first days of the oldest and newest samples
	// partition (chunk on TimescaleDB); nil when there is none.
	OldestDay, NewestDay *time.Time
}

const selectMetrics = `
SELECT name FROM metrics
WHERE $1 = '' OR name ~* $1
ORDER BY name
LIMIT $2`

// Metrics lists metric names matching match, sorted, at most limit of them (all
// when limit <= 0).
func (s *Store) Metrics(ctx context.Context, match string, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, selectMetrics, match, limitOrAll(limit))
	if err != nil {
		return nil, catalogError("list metrics", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, catalogError("list metrics", err)
	}
	return names, nil
}

const selectTagKeys = `
SELECT DISTINCT k FROM series, jsonb_object_keys(tags) AS k
WHERE metric = $1
ORDER BY k`

// TagKeys lists the tag keys used by the series of metric, sorted.
func (s *Store) TagKeys(ctx context.Context, metric string) ([]string, error) {
	rows, err := s.pool.Query(ctx, selectTagKeys, metric)
	if err != nil {
		return nil, fmt.Errorf("list tag keys of %s: %w", metric, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list tag keys of %s: %w", metric, err)
	}
	return keys, nil
}

const selectTagValues = `
SELECT DISTINCT tags->>$2 AS v FROM series
WHERE metric = $1 AND tags ? $2 AND ($3 = '' OR tags->>$2 ~* $3)
ORDER BY v`

// TagValues lists the values of tag key among the series of metric that match
// match, sorted.
func (s *Store) TagValues(ctx context.Context, metric, key, match string) ([]string, error) {
	rows, err := s.pool.Query(ctx, selectTagValues, metric, key, match)
	if err != nil {
		return nil, catalogError("list tag values", err)
	}
	values, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, catalogError("list tag values", err)
	}
	return values, nil
}

// metricInfoColumns computes every MetricInfo field of the metrics row m in the same
// statement, so a catalogue page costs a fixed number of queries however long it is.
const metricInfoColumns = `
SELECT m.name, m.description, m.unit,
       ARRAY(SELECT DISTINCT k FROM series s, jsonb_object_keys(s.tags) AS k WHERE s.metric = m.name ORDER BY k),
       st.series_count, st.last_seen
FROM `

const metricInfoStats = `
CROSS JOIN LATERAL (
    SELECT count(*) AS series_count, max(s.last_seen) AS last_seen FROM series s WHERE s.metric = m.name) AS st`

const selectMetricInfo = metricInfoColumns + `metrics m` + metricInfoStats + `
WHERE m.name = $1`

// MetricInfo describes metric, or returns ErrNotFound.
func (s *Store) MetricInfo(ctx context.Context, metric string) (MetricInfo, error) {
	rows, err := s.pool.Query(ctx, selectMetricInfo, metric)
	if err != nil {
		return MetricInfo{}, fmt.Errorf("describe metric %s: %w", metric, err)
	}
	info, err := pgx.CollectExactlyOneRow(rows, scanMetricInfo)
	if isNoRows(err) {
		return MetricInfo{}, fmt.Errorf("metric %s: %w", metric, ErrNotFound)
	}
	if err != nil {
		return MetricInfo{}, fmt.Errorf("describe metric %s: %w", metric, err)
	}
	return info, nil
}

const countMetrics = `SELECT count(*) FROM metrics WHERE $1 = '' OR name ~* $1`

// The page is cut before the per-metric columns are computed, so they are computed
// for the page's metrics only.
const selectMetricCatalog = metricInfoColumns + `(
    SELECT * FROM metrics WHERE $1 = '' OR name ~* $1 ORDER BY name LIMIT $2 OFFSET $3) AS m` +
	metricInfoStats + `
ORDER BY m.name`

// MetricCatalog returns one page (limit <= 0: all) of the metrics matching match,
// sorted by name, and how many match in total.
func (s *Store) MetricCatalog(ctx context.Context, match string, limit, offset int) ([]MetricInfo, int, error) {
	if offset < 0 {
		return nil, 0, fmt.Errorf("%w: offset %d is negative", ErrBadQuery, offset)
	}
	var total int
	if err := s.pool.QueryRow(ctx, countMetrics, match).Scan(&total); err != nil {
		return nil, 0, catalogError("count metrics", err)
	}
	rows, err := s.pool.Query(ctx, selectMetricCatalog, match, limitOrAll(limit), offset)
	if err != nil {
		return nil, 0, catalogError("list metric catalogue", err)
	}
	infos, err := pgx.CollectRows(rows, scanMetricInfo)
	if err != nil {
		return nil, 0, catalogError("list metric catalogue", err)
	}
	return infos, total, nil
}

func scanMetricInfo(row pgx.CollectableRow) (MetricInfo, error) {
	var info MetricInfo
	err := row.Scan(&info.Name, &info.Description, &info.Unit, &info.TagKeys, &info.SeriesCount, &info.LastDataTime)
	return info, err
}

const updateMetricMeta = `UPDATE metrics SET description = $2, unit = $3 WHERE name = $1`

// UpdateMetricMeta sets the description and unit of metric and returns its new
// description, or ErrNotFound.
func (s *Store) UpdateMetricMeta(ctx context.Context, metric, description, unit string) (MetricInfo, error) {
	tag, err := s.pool.Exec(ctx, updateMetricMeta, metric, description, unit)
	if err != nil {
		return MetricInfo{}, fmt.Errorf("update metric %s: %w", metric, err)
	}
	if tag.RowsAffected() == 0 {
		return MetricInfo{}, fmt.Errorf("metric %s: %w", metric, ErrNotFound)
	}
	return s.MetricInfo(ctx, metric)
}

// The samples partitions (TimescaleDB chunks) are its inheritance children either way.
const selectCounts = `
SELECT (SELECT count(*) FROM series), (SELECT count(*) FROM metrics),
       (SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0)::bigint
        FROM pg_inherits WHERE inhparent = 'samples'::regclass)`

// Daily partitions are named by PartitionName, samples_pYYYYMMDD.
const selectPartitionDays = `
SELECT min(d), max(d) FROM (
    SELECT to_date(substring(c.relname FROM '^samples_p(\d{8})$'), 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC' AS d
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'samples'::regclass) AS p`

const selectChunkDays = `
SELECT date_bin('1 day', min(range_start), TIMESTAMPTZ 'epoch'), date_bin('1 day', max(range_start), TIMESTAMPTZ 'epoch')
FROM timescaledb_information.chunks
WHERE hypertable_name = 'samples'`

// Stats counts series and metrics and measures the samples table.
func (s *Store) Stats(ctx context.Context) (StoreStats, error) {
	var st StoreStats
	if err := s.pool.QueryRow(ctx, selectCounts).Scan(&st.SeriesCount, &st.MetricCount, &st.SamplesBytes); err != nil {
		return StoreStats{}, fmt.Errorf("store stats: %w", err)
	}
	days := selectPartitionDays
	if s.timescale {
		days = selectChunkDays
	}
	if err := s.pool.QueryRow(ctx, days).Scan(&st.OldestDay, &st.NewestDay); err != nil {
		return StoreStats{}, fmt.Errorf("store stats: partition days: %w", err)
	}
	utc(st.OldestDay)
	utc(st.NewestDay)
	return st, nil
}

func utc(t *time.Time) {
	if t != nil {
		*t = t.UTC()
	}
}

// limitOrAll maps "no limit" onto SQL's LIMIT NULL.
func limitOrAll(limit int) *int {
	if limit <= 0 {
		return nil
	}
	return &limit
}

// catalogError reports an invalid match regex as the user's mistake.
func catalogError(what string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == invalidRegex {
		return fmt.Errorf("%w: invalid match: %s", ErrBadQuery, pgErr.Message)
	}
	return fmt.Errorf("%s: %w", what, err)
}
