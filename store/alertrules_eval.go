package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// WindowReducer names how WindowQuery reduces a group's points.
type WindowReducer string

const (
	WindowAvg   WindowReducer = "avg"
	WindowMin   WindowReducer = "min"
	WindowMax   WindowReducer = "max"
	WindowSum   WindowReducer = "sum"
	WindowCount WindowReducer = "count"
	WindowLast  WindowReducer = "last"
	WindowRate  WindowReducer = "rate"
	WindowP95   WindowReducer = "p95"
)

// WindowQuery asks for one value per group of the series of a metric over
// [From, To): what an alert rule evaluates.
type WindowQuery struct {
	Metric  string
	Filters []TagFilter
	// GroupBy tags split the series into groups; a series without one of them
	// groups with the others that lack it.
	GroupBy []string
	// In, when set, also requires the tag In.Key to be one of In.Values: rules
	// that differ only in that value are read with one query.
	In       *TagIn
	Reducer  WindowReducer
	From, To time.Time
}

// TagIn selects series whose tag Key has one of Values.
type TagIn struct {
	Key    string
	Values []string
}

// WindowGroup is one group's answer.
type WindowGroup struct {
	// Tags are the group's values of the GroupBy tags (a tag a group lacks is absent).
	Tags map[string]string
	// Value reduces every raw point of the group's series in the window together
	// (avg, min, max, sum, count, p95 of them; last is the newest point), except
	// rate: per series the increase over the window (a decrease is a counter reset,
	// counting the new value) over the time between its first and last point,
	// summed over the group's series.
	Value float64
	// Points is how many raw points the window held; Newest is the newest one's time.
	Points int64
	Newest time.Time
}

var windowValueExpr = map[WindowReducer]string{
	WindowAvg:   `avg(x.value)`,
	WindowMin:   `min(x.value)`,
	WindowMax:   `max(x.value)`,
	WindowSum:   `sum(x.value)`,
	WindowCount: `count(*)::float8`,
	WindowLast:  `(array_agg(x.value ORDER BY x.time DESC, x.value DESC))[1]`,
	WindowP95:   `percentile_cont(0.95) WITHIN GROUP (ORDER BY x.value)`,
}

// The selected series with their group key: sel0 is seriesFilterSQL, whose
// parameters come first; %[2]d is the parameter number of the group-by keys.
const windowSeries = `
WITH sel0 AS (%[1]s),
sel AS (
    SELECT id, ARRAY(SELECT tags->>k FROM unnest($%[2]d::text[]) WITH ORDINALITY AS u(k, o) ORDER BY o) AS gkey
    FROM sel0)`

// %[3]d and %[4]d: parameter numbers of from and to.
const windowReduce = windowSeries + `
SELECT s.gkey, %[5]s, count(*), max(x.time)
FROM sel s JOIN samples x ON x.series_id = s.id
WHERE x.time >= $%[3]d AND x.time < $%[4]d
GROUP BY s.gkey`

const windowRate = windowSeries + `,
d AS (
    SELECT x.series_id, x.time, x.value,
           x.value - lag(x.value) OVER (PARTITION BY x.series_id ORDER BY x.time) AS inc
    FROM samples x
    WHERE x.series_id IN (SELECT id FROM sel) AND x.time >= $%[3]d AND x.time < $%[4]d),
per AS (
    SELECT series_id,
           sum(CASE WHEN inc < 0 THEN value ELSE inc END)
               / nullif(extract(epoch FROM max(time) - min(time))::float8, 0) AS rate,
           count(*) AS n, max(time) AS newest
    FROM d GROUP BY series_id)
SELECT s.gkey, sum(per.rate), sum(per.n)::bigint, max(per.newest)
FROM per JOIN sel s ON s.id = per.series_id
WHERE per.rate IS NOT NULL
GROUP BY s.gkey`

func windowSQL(q WindowQuery) (string, []any, error) {
	if q.Metric == "" {
		return "", nil, fmt.Errorf("%w: metric is required", ErrBadQuery)
	}
	if !q.From.Before(q.To) {
		return "", nil, fmt.Errorf("%w: window start %s is not before its end %s", ErrBadQuery, q.From, q.To)
	}
	for i, f := range q.Filters {
		if _, ok := map[FilterOp]bool{OpEQ: true, OpNEQ: true, OpRegex: true, OpNRegex: true}[f.Op]; !ok || f.Key == "" {
			return "", nil, fmt.Errorf("%w: filter %d (%s %s) is not valid", ErrBadQuery, i+1, f.Key, f.Op)
		}
	}
	sel, args, err := seriesFilterSQL(q.Metric, q.Filters)
	if err != nil {
		return "", nil, err
	}
	if q.In != nil {
		args = append(args, q.In.Key, q.In.Values)
		sel += fmt.Sprintf(` AND tags->>$%d = ANY($%d::text[])`, len(args)-1, len(args))
	}
	groupBy := q.GroupBy
	if groupBy == nil {
		groupBy = []string{}
	}
	args = append(args, groupBy, q.From, q.To)
	n := len(args)
	if q.Reducer == WindowRate {
		return fmt.Sprintf(windowRate, sel, n-2, n-1, n), args, nil
	}
	expr, ok := windowValueExpr[q.Reducer]
	if !ok {
		return "", nil, fmt.Errorf("%w: unknown reducer %q", ErrBadQuery, q.Reducer)
	}
	return fmt.Sprintf(windowReduce, sel, n-2, n-1, n, expr), args, nil
}

