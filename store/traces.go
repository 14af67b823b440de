package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Trace search limits.
const (
	DefaultTraceLimit = 20
	MaxTraceLimit     = 1000
	// MaxStatsPoints bounds the buckets of one operation's stats series.
	MaxStatsPoints = 10_000
	// MaxLiveSpans bounds the spans one live update reads from one commit.
	MaxLiveSpans = 1000
)

// parentSlack is how far outside a queried range a parent span may have started
// and still be joined to its children in the range: it keeps the service map's
// join to a few partitions.
const parentSlack = time.Hour

const spanSelect = `trace_id, span_id, parent_span_id, service, name, kind, start_time, duration_ns,
status_code, status_message, attributes, resource, events, links`

func scanSpan(row pgx.CollectableRow) (Span, error) {
	var sp Span
	var trace, id, parent []byte
	var kind, code int16
	var dur int64
	var attrs, res, events, links []byte
	if err := row.Scan(&trace, &id, &parent, &sp.Service, &sp.Name, &kind, &sp.Start, &dur, &code,
		&sp.StatusMessage, &attrs, &res, &events, &links); err != nil {
		return sp, err
	}
	copy(sp.TraceID[:], trace)
	copy(sp.SpanID[:], id)
	copy(sp.ParentSpanID[:], parent)
	sp.Kind, sp.StatusCode, sp.Duration = SpanKind(kind), StatusCode(code), time.Duration(dur)
	sp.Start = sp.Start.UTC()
	sp.Attributes, sp.Resource, sp.Events, sp.Links = attrs, res, events, links
	return sp, nil
}

// Services lists the services that sent spans still retained, sorted.
func (s *Store) Services(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT service FROM span_operations ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	return out, nil
}

