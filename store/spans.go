package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// TraceID is a W3C/OpenTelemetry trace id; the zero value is invalid.
type TraceID [16]byte

// SpanID is an OpenTelemetry span id; the zero value stands for "none".
type SpanID [8]byte

// String is the id in lowercase hex, as OpenTelemetry prints it.
func (id TraceID) String() string { return hex.EncodeToString(id[:]) }

// String is the id in lowercase hex, as OpenTelemetry prints it.
func (id SpanID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports the invalid all-zero trace id.
func (id TraceID) IsZero() bool { return id == TraceID{} }

// IsZero reports the all-zero span id (no span).
func (id SpanID) IsZero() bool { return id == SpanID{} }

// ParseTraceID reads 32 hex digits (either case); anything else, and the invalid
// all-zero id, is an error naming what is wrong.
func ParseTraceID(s string) (TraceID, error) {
	var id TraceID
	if len(s) != 32 {
		return id, fmt.Errorf("trace id %q: want 32 hex digits, got %d characters", s, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("trace id %q: not hexadecimal", s)
	}
	if id.IsZero() {
		return id, fmt.Errorf("trace id %q: the all-zero id is invalid", s)
	}
	return id, nil
}

// SpanKind is OpenTelemetry's span kind (0 unspecified, 1 internal, 2 server,
// 3 client, 4 producer, 5 consumer).
type SpanKind int16

const (
	KindUnspecified SpanKind = iota
	KindInternal
	KindServer
	KindClient
	KindProducer
	KindConsumer
)

// StatusCode is OpenTelemetry's span status (0 unset, 1 ok, 2 error).
type StatusCode int16

const (
	StatusUnset StatusCode = iota
	StatusOK
	StatusError
)

// Span is one stored span. Attributes and Resource are JSON objects, Events and
// Links JSON arrays, encoded by the ingest side (see ingest/otlp).
type Span struct {
	TraceID       TraceID
	SpanID        SpanID
	ParentSpanID  SpanID // zero for a root span
	Service       string
	Name          string
	Kind          SpanKind
	Start         time.Time
	Duration      time.Duration
	StatusCode    StatusCode
	StatusMessage string
	Attributes    json.RawMessage
	Resource      json.RawMessage
	Events        json.RawMessage
	Links         json.RawMessage
}

// End is when the span ended.
func (s *Span) End() time.Time { return s.Start.Add(s.Duration) }

// SpanColumns are the columns a span COPY writes, in the order of SpanRow.
var SpanColumns = []string{"trace_id", "span_id", "parent_span_id", "service", "name", "kind", "start_time",
	"duration_ns", "status_code", "status_message", "attributes", "resource", "events", "links", "batch"}

// SpanRow is the COPY row of sp in batch, in SpanColumns order.
func SpanRow(sp *Span, batch int64) []any {
	var parent []byte
	if !sp.ParentSpanID.IsZero() {
		parent = sp.ParentSpanID[:]
	}
	return []any{sp.TraceID[:], sp.SpanID[:], parent, sp.Service, sp.Name, int16(sp.Kind), sp.Start,
		sp.Duration.Nanoseconds(), int16(sp.StatusCode), sp.StatusMessage,
		jsonOr(sp.Attributes, "{}"), jsonOr(sp.Resource, "{}"), jsonOr(sp.Events, "[]"), jsonOr(sp.Links, "[]"), batch}
}

func jsonOr(b json.RawMessage, empty string) string {
	if len(b) == 0 {
		return empty
	}
	return string(b)
}

// SpansChannel is the LISTEN/NOTIFY channel on which every commit of spans is
// announced with a SpanBatch, so live span subscriptions on any replica see it.
const SpansChannel = "amas_spans"

// SpanBatch is the payload of a SpansChannel notification: which COPY (the batch
// column of its rows), the range
// of its spans' start times (to find their partitions) and its services (nil
// when too many to list).
type SpanBatch struct {
	Batch    int64     `json:"batch"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Services []string  `json:"services,omitempty"`
}

// SpanWriter stores spans. It remembers which daily partitions exist, so only
// the first batch of a day asks for DDL.
type SpanWriter struct {
	st         *Store
	partitions partitionCache
	recorded   operationCache
	batches    atomic.Int64 // the last batch number used
}

// NewSpanWriter returns a writer into st. Batch numbers start at a random
// point, so that the writers of different replicas do not share them (a
// shared number would only make a live subscriber read another commit too).
func NewSpanWriter(st *Store) *SpanWriter {
	w := &SpanWriter{st: st}
	var b [8]byte
	_, _ = rand.Read(b[:])
	w.batches.Store(int64(binary.BigEndian.Uint64(b[:]) >> 2))
	return w
}

// SpanPartitionName is the daily spans partition that holds day.
func SpanPartitionName(day time.Time) string { return "spans_p" + day.Format("20060102") }

// EnsureSpanPartitions creates the daily spans partitions covering days.
func (w *SpanWriter) EnsureSpanPartitions(ctx context.Context, days ...time.Time) error {
	for _, d := range days {
		d = Day(d)
		if w.partitions.has(d) {
			continue
		}
		if err := w.st.createSpanPartition(ctx, d); err != nil {
			return err
		}
		w.partitions.add(d)
	}
	return nil
}

func (s *Store) createSpanPartition(ctx context.Context, d time.Time) error {
	sql := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF spans FOR VALUES FROM ('%s') TO ('%s')`,
		pgx.Identifier{SpanPartitionName(d)}.Sanitize(), d.Format(time.RFC3339), d.AddDate(0, 0, 1).Format(time.RFC3339))
	if _, err := s.pool.Exec(ctx, sql); err != nil && !isDuplicate(err) {
		return fmt.Errorf("create partition %s: %w", SpanPartitionName(d), err)
	}
	return nil
}

const upsertOperations = `
INSERT INTO span_operations (service, name, last_seen)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
ON CONFLICT (service, name) DO UPDATE SET last_seen = EXCLUDED.last_seen
WHERE span_operations.last_seen < EXCLUDED.last_seen - INTERVAL '1 minute'`

// maxServicesNotified bounds the services a notification lists.
const maxServicesNotified = 100

// WriteSpans stores spans with one COPY in one transaction, records their
// (service, operation) pairs, and announces the commit on SpansChannel.
func (w *SpanWriter) WriteSpans(ctx context.Context, spans []Span) error {
	if len(spans) == 0 {
		return nil
	}
	days := map[time.Time]bool{}
	ops := map[spanOp]time.Time{}
	services := map[string]bool{}
	from, to := spans[0].Start, spans[0].Start
	for i := range spans {
		sp := &spans[i]
		days[Day(sp.Start)] = true
		k := spanOp{sp.Service, sp.Name}
		if sp.Start.After(ops[k]) {
			ops[k] = sp.Start
		}
		services[sp.Service] = true
		from, to = minTime(from, sp.Start), maxTime(to, sp.Start)
	}
	dayList := make([]time.Time, 0, len(days))
	for d := range days {
		dayList = append(dayList, d)
	}
	if err := w.EnsureSpanPartitions(ctx, dayList...); err != nil {
		return err
	}
	keys, undo := w.recorded.due(ops)
	// Sorted, so concurrent writers lock span_operations rows in one order.
	slices.SortFunc(keys, func(a, b spanOp) int {
		if c := strings.Compare(a.service, b.service); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	opServices, opNames, opSeen := make([]string, len(keys)), make([]string, len(keys)), make([]time.Time, len(keys))
	for i, k := range keys {
		opServices[i], opNames[i], opSeen[i] = k.service, k.name, ops[k]
	}
	note := SpanBatch{From: from, To: to}
	if len(services) <= maxServicesNotified {
		for s := range services {
			note.Services = append(note.Services, s)
		}
		slices.Sort(note.Services)
	}
	note.Batch = w.batches.Add(1)
	payload, _ := json.Marshal(note)
	err := pgx.BeginFunc(ctx, w.st.pool, func(tx pgx.Tx) error {
		if err := w.copySpans(ctx, tx, spans, note.Batch); err != nil {
			return fmt.Errorf("copy spans: %w", err)
		}
		// One round trip for both.
		b := &pgx.Batch{}
		if len(keys) > 0 {
			b.Queue(upsertOperations, opServices, opNames, opSeen)
		}
		b.Queue(`SELECT pg_notify($1, $2)`, SpansChannel, string(payload))
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("record operations and announce spans: %w", err)
		}
		return nil
	})
	if err != nil {
		undo()
	}
	if isMissingPartition(err) {
		w.partitions.reset()
	}
	return err
}

const insertSpans = `INSERT INTO spans (trace_id, span_id, parent_span_id, service, name, kind, start_time, duration_ns,
    status_code, status_message, attributes, resource, events, links, batch)
SELECT *, $15::bigint FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::text[], $5::text[], $6::int2[],
    $7::timestamptz[], $8::int8[], $9::int2[], $10::text[], $11::jsonb[], $12::jsonb[], $13::jsonb[], $14::jsonb[])`

// copySpans writes spans with COPY, or with INSERTs of arrays of at most
// insertBatch rows where the server cannot COPY FROM STDIN (PGlite).
func (w *SpanWriter) copySpans(ctx context.Context, tx pgx.Tx, spans []Span, batch int64) error {
	if !w.st.noCopy {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"spans"}, SpanColumns, pgx.CopyFromSlice(len(spans), func(i int) ([]any, error) {
			return SpanRow(&spans[i], batch), nil
		}))
		return err
	}
	for lo := 0; lo < len(spans); lo += insertBatch {
		part := spans[lo:min(lo+insertBatch, len(spans))]
		n := len(part)
		traces, ids, parents := make([][]byte, n), make([][]byte, n), make([][]byte, n)
		services, names, messages := make([]string, n), make([]string, n), make([]string, n)
		kinds, codes := make([]int16, n), make([]int16, n)
		starts, durs := make([]time.Time, n), make([]int64, n)
		attrs, res, events, links := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		for i := range part {
			sp := &part[i]
			traces[i], ids[i] = sp.TraceID[:], sp.SpanID[:]
			if !sp.ParentSpanID.IsZero() {
				parents[i] = sp.ParentSpanID[:]
			}
			services[i], names[i], messages[i] = sp.Service, sp.Name, sp.StatusMessage
			kinds[i], codes[i] = int16(sp.Kind), int16(sp.StatusCode)
			starts[i], durs[i] = sp.Start, sp.Duration.Nanoseconds()
			attrs[i], res[i] = jsonOr(sp.Attributes, "{}"), jsonOr(sp.Resource, "{}")
			events[i], links[i] = jsonOr(sp.Events, "[]"), jsonOr(sp.Links, "[]")
		}
		if _, err := tx.Exec(ctx, insertSpans, traces, ids, parents, services, names, kinds, starts, durs,
			codes, messages, attrs, res, events, links, batch); err != nil {
			return err
		}
	}
	return nil
}

