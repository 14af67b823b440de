package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

func TestParseTraceID(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"4bf92f3577b34da6a3ce929d0e0e4736", "4bf92f3577b34da6a3ce929d0e0e4736", ""},
		{"4BF92F3577B34DA6A3CE929D0E0E4736", "4bf92f3577b34da6a3ce929d0e0e4736", ""},
		{"4bf92f35", "", "want 32 hex digits, got 8"},
		{"zzf92f3577b34da6a3ce929d0e0e4736", "", "not hexadecimal"},
		{strings.Repeat("0", 32), "", "all-zero"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			id, err := store.ParseTraceID(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || id.String() != tc.want {
				t.Errorf("%s, %v; want %s", id, err, tc.want)
			}
		})
	}
}

func sid(b byte) store.SpanID { return store.SpanID{b} }

func TestWaterfall(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	sp := func(id, parent byte, at int) store.Span {
		s := store.Span{SpanID: sid(id), Start: t0.Add(time.Duration(at) * time.Millisecond)}
		if parent != 0 {
			s.ParentSpanID = sid(parent)
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		spans []store.Span
		want  string // id:depth in order
	}{
		{"children follow their parent, by start", []store.Span{sp(3, 1, 5), sp(2, 1, 1), sp(1, 0, 0), sp(4, 2, 2)}, "1:0 2:1 4:2 3:1"},
		{"a span whose parent is missing is a root", []store.Span{sp(2, 9, 3), sp(1, 0, 0), sp(3, 1, 1)}, "1:0 3:1 2:0"},
		{"a parent cycle is kept", []store.Span{sp(1, 2, 0), sp(2, 1, 1)}, "1:0 2:1"},
		{"a span that is its own parent", []store.Span{sp(1, 1, 0)}, "1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, s := range store.Waterfall(tc.spans) {
				got = append(got, fmt.Sprintf("%d:%d", s.SpanID[0], s.Depth))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("order %q, want %q", strings.Join(got, " "), tc.want)
			}
		})
	}
}

// spanFixture is three traces: frontend -> backend calls, one failing, and a
// lone batch job; all on 2026-11-01 from 12:00.
func spanFixture(t0 time.Time) []store.Span {
	var out []store.Span
	for i := range 3 {
		tid := store.TraceID{byte(i + 1)}
		start := t0.Add(time.Duration(i) * time.Minute)
		root := store.Span{TraceID: tid, SpanID: sid(byte(10*i + 1)), Service: "frontend", Name: "GET /", Kind: store.KindServer,
			Start: start, Duration: time.Duration(100+i) * time.Millisecond, Attributes: []byte(fmt.Sprintf(`{"order": %d}`, i)),
			Resource: []byte(`{"service.name": "frontend", "region": "eu"}`)}
		call := store.Span{TraceID: tid, SpanID: sid(byte(10*i + 2)), ParentSpanID: root.SpanID, Service: "frontend", Name: "call",
			Kind: store.KindClient, Start: start.Add(time.Millisecond), Duration: 60 * time.Millisecond}
		back := store.Span{TraceID: tid, SpanID: sid(byte(10*i + 3)), ParentSpanID: call.SpanID, Service: "backend", Name: "charge",
			Kind: store.KindServer, Start: start.Add(2 * time.Millisecond), Duration: time.Duration(50+10*i) * time.Millisecond}
		if i == 1 {
			back.StatusCode, back.StatusMessage = store.StatusError, "declined"
		}
		out = append(out, root, call, back)
	}
	out = append(out, store.Span{TraceID: store.TraceID{9}, SpanID: sid(90), Service: "batch", Name: "nightly",
		Start: t0.Add(30 * time.Minute), Duration: time.Second})
	return out
}