// Operations lists the span names of service, sorted.
func (s *Store) Operations(ctx context.Context, service string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT name FROM span_operations WHERE service = $1 ORDER BY 1`, service)
	if err != nil {
		return nil, fmt.Errorf("list operations of %q: %w", service, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list operations of %q: %w", service, err)
	}
	return out, nil
}

// TraceSpan is a span of a trace in waterfall order, with its depth in the call
// tree (0 for roots and for spans whose parent was not received).
type TraceSpan struct {
	Span
	Depth int
}

// Trace returns the spans of trace id in waterfall order: every span followed by
// its children, children by start time. ErrNotFound when no span is stored.
func (s *Store) Trace(ctx context.Context, id TraceID) ([]TraceSpan, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+spanSelect+` FROM spans WHERE trace_id = $1`, id[:])
	if err != nil {
		return nil, fmt.Errorf("read trace %s: %w", id, err)
	}
	spans, err := pgx.CollectRows(rows, scanSpan)
	if err != nil {
		return nil, fmt.Errorf("read trace %s: %w", id, err)
	}
	if len(spans) == 0 {
		return nil, ErrNotFound
	}
	return Waterfall(spans), nil
}

// Waterfall orders spans depth first: roots (spans without a parent, or whose
// parent is missing) by start time, each followed by its subtree, children by
// start time. Ties break on span id so the order is stable.
func Waterfall(spans []Span) []TraceSpan {
	slices.SortFunc(spans, func(a, b Span) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.SpanID.String(), b.SpanID.String())
	})
	present := make(map[SpanID]bool, len(spans))
	for i := range spans {
		present[spans[i].SpanID] = true
	}
	children := map[SpanID][]int{}
	var roots []int
	for i := range spans {
		p := spans[i].ParentSpanID
		if p.IsZero() || !present[p] || p == spans[i].SpanID {
			roots = append(roots, i)
			continue
		}
		children[p] = append(children[p], i)
	}
	out := make([]TraceSpan, 0, len(spans))
	visited := make([]bool, len(spans))
	var walk func(i, depth int)
	walk = func(i, depth int) {
		if visited[i] {
			return
		}
		visited[i] = true
		out = append(out, TraceSpan{Span: spans[i], Depth: depth})
		for _, c := range children[spans[i].SpanID] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	// Spans in a parent cycle (bad data) are not reachable from a root; keep them.
	for i := range spans {
		walk(i, 0)
	}
	return out
}

// AttributeFilter matches spans with attribute (or resource attribute) Key whose
// value, as text, is Value.
type AttributeFilter struct {
	Key   string
	Value string
}

// TraceQuery selects traces having at least one span that matches all its
// conditions; empty fields match everything.
type TraceQuery struct {
	Service     string
	Operation   string
	Attributes  []AttributeFilter
	MinDuration time.Duration
	MaxDuration time.Duration // zero: no bound
	ErrorsOnly  bool
	From, To    time.Time
	Limit       int // zero: DefaultTraceLimit
}

// TraceSummary describes one trace found by SearchTraces.
type TraceSummary struct {
	TraceID       TraceID
	RootService   string
	RootOperation string
	Start         time.Time
	Duration      time.Duration
	SpanCount     int
	ErrorCount    int
	Services      []string
}

func (q *TraceQuery) check() error {
	switch {
	case q.From.IsZero() || q.To.IsZero():
		return fmt.Errorf("%w: a trace search needs from and to", ErrBadQuery)
	case !q.From.Before(q.To):
		return fmt.Errorf("%w: from (%s) must be before to (%s)", ErrBadQuery, q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	case q.Limit < 0 || q.Limit > MaxTraceLimit:
		return fmt.Errorf("%w: limit %d is out of range: it must be between 1 and %d", ErrBadQuery, q.Limit, MaxTraceLimit)
	case q.MinDuration < 0 || q.MaxDuration < 0:
		return fmt.Errorf("%w: durations must not be negative", ErrBadQuery)
	case q.MaxDuration > 0 && q.MaxDuration < q.MinDuration:
		return fmt.Errorf("%w: maxDuration (%s) is less than minDuration (%s)", ErrBadQuery, q.MaxDuration, q.MinDuration)
	}
	for _, a := range q.Attributes {
		if a.Key == "" {
			return fmt.Errorf("%w: an attribute filter needs a key", ErrBadQuery)
		}
	}
	return nil
}

// where builds the span conditions of q; every value is a parameter.
func (q *TraceQuery) where() (string, []any) {
	args := []any{q.From, q.To}
	conds := []string{"start_time >= $1", "start_time < $2"}
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	if q.Service != "" {
		add("service = $?", q.Service)
	}
	if q.Operation != "" {
		add("name = $?", q.Operation)
	}
	if q.MinDuration > 0 {
		add("duration_ns >= $?", q.MinDuration.Nanoseconds())
	}
	if q.MaxDuration > 0 {
		add("duration_ns <= $?", q.MaxDuration.Nanoseconds())
	}
	if q.ErrorsOnly {
		add("status_code = $?", int16(StatusError))
	}
	for _, a := range q.Attributes {
		args = append(args, a.Key, a.Value)
		k, v := "$"+strconv.Itoa(len(args)-1), "$"+strconv.Itoa(len(args))
		conds = append(conds, fmt.Sprintf("(attributes->>%[1]s = %[2]s OR resource->>%[1]s = %[2]s)", k, v))
	}
	return strings.Join(conds, " AND "), args
}

const searchTraces = `
WITH hits AS (
    SELECT trace_id, max(start_time) AS latest FROM spans WHERE %s
    GROUP BY trace_id ORDER BY latest DESC LIMIT %d
)
SELECT h.trace_id,
       (array_agg(s.service ORDER BY s.parent_span_id IS NOT NULL, s.start_time))[1],
       (array_agg(s.name ORDER BY s.parent_span_id IS NOT NULL, s.start_time))[1],
       min(s.start_time),
       max(s.start_time + (s.duration_ns / 1000) * INTERVAL '1 microsecond'),
       count(*),
       count(*) FILTER (WHERE s.status_code = 2),
       array_agg(DISTINCT s.service ORDER BY s.service)
FROM hits h JOIN spans s ON s.trace_id = h.trace_id
GROUP BY h.trace_id, h.latest
ORDER BY h.latest DESC, h.trace_id`

// SearchTraces returns the traces with a span matching q, the one with the most
// recent matching span first. A summary covers all the trace's spans.
func (s *Store) SearchTraces(ctx context.Context, q TraceQuery) ([]TraceSummary, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultTraceLimit
	}
	where, args := q.where()
	rows, err := s.pool.Query(ctx, fmt.Sprintf(searchTraces, where, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("search traces: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (TraceSummary, error) {
		var t TraceSummary
		var id []byte
		var end time.Time
		if err := row.Scan(&id, &t.RootService, &t.RootOperation, &t.Start, &end, &t.SpanCount, &t.ErrorCount, &t.Services); err != nil {
			return t, err
		}
		copy(t.TraceID[:], id)
		t.Start = t.Start.UTC()
		t.Duration = end.Sub(t.Start)
		return t, nil
	})
	if err != nil {
		return nil, fmt.Errorf("search traces: %w", err)
	}
	return out, nil
}

// ServiceNode is one service of the service map: its entry spans (server and
// consumer spans, and roots) in the range.
type ServiceNode struct {
	Service     string
	Calls       int64
	Errors      int64
	P95         time.Duration
	RequestRate float64 // calls per second over the range
	ErrorRate   float64 // errors / calls, 0 without calls
}

// ServiceEdge is a caller -> callee pair: spans of callee whose parent span
// belongs to caller, another service.
type ServiceEdge struct {
	Caller, Callee string
	Calls, Errors  int64
	P95            time.Duration // of the callee's spans
}

// ServiceMap is the services and their calls in a time range.
type ServiceMap struct {
	Nodes []ServiceNode
	Edges []ServiceEdge
}

const serviceNodes = `
SELECT service, count(*), count(*) FILTER (WHERE status_code = 2),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ns)
FROM spans
WHERE start_time >= $1 AND start_time < $2 AND (kind IN (2, 5) OR parent_span_id IS NULL)
GROUP BY service ORDER BY service`

const serviceEdges = `
SELECT p.service, c.service, count(*), count(*) FILTER (WHERE c.status_code = 2),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY c.duration_ns)
FROM spans c JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
WHERE c.start_time >= $1 AND c.start_time < $2 AND c.parent_span_id IS NOT NULL
  AND p.start_time >= $3 AND p.start_time < $4 AND p.service <> c.service