type spanOp struct{ service, name string }

// operationCache remembers the last_seen each (service, operation) was last
// recorded with, so a batch upserts only the pairs that are new or a minute
// later than recorded. Without it every batch would lock the same
// span_operations rows and concurrent writers would wait on each other.
type operationCache struct {
	mu   sync.Mutex
	seen map[spanOp]time.Time
}

// due returns the pairs of ops to record, marking them recorded; undo restores
// the marks when the write fails.
func (c *operationCache) due(ops map[spanOp]time.Time) ([]spanOp, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[spanOp]time.Time{}
	}
	var keys []spanOp
	prev := map[spanOp]time.Time{}
	for k, t := range ops {
		last, ok := c.seen[k]
		if ok && !t.After(last.Add(time.Minute)) {
			continue
		}
		keys = append(keys, k)
		prev[k] = last
		c.seen[k] = t
	}
	return keys, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for k, t := range prev {
			if t.IsZero() {
				delete(c.seen, k)
			} else {
				c.seen[k] = t
			}
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// CreateSpanPartitionsAhead creates the spans partitions of from's day and the
// days days after it.
func (s *Store) CreateSpanPartitionsAhead(ctx context.Context, from time.Time, days int) error {
	for d := 0; d <= days; d++ {
		if err := s.createSpanPartition(ctx, Day(from).AddDate(0, 0, d)); err != nil {
			return err
		}
	}
	return nil
}

const selectSpanPartitions = `
SELECT c.relname
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'spans'::regclass
ORDER BY c.relname`

// ApplySpanRetention drops the daily spans partitions that end at or before
// now - keep, and forgets the operations not seen since then. It returns the
// partitions dropped.
func (s *Store) ApplySpanRetention(ctx context.Context, now time.Time, keep time.Duration) ([]string, error) {
	if keep < 24*time.Hour {
		return nil, fmt.Errorf("apply span retention: retention must be at least 24h, got %s", keep)
	}
	cutoff := now.Add(-keep)
	rows, err := s.pool.Query(ctx, selectSpanPartitions)
	if err != nil {
		return nil, fmt.Errorf("list spans partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list spans partitions: %w", err)
	}
	var dropped []string
	for _, name := range names {
		day, err := time.Parse("20060102", strings.TrimPrefix(name, "spans_p"))
		if err != nil || !strings.HasPrefix(name, "spans_p") || day.AddDate(0, 0, 1).After(cutoff) {
			continue
		}
		if _, err := s.pool.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{name}.Sanitize()); err != nil {
			return dropped, fmt.Errorf("drop partition %s: %w", name, err)
		}
		dropped = append(dropped, name)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM span_operations WHERE last_seen < $1`, cutoff); err != nil {
		return dropped, fmt.Errorf("expire span operations: %w", err)
	}
	return dropped, nil
}
