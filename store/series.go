package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// SeriesRef names a series by metric and tags.
type SeriesRef struct {
	Metric string
	Tags   map[string]string
}

// Key is the canonical identity of a series, the metric and its sorted tags; it
// keys the in-memory series caches.
func (r SeriesRef) Key() string {
	var buf [16]string // tag keys without allocating, for the usual few tags
	keys := buf[:0]
	size := len(r.Metric)
	for k, v := range r.Tags {
		keys = append(keys, k)
		size += len(k) + len(v) + 2
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(size)
	b.WriteString(r.Metric)
	for _, k := range keys {
		b.WriteByte(0)
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(r.Tags[k])
	}
	return b.String()
}

const insertMetrics = `INSERT INTO metrics (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`

const insertSeries = `
INSERT INTO series (metric, tags)
SELECT m, t FROM unnest($1::text[], $2::jsonb[]) AS u(m, t)
ON CONFLICT (metric, tags) DO NOTHING`

const selectSeries = `
SELECT s.id, s.metric, s.tags
FROM series s JOIN unnest($1::text[], $2::jsonb[]) AS u(m, t) ON s.metric = u.m AND s.tags = u.t`

// ResolveSeries returns the id of every ref, creating the series (and their metrics)
// that do not exist yet. ids[i] belongs to refs[i].
func (s *Store) ResolveSeries(ctx context.Context, refs []SeriesRef) ([]int64, error) {
	// Sorted, de-duplicated input: concurrent writers then lock unique-index entries in
	// the same order and cannot deadlock each other.
	byKey := make(map[string]SeriesRef, len(refs))
	for _, r := range refs {
		byKey[r.Key()] = r
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	metrics := make([]string, 0, len(keys))
	seenMetric := map[string]bool{}
	names := make([]string, len(keys))
	tags := make([]string, len(keys))
	for i, k := range keys {
		r := byKey[k]
		names[i] = r.Metric
		b, err := json.Marshal(r.Tags)
		if err != nil {
			return nil, fmt.Errorf("encode tags of %s: %w", r.Metric, err)
		}
		tags[i] = string(b)
		if !seenMetric[r.Metric] {
			seenMetric[r.Metric] = true
			metrics = append(metrics, r.Metric)
		}
	}
	sort.Strings(metrics)
	if _, err := s.pool.Exec(ctx, insertMetrics, metrics); err != nil {
		return nil, fmt.Errorf("create metrics: %w", err)
	}
	if _, err := s.pool.Exec(ctx, insertSeries, names, tags); err != nil {
		return nil, fmt.Errorf("create series: %w", err)
	}
	rows, err := s.pool.Query(ctx, selectSeries, names, tags)
	if err != nil {
		return nil, fmt.Errorf("look up series: %w", err)
	}
	defer rows.Close()
	idByKey := make(map[string]int64, len(keys))
	for rows.Next() {
		var ref SeriesRef
		var id int64
		if err := rows.Scan(&id, &ref.Metric, &ref.Tags); err != nil {
			return nil, fmt.Errorf("look up series: %w", err)
		}
		idByKey[ref.Key()] = id
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up series: %w", err)
	}
	ids := make([]int64, len(refs))
	for i, r := range refs {
		id, ok := idByKey[r.Key()]
		if !ok {
			return nil, fmt.Errorf("series %s was not created", r.Key())
		}
		ids[i] = id
	}
	return ids, nil
}

const updateLastSeen = `
UPDATE series SET last_seen = u.t
FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, t)
WHERE series.id = u.id AND (series.last_seen IS NULL OR series.last_seen < u.t)`

// TouchSeries records the newest sample time of each series, for the catalogue.
func (s *Store) TouchSeries(ctx context.Context, ids []int64, times []time.Time) error {
	if _, err := s.pool.Exec(ctx, updateLastSeen, ids, times); err != nil {
		return fmt.Errorf("update series last_seen: %w", err)
	}
	return nil
}