GROUP BY 1, 2 ORDER BY 1, 2`

func checkRange(from, to time.Time) error {
	if !from.Before(to) {
		return fmt.Errorf("%w: from (%s) must be before to (%s)", ErrBadQuery, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return nil
}

// ServiceMap derives the services and the calls between them from the spans
// that started in [from, to).
func (s *Store) ServiceMap(ctx context.Context, from, to time.Time) (ServiceMap, error) {
	var m ServiceMap
	if err := checkRange(from, to); err != nil {
		return m, err
	}
	secs := to.Sub(from).Seconds()
	rows, err := s.pool.Query(ctx, serviceNodes, from, to)
	if err != nil {
		return m, fmt.Errorf("service map nodes: %w", err)
	}
	m.Nodes, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ServiceNode, error) {
		var n ServiceNode
		var p95 float64
		err := row.Scan(&n.Service, &n.Calls, &n.Errors, &p95)
		n.P95 = time.Duration(p95)
		n.RequestRate = float64(n.Calls) / secs
		if n.Calls > 0 {
			n.ErrorRate = float64(n.Errors) / float64(n.Calls)
		}
		return n, err
	})
	if err != nil {
		return m, fmt.Errorf("service map nodes: %w", err)
	}
	rows, err = s.pool.Query(ctx, serviceEdges, from, to, from.Add(-parentSlack), to)
	if err != nil {
		return m, fmt.Errorf("service map edges: %w", err)
	}
	m.Edges, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ServiceEdge, error) {
		var e ServiceEdge
		var p95 float64
		err := row.Scan(&e.Caller, &e.Callee, &e.Calls, &e.Errors, &p95)
		e.P95 = time.Duration(p95)
		return e, err
	})
	if err != nil {
		return m, fmt.Errorf("service map edges: %w", err)
	}
	// A service seen only as a caller from non-entry spans is still a node.
	known := map[string]bool{}
	for _, n := range m.Nodes {
		known[n.Service] = true
	}
	for _, e := range m.Edges {
		for _, svc := range []string{e.Caller, e.Callee} {
			if !known[svc] {
				known[svc] = true
				m.Nodes = append(m.Nodes, ServiceNode{Service: svc})
			}
		}
	}
	slices.SortFunc(m.Nodes, func(a, b ServiceNode) int { return strings.Compare(a.Service, b.Service) })
	return m, nil
}

// REDPoint is one bucket of an operation's rate, errors and duration.
type REDPoint struct {
	T             time.Time
	Calls, Errors int64
	P50, P95, P99 time.Duration
}

// OperationStats is the RED series of one operation.
type OperationStats struct {
	Operation string
	Step      time.Duration
	Points    []REDPoint
}

const operationStats = `
SELECT name, date_bin($4 * INTERVAL '1 microsecond', start_time, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       count(*), count(*) FILTER (WHERE status_code = 2),
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ns)
FROM spans
WHERE service = $1 AND start_time >= $2 AND start_time < $3
GROUP BY 1, 2 ORDER BY 1, 2`

// defaultStatsStep is the step of OperationStats for a range: about 60 buckets,
// in whole seconds.
func defaultStatsStep(from, to time.Time) time.Duration {
	return max(time.Second, (to.Sub(from) / 60).Truncate(time.Second))
}

// OperationStats computes, for each operation of service, the calls, errors and
// duration percentiles of its spans in buckets of step (aligned to the Unix
// epoch) over [from, to). A zero step takes about 60 buckets.
func (s *Store) OperationStats(ctx context.Context, service string, from, to time.Time, step time.Duration) ([]OperationStats, error) {
	if err := checkRange(from, to); err != nil {
		return nil, err
	}
	if step == 0 {
		step = defaultStatsStep(from, to)
	}
	if step < time.Second {
		return nil, fmt.Errorf("%w: step %s is below 1s", ErrBadQuery, step)
	}
	if n := to.Sub(from) / step; n > MaxStatsPoints {
		return nil, fmt.Errorf("%w: %s at step %s is %d buckets, more than %d: choose a larger step", ErrBadQuery, to.Sub(from), step, n, MaxStatsPoints)
	}
	rows, err := s.pool.Query(ctx, operationStats, service, from, to, step.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("operation stats of %q: %w", service, err)
	}
	var out []OperationStats
	var name string
	var p REDPoint
	var pct []float64
	_, err = pgx.ForEachRow(rows, []any{&name, &p.T, &p.Calls, &p.Errors, &pct}, func() error {
		if len(out) == 0 || out[len(out)-1].Operation != name {
			out = append(out, OperationStats{Operation: name, Step: step})
		}
		p.T = p.T.UTC()
		p.P50, p.P95, p.P99 = time.Duration(pct[0]), time.Duration(pct[1]), time.Duration(pct[2])
		cur := &out[len(out)-1]
		cur.Points = append(cur.Points, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("operation stats of %q: %w", service, err)
	}
	return out, nil
}

// SpanFilter selects spans for live subscriptions; empty fields match all.
type SpanFilter struct {
	Service    string
	Operation  string
	ErrorsOnly bool
}

// BatchSpans reads the spans one announced commit stored that pass f, at most
// MaxLiveSpans, in start order.
func (s *Store) BatchSpans(ctx context.Context, b SpanBatch, f SpanFilter) ([]Span, error) {
	args := []any{b.Batch, b.From, b.To}
	conds := []string{"batch = $1", "start_time >= $2", "start_time <= $3"}
	if f.Service != "" {
		args = append(args, f.Service)
		conds = append(conds, "service = $"+strconv.Itoa(len(args)))
	}
	if f.Operation != "" {
		args = append(args, f.Operation)
		conds = append(conds, "name = $"+strconv.Itoa(len(args)))
	}
	if f.ErrorsOnly {
		conds = append(conds, "status_code = 2")
	}
	rows, err := s.pool.Query(ctx, fmt.Sprintf(`SELECT %s FROM spans WHERE %s ORDER BY start_time LIMIT %d`,
		spanSelect, strings.Join(conds, " AND "), MaxLiveSpans), args...)
	if err != nil {
		return nil, fmt.Errorf("read span batch %d: %w", b.Batch, err)
	}
	spans, err := pgx.CollectRows(rows, scanSpan)
	if err != nil {
		return nil, fmt.Errorf("read span batch %d: %w", b.Batch, err)
	}
	return spans, nil
}