func TestSpansStoreAndQuery(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	w := store.NewSpanWriter(st)
	if err := w.WriteSpans(ctx, spanFixture(t0)); err != nil {
		t.Fatal(err)
	}

	t.Run("trace", func(t *testing.T) {
		spans, err := st.Trace(ctx, store.TraceID{2})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range spans {
			got = append(got, fmt.Sprintf("%d %s/%s", s.Depth, s.Service, s.Name))
		}
		if want := []string{"0 frontend/GET /", "1 frontend/call", "2 backend/charge"}; !slices.Equal(got, want) {
			t.Errorf("trace %q, want %q", got, want)
		}
		if s := spans[2]; s.StatusCode != store.StatusError || s.StatusMessage != "declined" || s.Duration != 60*time.Millisecond ||
			!s.Start.Equal(t0.Add(time.Minute+2*time.Millisecond)) || s.Kind != store.KindServer || string(s.Events) != "[]" {
			t.Errorf("charge span %+v", s)
		}
		if _, err := st.Trace(ctx, store.TraceID{0xee}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown trace: %v, want ErrNotFound", err)
		}
	})

	t.Run("services and operations", func(t *testing.T) {
		svcs, err := st.Services(ctx)
		if err != nil || !slices.Equal(svcs, []string{"backend", "batch", "frontend"}) {
			t.Errorf("services %q, %v", svcs, err)
		}
		ops, err := st.Operations(ctx, "frontend")
		if err != nil || !slices.Equal(ops, []string{"GET /", "call"}) {
			t.Errorf("operations %q, %v", ops, err)
		}
	})

	day := store.TraceQuery{From: t0, To: t0.Add(time.Hour)}
	with := func(f func(q *store.TraceQuery)) store.TraceQuery {
		q := day
		f(&q)
		return q
	}
	for _, tc := range []struct {
		name string
		q    store.TraceQuery
		want []byte // first byte of each trace id, newest first
		err  string
	}{
		{"all, newest first", day, []byte{9, 3, 2, 1}, ""},
		{"by service", with(func(q *store.TraceQuery) { q.Service = "backend" }), []byte{3, 2, 1}, ""},
		{"by operation and error", with(func(q *store.TraceQuery) { q.Operation = "charge"; q.ErrorsOnly = true }), []byte{2}, ""},
		{"by duration", with(func(q *store.TraceQuery) {
			q.Service = "backend"
			q.MinDuration = 55 * time.Millisecond
			q.MaxDuration = 65 * time.Millisecond
		}), []byte{2}, ""},
		{"by span attribute", with(func(q *store.TraceQuery) { q.Attributes = []store.AttributeFilter{{Key: "order", Value: "2"}} }), []byte{3}, ""},
		{"by resource attribute", with(func(q *store.TraceQuery) { q.Attributes = []store.AttributeFilter{{Key: "region", Value: "eu"}} }), []byte{3, 2, 1}, ""},
		{"limit", with(func(q *store.TraceQuery) { q.Limit = 1 }), []byte{9}, ""},
		{"time range", store.TraceQuery{From: t0.Add(30 * time.Second), To: t0.Add(90 * time.Second)}, []byte{2}, ""},
		{"from after to", store.TraceQuery{From: t0, To: t0.Add(-time.Second)}, nil, "must be before"},
		{"limit too large", with(func(q *store.TraceQuery) { q.Limit = 5000 }), nil, "out of range"},
		{"max below min", with(func(q *store.TraceQuery) { q.MinDuration, q.MaxDuration = time.Second, time.Millisecond }), nil, "less than minDuration"},
	} {
		t.Run("search "+tc.name, func(t *testing.T) {
			found, err := st.SearchTraces(ctx, tc.q)
			if tc.err != "" {
				if !errors.Is(err, store.ErrBadQuery) || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err %v, want ErrBadQuery with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			for _, s := range found {
				got = append(got, s.TraceID[0])
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("traces %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("summary covers the whole trace", func(t *testing.T) {
		found, err := st.SearchTraces(ctx, with(func(q *store.TraceQuery) { q.Operation = "charge"; q.ErrorsOnly = true }))
		if err != nil || len(found) != 1 {
			t.Fatalf("%+v, %v", found, err)
		}
		s := found[0]
		if s.RootService != "frontend" || s.RootOperation != "GET /" || s.SpanCount != 3 || s.ErrorCount != 1 ||
			s.Duration != 101*time.Millisecond || !s.Start.Equal(t0.Add(time.Minute)) || !slices.Equal(s.Services, []string{"backend", "frontend"}) {
			t.Errorf("summary %+v", s)
		}
	})

	t.Run("service map", func(t *testing.T) {
		m, err := st.ServiceMap(ctx, t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Edges) != 1 || m.Edges[0] != (store.ServiceEdge{Caller: "frontend", Callee: "backend", Calls: 3, Errors: 1, P95: 69 * time.Millisecond}) {
			t.Errorf("edges %+v", m.Edges)
		}
		var nodes []string
		for _, n := range m.Nodes {
			nodes = append(nodes, fmt.Sprintf("%s %d/%d %.6f", n.Service, n.Errors, n.Calls, n.RequestRate))
		}
		want := []string{"backend 1/3 0.000833", "batch 0/1 0.000278", "frontend 0/3 0.000833"}
		if !slices.Equal(nodes, want) {
			t.Errorf("nodes %q, want %q", nodes, want)
		}
	})

	t.Run("operation stats", func(t *testing.T) {
		stats, err := st.OperationStats(ctx, "backend", t0, t0.Add(3*time.Minute), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(stats) != 1 || stats[0].Operation != "charge" || len(stats[0].Points) != 3 {
			t.Fatalf("stats %+v", stats)
		}
		p := stats[0].Points[1]
		if !p.T.Equal(t0.Add(time.Minute)) || p.Calls != 1 || p.Errors != 1 || p.P95 != 60*time.Millisecond {
			t.Errorf("second bucket %+v", p)
		}
		if _, err := st.OperationStats(ctx, "backend", t0, t0.Add(24*time.Hour), time.Second); !errors.Is(err, store.ErrBadQuery) {
			t.Errorf("86400 buckets: %v, want ErrBadQuery", err)
		}
	})
}

// TestSpanBatchesAndRetention reads one commit's spans as a live subscriber
// does, then expires old days and writes into a dropped day again.
func TestSpanBatchesAndRetention(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	w := store.NewSpanWriter(st)
	if err := w.WriteSpans(ctx, spanFixture(t0)); err != nil {
		t.Fatal(err)
	}
	// The batch a notification names (the live span hub's test reads it from
	// NOTIFY; here the single-connection TimescaleDB target must run it too).
	var b store.SpanBatch
	if err := st.Pool().QueryRow(ctx, `SELECT batch, min(start_time), max(start_time) FROM spans GROUP BY batch`).Scan(&b.Batch, &b.From, &b.To); err != nil {
		t.Fatal(err)
	}
	spans, err := st.BatchSpans(ctx, b, store.SpanFilter{Service: "backend", ErrorsOnly: true})
	if err != nil || len(spans) != 1 || spans[0].Name != "charge" {
		t.Errorf("batch spans %+v, %v; want the failed charge", spans, err)
	}

	old := t0.AddDate(0, 0, -10)
	if err := w.WriteSpans(ctx, []store.Span{{TraceID: store.TraceID{7}, SpanID: sid(7), Service: "old", Name: "x", Start: old}}); err != nil {
		t.Fatal(err)
	}
	dropped, err := st.ApplySpanRetention(ctx, t0, 7*24*time.Hour)
	if err != nil || !slices.Equal(dropped, []string{store.SpanPartitionName(old)}) {
		t.Fatalf("dropped %q, %v", dropped, err)
	}
	if ops, _ := st.Operations(ctx, "old"); len(ops) != 0 {
		t.Errorf("operations of a dropped service: %q", ops)
	}
	if _, err := st.Trace(ctx, store.TraceID{7}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired trace: %v", err)
	}
	// The writer still thinks the day's partition exists: the first write fails
	// and forgets it, the retry (as the pipeline does) recreates it.
	late := []store.Span{{TraceID: store.TraceID{8}, SpanID: sid(8), Service: "old", Name: "x", Start: old}}
	if err := w.WriteSpans(ctx, late); err != nil {
		if err := w.WriteSpans(ctx, late); err != nil {
			t.Fatalf("write after retention: %v", err)
		}
	}
	if _, err := st.Trace(ctx, store.TraceID{8}); err != nil {
		t.Errorf("trace written after retention: %v", err)
	}
	if _, err := st.ApplySpanRetention(ctx, t0, time.Hour); err == nil {
		t.Error("retention of an hour accepted, want at least 24h")
	}
}
