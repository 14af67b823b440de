package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/amas-eye/amas/ingest/otlp"
)

func startOTLPServer(t *testing.T, extra ...string) *server {
	t.Helper()
	return startServer(t, append([]string{"--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0",
		"--traces-red-interval", "1s"}, extra...)...)
}

func (s *server) authHeader() map[string]string {
	return map[string]string{"Authorization": "Bearer " + s.Bootstrap.IngestToken}
}

// query runs a GraphQL query as the viewer and decodes its data into out.
func (s *server) query(t *testing.T, q string, vars map[string]any, out any) {
	t.Helper()
	r := s.graphql(t, s.viewerToken, q, vars)
	if len(r.Errors) > 0 {
		t.Fatalf("graphql: %+v", r.Errors)
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		t.Fatal(err)
	}
}

type sentSpan struct {
	service, name string
	dur           time.Duration
	err           bool
}

type gqlSpan struct {
	SpanID, ParentSpanID, Service, Name, Kind, Status, StatusMessage string
	Duration                                                         float64
	Depth                                                            int
	Attributes                                                       []struct{ Key, Value string }
	Events                                                           []struct{ Name string }
}

const traceQuery = `query($id: ID!) { trace(id: $id) { traceId spans { spanId parentSpanId service name kind status
	statusMessage duration depth attributes { key value } events { name } } } }`