// windowChunk is how many window queries go to the server in one batch (one
// round trip).
const windowChunk = 250

// WindowResult is the answer to one WindowQuery, or why there is none.
type WindowResult struct {
	Groups []WindowGroup
	Err    error
}

// ReduceWindows answers many window queries: in batches of statements (one round
// trip each) over several connections at once, so that thousands of rules cost a
// few round trips. A query that fails (such as a regex PostgreSQL refuses) has its
// Err set and does not fail the others; the returned error is for the server.
func (s *Store) ReduceWindows(ctx context.Context, qs []WindowQuery) ([]WindowResult, error) {
	out := make([]WindowResult, len(qs))
	workers := max(1, min(runtime.GOMAXPROCS(0), int(s.pool.Config().MaxConns)/2))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	// Every worker gets a share, at most windowChunk queries per round trip.
	chunk := max(1, min(windowChunk, (len(qs)+workers-1)/workers))
	for lo := 0; lo < len(qs); lo += chunk {
		hi := min(lo+chunk, len(qs))
		g.Go(func() error { return s.reduceChunk(gctx, qs[lo:hi], out[lo:hi]) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) reduceChunk(ctx context.Context, qs []WindowQuery, out []WindowResult) error {
	batch := &pgx.Batch{}
	var queued []int
	for i, q := range qs {
		sql, args, err := windowSQL(q)
		if err != nil {
			out[i].Err = err
			continue
		}
		batch.Queue(sql, args...)
		queued = append(queued, i)
	}
	if len(queued) == 0 {
		return nil
	}
	failed, err := s.runBatch(ctx, batch, qs, queued, out)
	if err != nil || failed == nil {
		return err
	}
	// One statement failed and took the rest of the batch with it: run them one
	// by one, so the failure is pinned on its query alone.
	for _, i := range queued {
		out[i] = s.reduceOne(ctx, qs[i])
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// runBatch runs the queued statements in a read-only transaction whose statements
// are planned for their parameters: the cached statements would otherwise switch
// to a generic plan after five runs, which cannot prune the samples partitions nor
// use the series tags, and costs four times as much on a 10,000-rule round. failed
// is a statement's error, which aborted the batch; err is for the server. The
// transaction has ended when it returns, so a pool of one connection can go on.
func (s *Store) runBatch(ctx context.Context, batch *pgx.Batch, qs []WindowQuery, queued []int, out []WindowResult) (failed, err error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("reduce windows: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_custom_plan`); err != nil {
		return nil, fmt.Errorf("reduce windows: %w", err)
	}
	results := tx.SendBatch(ctx, batch)
	for _, i := range queued {
		groups, err := scanWindowGroups(results, qs[i].GroupBy)
		if err != nil {
			failed = err
			break
		}
		out[i].Groups = groups
	}
	if err := results.Close(); err != nil && failed == nil {
		failed = err
	}
	if failed != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return failed, nil
}

func (s *Store) reduceOne(ctx context.Context, q WindowQuery) WindowResult {
	sql, args, err := windowSQL(q)
	if err != nil {
		return WindowResult{Err: err}
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return WindowResult{Err: windowError(q, err)}
	}
	groups, err := collectWindowGroups(rows, q.GroupBy)
	if err != nil {
		return WindowResult{Err: windowError(q, err)}
	}
	return WindowResult{Groups: groups}
}

func windowError(q WindowQuery, err error) error {
	for _, f := range q.Filters {
		if f.Op == OpRegex || f.Op == OpNRegex {
			if re := regexError(f, err); errors.Is(re, ErrBadQuery) {
				return re
			}
		}
	}
	return fmt.Errorf("reduce window of %s: %w", q.Metric, err)
}

func scanWindowGroups(results pgx.BatchResults, groupBy []string) ([]WindowGroup, error) {
	rows, err := results.Query()
	if err != nil {
		return nil, err
	}
	return collectWindowGroups(rows, groupBy)
}

func collectWindowGroups(rows pgx.Rows, groupBy []string) ([]WindowGroup, error) {
	defer rows.Close()
	var out []WindowGroup
	for rows.Next() {
		var (
			key []*string
			g   WindowGroup
		)
		if err := rows.Scan(&key, &g.Value, &g.Points, &g.Newest); err != nil {
			return nil, err
		}
		g.Tags = make(map[string]string, len(groupBy))
		for i, k := range groupBy {
			if i < len(key) && key[i] != nil {
				g.Tags[k] = *key[i]
			}
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// GroupKey is a stable text form of a group's tags, for joining the groups of two
// windows (period-over-period rules).
func GroupKey(tags map[string]string, groupBy []string) string {
	var b strings.Builder
	for _, k := range groupBy {
		if v, ok := tags[k]; ok {
			b.WriteByte(1)
			b.WriteString(v)
		}
		b.WriteByte(0)
	}
	return b.String()
}
