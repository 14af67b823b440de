package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/amas-eye/amas/ingest/otlp"
	"github.com/amas-eye/amas/store"
)

const operationsPerService = 5

// workload is the benchmark's spans as encoded OTLP requests: pointer-free
// bytes, so that the garbage collector of this process, which also runs the
// server, does not scan a million spans' worth of client data.
type workload struct {
	requests [][]byte
	spans    int
	traceIDs []string
	services []string
	from, to time.Time
}

func serviceName(i int) string { return fmt.Sprintf("svc-%02d", i) }

func operationName(svc, k int) string { return fmt.Sprintf("GET /api/s%d/op%d", svc, k) }

// newWorkload makes o.spans spans in traces of o.traceSpans: span j's parent
// is span (j-1)/2, each span of a trace in the next service, start times spread
// evenly over [from, to); one trace in ten has an error. Each request holds
// o.batch spans grouped by service, as a collector forwards them.
func newWorkload(o options, from, to time.Time) *workload {
	rng := rand.New(rand.NewPCG(42, 4242))
	w := &workload{from: from, to: to}
	for i := range o.services {
		w.services = append(w.services, serviceName(i))
	}
	traces := o.spans / o.traceSpans
	gap := to.Sub(from) / time.Duration(max(traces, 1))
	var td ptrace.Traces
	var bySvc map[int]ptrace.SpanSlice
	inBatch := 0
	flush := func() {
		if inBatch == 0 {
			return
		}
		b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			panic(err)
		}
		w.requests = append(w.requests, b)
		w.spans += inBatch
		inBatch = 0
	}
	for tr := range traces {
		if inBatch == 0 {
			td, bySvc = ptrace.NewTraces(), map[int]ptrace.SpanSlice{}
		}
		var tid [16]byte
		for i := range tid {
			tid[i] = byte(rng.Uint32())
		}
		w.traceIDs = append(w.traceIDs, pcommon.TraceID(tid).String())
		t0 := from.Add(time.Duration(tr) * gap)
		failing := -1
		if tr%10 == 0 {
			failing = rng.IntN(o.traceSpans)
		}
		rootSvc := rng.IntN(o.services)
		ids := make([][8]byte, o.traceSpans)
		for j := range o.traceSpans {
			for i := range ids[j] {
				ids[j][i] = byte(rng.Uint32())
			}
			ids[j][0] |= 1 // never the all-zero id
			svc := (rootSvc + j) % o.services
			spans, ok := bySvc[svc]
			if !ok {
				rs := td.ResourceSpans().AppendEmpty()
				res := rs.Resource().Attributes()
				res.PutStr("service.name", serviceName(svc))
				res.PutStr("host.name", fmt.Sprintf("host-%d", svc%3))
				res.PutStr("telemetry.sdk.language", "go")
				ss := rs.ScopeSpans().AppendEmpty()
				ss.Scope().SetName("bench")
				spans = ss.Spans()
				bySvc[svc] = spans
			}
			sp := spans.AppendEmpty()
			sp.SetTraceID(tid)
			sp.SetSpanID(ids[j])
			if j > 0 {
				sp.SetParentSpanID(ids[(j-1)/2])
			}
			op := rng.IntN(operationsPerService)
			sp.SetName(operationName(svc, op))
			sp.SetKind(ptrace.SpanKindServer)
			start := t0.Add(time.Duration(j) * time.Millisecond)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(1+rng.IntN(200_000)) * time.Microsecond)))
			attrs := sp.Attributes()
			attrs.PutStr("http.method", "GET")
			attrs.PutStr("http.route", fmt.Sprintf("/api/s%d/op%d", svc, op))
			attrs.PutInt("http.status_code", 200)
			attrs.PutStr("user.id", fmt.Sprintf("u%d", rng.IntN(10_000)))
			if j == failing {
				attrs.PutInt("http.status_code", 500)
				sp.Status().SetCode(ptrace.StatusCodeError)
				sp.Status().SetMessage("upstream failed")
				ev := sp.Events().AppendEmpty()
				ev.SetName("exception")
				ev.SetTimestamp(pcommon.NewTimestampFromTime(start))
				ev.Attributes().PutStr("exception.message", "connection reset")
			}
			inBatch++
		}
		if inBatch+o.traceSpans > o.batch {
			flush()
		}
	}
	flush()
	return w
}

// rows decodes the requests and converts them as the receiver does: the rows
// the raw COPY baseline stores.
func (w *workload) rows() ([]store.Span, error) {
	out := make([]store.Span, 0, w.spans)
	for _, b := range w.requests {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			return nil, err
		}
		spans, rej := otlp.ConvertTraces(req.Traces())
		if rej.Count > 0 {
			return nil, fmt.Errorf("workload span refused: %s", rej.Message)
		}
		out = append(out, spans...)
	}
	return out, nil
}