// TestOTLPTracesFromTheSDK sends traces of two services with the OpenTelemetry
// Go SDK, one over gRPC and one over HTTP, and reads back the call tree, the
// search, the service map, the operation stats and the span-derived RED series.
func TestOTLPTracesFromTheSDK(t *testing.T) {
	s := startOTLPServer(t)
	ctx := context.Background()
	grpcExp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.OTLPGRPCAddr()), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithHeaders(s.authHeader()), otlptracegrpc.WithCompressor("gzip"))
	if err != nil {
		t.Fatal(err)
	}
	httpExp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.OTLPHTTPAddr()), otlptracehttp.WithInsecure(),
		otlptracehttp.WithHeaders(s.authHeader()), otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	provider := func(exp sdktrace.SpanExporter, service string) *sdktrace.TracerProvider {
		res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service), attribute.String("deployment.environment", "test"))
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		return tp
	}
	frontTP, backTP := provider(grpcExp, "frontend"), provider(httpExp, "backend")
	front, back := frontTP.Tracer("shop"), backTP.Tracer("billing")

	base := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	var sent []sentSpan
	var traceIDs []string
	const traces = 6
	for i := range traces {
		t0 := base.Add(time.Duration(i) * time.Second)
		failed := i%3 == 0
		rootCtx, root := front.Start(ctx, "GET /checkout", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(t0),
			trace.WithAttributes(attribute.String("http.method", "GET"), attribute.Int("shop.order", i)))
		callCtx, call := front.Start(rootCtx, "POST /charge", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(t0.Add(time.Millisecond)))
		chargeCtx, charge := back.Start(callCtx, "charge", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(t0.Add(2*time.Millisecond)))
		_, db := back.Start(chargeCtx, "db.insert", trace.WithTimestamp(t0.Add(3*time.Millisecond)))
		db.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", 2)))
		dbDur := time.Duration(5+i) * time.Millisecond
		db.End(trace.WithTimestamp(t0.Add(3*time.Millisecond + dbDur)))
		chargeDur := time.Duration(10+2*i) * time.Millisecond
		if failed {
			charge.SetStatus(codes.Error, "card declined")
		}
		charge.End(trace.WithTimestamp(t0.Add(2*time.Millisecond + chargeDur)))
		call.End(trace.WithTimestamp(t0.Add(3*time.Millisecond + chargeDur)))
		rootDur := time.Duration(20+3*i) * time.Millisecond
		root.End(trace.WithTimestamp(t0.Add(rootDur)))
		sent = append(sent,
			sentSpan{"frontend", "GET /checkout", rootDur, false},
			sentSpan{"frontend", "POST /charge", chargeDur + time.Millisecond, false},
			sentSpan{"backend", "charge", chargeDur, failed},
			sentSpan{"backend", "db.insert", dbDur, false})
		traceIDs = append(traceIDs, root.SpanContext().TraceID().String())
	}
	// ForceFlush returns once the export was answered: with success, committed.
	for _, tp := range []*sdktrace.TracerProvider{backTP, frontTP} {
		if err := tp.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("trace is a call tree in waterfall order", func(t *testing.T) {
		var got struct {
			Trace struct {
				TraceID string
				Spans   []gqlSpan
			}
		}
		s.query(t, traceQuery, map[string]any{"id": traceIDs[0]}, &got)
		if got.Trace.TraceID != traceIDs[0] {
			t.Fatalf("traceId %q, want %q", got.Trace.TraceID, traceIDs[0])
		}
		var shape []string
		for _, sp := range got.Trace.Spans {
			shape = append(shape, fmt.Sprintf("%d:%s/%s/%s/%s", sp.Depth, sp.Service, sp.Name, sp.Kind, sp.Status))
		}
		want := []string{"0:frontend/GET /checkout/SERVER/UNSET", "1:frontend/POST /charge/CLIENT/UNSET",
			"2:backend/charge/SERVER/ERROR", "3:backend/db.insert/INTERNAL/UNSET"}
		if !slices.Equal(shape, want) {
			t.Fatalf("spans %q, want %q", shape, want)
		}
		sp := got.Trace.Spans
		if sp[0].ParentSpanID != "" || sp[1].ParentSpanID != sp[0].SpanID || sp[2].ParentSpanID != sp[1].SpanID || sp[3].ParentSpanID != sp[2].SpanID {
			t.Errorf("parents do not chain: %+v", sp)
		}
		if sp[2].StatusMessage != "card declined" || sp[0].Duration != 20 || sp[3].Duration != 5 {
			t.Errorf("status message %q, durations %v and %v ms; want card declined, 20 and 5", sp[2].StatusMessage, sp[0].Duration, sp[3].Duration)
		}
		if len(sp[3].Events) != 1 || sp[3].Events[0].Name != "retry" {
			t.Errorf("events of db.insert: %+v", sp[3].Events)
		}
		if !hasAttr(sp[0].Attributes, "shop.order", "0") || !hasAttr(sp[0].Attributes, "http.method", "GET") {
			t.Errorf("attributes of the root: %+v", sp[0].Attributes)
		}
	})

	t.Run("unknown and malformed trace ids", func(t *testing.T) {
		r := s.graphql(t, s.viewerToken, traceQuery, map[string]any{"id": strings.Repeat("ab", 16)})
		if len(r.Errors) > 0 || string(r.Data) != `{"trace":null}` {
			t.Errorf("unknown id: %s %+v", r.Data, r.Errors)
		}
		r = s.graphql(t, s.viewerToken, traceQuery, map[string]any{"id": "xyz"})
		if len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "32 hex digits") {
			t.Errorf("malformed id: %+v", r.Errors)
		}
	})

	t.Run("services, operations and search", func(t *testing.T) {
		var got struct {
			Services   []string
			Operations []string
			Traces     []struct {
				TraceID, RootService, RootOperation string
				SpanCount, ErrorCount               int
				Duration                            float64
				Services                            []string
			}
		}
		s.query(t, `query($f: TraceFilter!) { services operations(service: "backend")
			traces(filter: $f) { traceId rootService rootOperation spanCount errorCount duration services } }`,
			map[string]any{"f": map[string]any{"service": "backend", "operation": "charge", "errorsOnly": true,
				"minDuration": "10ms", "from": base.Add(-time.Minute).Format(time.RFC3339), "to": time.Now().Add(time.Minute).Format(time.RFC3339)}}, &got)
		if !slices.Equal(got.Services, []string{"backend", "frontend"}) || !slices.Equal(got.Operations, []string{"charge", "db.insert"}) {
			t.Errorf("services %q, operations %q", got.Services, got.Operations)
		}
		var ids []string
		for _, tr := range got.Traces {
			ids = append(ids, tr.TraceID)
			if tr.RootService != "frontend" || tr.RootOperation != "GET /checkout" || tr.SpanCount != 4 || tr.ErrorCount != 1 ||
				!slices.Equal(tr.Services, []string{"backend", "frontend"}) {
				t.Errorf("summary %+v", tr)
			}
		}
		// Errors in traces 0 and 3, newest first.
		if want := []string{traceIDs[3], traceIDs[0]}; !slices.Equal(ids, want) {
			t.Errorf("error traces %q, want %q", ids, want)
		}
		if len(got.Traces) == 2 && got.Traces[1].Duration != 20 {
			t.Errorf("duration of trace 0: %v ms, want 20", got.Traces[1].Duration)
		}
		s.query(t, `query($f: TraceFilter!) { traces(filter: $f) { traceId } }`, map[string]any{"f": map[string]any{
			"attributes": []map[string]any{{"key": "shop.order", "value": "4"}, {"key": "deployment.environment", "value": "test"}},
			"from":       base.Add(-time.Minute).Format(time.RFC3339), "to": time.Now().Add(time.Minute).Format(time.RFC3339)}}, &got)
		if len(got.Traces) != 1 || got.Traces[0].TraceID != traceIDs[4] {
			t.Errorf("attribute search: %+v, want trace %s", got.Traces, traceIDs[4])
		}
	})

	from, to := base.Add(-time.Minute).Format(time.RFC3339), base.Add(time.Minute).Format(time.RFC3339)
	t.Run("service map", func(t *testing.T) {
		var got struct {
			ServiceMap struct {
				Nodes []struct {
					Service                     string
					RequestRate, ErrorRate, P95 float64
					Calls, Errors               int
				}
				Edges []struct {
					Caller, Callee string
					Calls, Errors  int
					P95            float64
				}
			}
		}
		s.query(t, `query($from: Time!, $to: Time!) { serviceMap(from: $from, to: $to) {
			nodes { service requestRate errorRate p95 calls errors } edges { caller callee calls errors p95 } } }`,
			map[string]any{"from": from, "to": to}, &got)
		m := got.ServiceMap
		if len(m.Edges) != 1 || m.Edges[0].Caller != "frontend" || m.Edges[0].Callee != "backend" || m.Edges[0].Calls != traces || m.Edges[0].Errors != 2 {
			t.Fatalf("edges %+v, want frontend -> backend with %d calls, 2 errors", m.Edges, traces)
		}
		charge := durationsOf(sent, "backend", "charge")
		if want := ms(otlp.Percentile(charge, 0.95)); math.Abs(m.Edges[0].P95-want) > 1e-6 {
			t.Errorf("edge p95 %v ms, want %v", m.Edges[0].P95, want)
		}
		if len(m.Nodes) != 2 || m.Nodes[0].Service != "backend" || m.Nodes[0].Calls != traces || m.Nodes[0].Errors != 2 ||
			math.Abs(m.Nodes[0].ErrorRate-2.0/traces) > 1e-9 || math.Abs(m.Nodes[0].RequestRate-traces/120.0) > 1e-9 {
			t.Errorf("nodes %+v", m.Nodes)
		}
	})

	t.Run("operation stats", func(t *testing.T) {
		var got struct {
			OperationStats []struct {
				Operation string
				Points    []struct {
					Calls, Errors       int
					ErrorRate, P50, P99 float64
				}
			}
		}
		s.query(t, `query($from: Time!, $to: Time!) { operationStats(service: "backend", from: $from, to: $to, step: "2m") {
			operation points { calls errors errorRate p50 p99 } } }`, map[string]any{"from": from, "to": to}, &got)
		if len(got.OperationStats) != 2 || got.OperationStats[0].Operation != "charge" {
			t.Fatalf("operation stats %+v", got.OperationStats)
		}
		var calls, errs int
		for _, p := range got.OperationStats[0].Points {
			calls += p.Calls
			errs += p.Errors
		}
		if calls != traces || errs != 2 {
			t.Errorf("charge: %d calls, %d errors; want %d and 2", calls, errs, traces)
		}
	})

	t.Run("RED series match the sent spans", func(t *testing.T) {
		for _, op := range []struct{ service, name, tag string }{{"backend", "charge", "charge"}, {"frontend", "GET /checkout", "GET_/checkout"}} {
			durs := durationsOf(sent, op.service, op.name)
			wantErrors := 0
			for _, sp := range sent {
				if sp.service == op.service && sp.name == op.name && sp.err {
					wantErrors++
				}
			}
			// Every span started in the same few seconds: one series, one
			// point per second; sum them.
			calls := waitForSum(t, s, otlp.MetricCalls, op.service, op.tag, base, len(durs))
			if calls != float64(len(durs)) {
				t.Errorf("%s calls %v, want %d", op.name, calls, len(durs))
			}
			if got := waitForSum(t, s, otlp.MetricErrors, op.service, op.tag, base, wantErrors); got != float64(wantErrors) {
				t.Errorf("%s errors %v, want %d", op.name, got, wantErrors)
			}
			// One span per second and bucket: each bucket's p95 is that span's duration.
			p95 := s.redPoints(t, otlp.MetricDurationP95, op.service, op.tag, base)
			var got []time.Duration
			for _, v := range p95 {
				got = append(got, time.Duration(math.Round(v*1e6))*time.Nanosecond)
			}
			sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
			sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
			if !slices.Equal(got, durs) {
				t.Errorf("%s p95 per bucket %v, want %v", op.name, got, durs)
			}
		}
	})
}

func hasAttr(attrs []struct{ Key, Value string }, k, v string) bool {
	for _, a := range attrs {
		if a.Key == k && a.Value == v {
			return true
		}
	}
	return false
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func durationsOf(sent []sentSpan, service, name string) []time.Duration {
	var out []time.Duration
	for _, sp := range sent {
		if sp.service == service && sp.name == name {
			out = append(out, sp.dur)
		}
	}
	slices.Sort(out)
	return out
}

// redPoints reads the values of one RED series around base.
func (s *server) redPoints(t *testing.T, metric, service, operation string, base time.Time) []float64 {
	t.Helper()
	q := map[string]any{"metric": metric, "from": base.Add(-time.Minute).Format(time.RFC3339),
		"to": base.Add(time.Minute).Format(time.RFC3339), "step": "1s",
		"filters": []map[string]any{{"key": "service", "op": "EQ", "value": service}, {"key": "operation", "op": "EQ", "value": operation}}}
	r := s.graphql(t, s.viewerToken, seriesQuery, map[string]any{"q": q})
	if len(r.Errors) > 0 {
		t.Fatalf("series %s: %+v", metric, r.Errors)
	}
	var a seriesAnswer
	if err := json.Unmarshal(r.Data, &a); err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, sr := range a.Series {
		for _, p := range sr.Points {
			out = append(out, p.V)
		}
	}
	return out
}

// waitForSum polls a RED series until its points add up to want or 15s pass
// (the aggregator writes an interval once it is an interval old), and returns
// the last sum.
func waitForSum(t *testing.T, s *server, metric, service, operation string, base time.Time, want int) float64 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var sum float64
		for _, v := range s.redPoints(t, metric, service, operation, base) {
			sum += v
		}
		if sum == float64(want) || time.Now().After(deadline) {
			return sum
		}
		time.Sleep(200 * time.Millisecond)
	}
}
