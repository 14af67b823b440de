package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

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

// TestOTLPMetricsFromTheSDK sends metrics with the SDK's gRPC and HTTP metric
// exporters and reads them back as series named by the documented convention.
func TestOTLPMetricsFromTheSDK(t *testing.T) {
	s := startOTLPServer(t)
	ctx := context.Background()
	grpcExp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(s.OTLPGRPCAddr()), otlpmetricgrpc.WithInsecure(),
		otlpmetricgrpc.WithHeaders(s.authHeader()))
	if err != nil {
		t.Fatal(err)
	}
	httpExp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(s.OTLPHTTPAddr()), otlpmetrichttp.WithInsecure(),
		otlpmetrichttp.WithHeaders(s.authHeader()), otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		service string
		exp     sdkmetric.Exporter
	}{{"metrics-grpc", grpcExp}, {"metrics-http", httpExp}} {
		t.Run(tc.service, func(t *testing.T) {
			mp := sdkmetric.NewMeterProvider(
				sdkmetric.WithReader(sdkmetric.NewPeriodicReader(tc.exp, sdkmetric.WithInterval(time.Hour))),
				sdkmetric.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(tc.service))))
			defer func() { _ = mp.Shutdown(context.Background()) }()
			m := mp.Meter("shop")
			orders, _ := m.Int64Counter("shop.orders")
			orders.Add(ctx, 3, metric.WithAttributes(attribute.String("route", "/a b")))
			orders.Add(ctx, 2, metric.WithAttributes(attribute.String("route", "/a b")))
			inflight, _ := m.Int64UpDownCounter("shop.inflight")
			inflight.Add(ctx, 4)
			inflight.Add(ctx, -1)
			latency, _ := m.Float64Histogram("shop.latency", metric.WithExplicitBucketBoundaries(5, 10, 100))
			for v := 1; v <= 10; v++ {
				latency.Record(ctx, float64(v))
			}
			_, _ = m.Float64ObservableGauge("shop.temperature", metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
				o.Observe(42.5)
				return nil
			}))
			before := time.Now().UTC().Add(-time.Minute)
			if err := mp.ForceFlush(ctx); err != nil {
				t.Fatal(err)
			}
			for _, want := range []struct {
				metric string
				tags   map[string]string
				value  float64
			}{
				{"shop.orders", map[string]string{"route": "/a_b"}, 5},
				{"shop.inflight", nil, 3},
				{"shop.latency.count", nil, 10},
				{"shop.latency.sum", nil, 55},
				{"shop.latency.min", nil, 1},
				{"shop.latency.max", nil, 10},
				{"shop.latency.bucket", map[string]string{"le": "5"}, 5},
				{"shop.latency.bucket", map[string]string{"le": "inf"}, 10},
				{"shop.latency.p50", nil, 5},
				{"shop.temperature", nil, 42.5},
			} {
				filters := []map[string]any{{"key": "service.name", "op": "EQ", "value": tc.service}}
				for k, v := range want.tags {
					filters = append(filters, map[string]any{"key": k, "op": "EQ", "value": v})
				}
				q := map[string]any{"metric": want.metric, "from": before.Format(time.RFC3339),
					"to": before.Add(2 * time.Minute).Format(time.RFC3339), "step": "1s", "filters": filters}
				var a seriesAnswer
				s.query(t, seriesQuery, map[string]any{"q": q}, &a)
				if len(a.Series) != 1 || len(a.Series[0].Points) != 1 || a.Series[0].Points[0].V != want.value {
					t.Errorf("%s %v: %+v, want one point %v", want.metric, want.tags, a.Series, want.value)
				}
			}
		})
	}
}

// post sends body to the OTLP HTTP listener and returns the reply.
func (s *server) post(t *testing.T, path, contentType string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	return postTo(t, s.OTLPHTTPAddr(), path, contentType, body, header)
}

func postTo(t *testing.T, addr, path, contentType string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// testTraces is one trace of a service: a root span and, when withBad, a span
// without a trace id that must be refused.
func testTraces(service string, withBad bool) (ptrace.Traces, string) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	now := time.Now()
	tid := [16]byte{0xab, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, byte(now.UnixNano())}
	sp := spans.AppendEmpty()
	sp.SetTraceID(tid)
	sp.SetSpanID([8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	sp.SetName("handle")
	sp.SetKind(ptrace.SpanKindServer)
	sp.SetStartTimestamp(pcommonTime(now.Add(-time.Second)))
	sp.SetEndTimestamp(pcommonTime(now))
	sp.Status().SetCode(ptrace.StatusCodeError)
	if withBad {
		bad := spans.AppendEmpty()
		bad.SetName("no ids")
		bad.SetStartTimestamp(pcommonTime(now))
	}
	return td, fmt.Sprintf("%x", tid)
}

// TestOTLPHTTPProtocol covers the OTLP/HTTP details: JSON and protobuf, gzip,
// partial success, malformed and oversized bodies, credentials; and Zipkin.
func TestOTLPHTTPProtocol(t *testing.T) {
	s := startOTLPServer(t, "--ingest-max-body-bytes", "4096", "--zipkin-addr", "127.0.0.1:0")
	auth := s.authHeader()

	t.Run("JSON with a partial success", func(t *testing.T) {
		td, id := testTraces("http-json", true)
		body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
		resp, b := s.post(t, "/v1/traces", "application/json", body, auth)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s %s", resp.Status, b)
		}
		var reply struct {
			PartialSuccess struct {
				RejectedSpans json.Number
				ErrorMessage  string
			}
		}
		if err := json.Unmarshal(b, &reply); err != nil || reply.PartialSuccess.RejectedSpans != "1" ||
			!strings.Contains(reply.PartialSuccess.ErrorMessage, "trace id") {
			t.Errorf("reply %s (%v), want 1 rejected span naming the trace id", b, err)
		}
		s.wantTrace(t, id, "http-json")
	})

	t.Run("protobuf with gzip", func(t *testing.T) {
		td, id := testTraces("http-proto", false)
		body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		resp, b := s.post(t, "/v1/traces", "application/x-protobuf", gz(t, body), map[string]string{
			"Authorization": auth["Authorization"], "Content-Encoding": "gzip"})
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Fatalf("%s %s", resp.Status, b)
		}
		reply := ptraceotlp.NewExportResponse()
		if err := reply.UnmarshalProto(b); err != nil || reply.PartialSuccess().RejectedSpans() != 0 {
			t.Errorf("reply %v, %v", reply.PartialSuccess().RejectedSpans(), err)
		}
		s.wantTrace(t, id, "http-proto")
	})

	// Zipkin v2 JSON, on the OTLP/HTTP port and on Zipkin's own (--zipkin-addr).
	for _, tc := range []struct{ name, addr, traceID string }{
		{"Zipkin v2 JSON on the OTLP/HTTP port", s.OTLPHTTPAddr(), "5af7183fb1d4cf5f5af7183fb1d4cf5f"},
		{"Zipkin v2 JSON on the Zipkin port", s.ZipkinAddr(), "6af7183fb1d4cf5f5af7183fb1d4cf5f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now().Add(-time.Second).UnixMicro()
			body := fmt.Sprintf(`[{"traceId":"%[1]s","id":"352bff9a74ca9ad2","name":"get /api",
			"kind":"SERVER","timestamp":%[2]d,"duration":1500,"localEndpoint":{"serviceName":"zipkin-svc"},"tags":{"http.path":"/api"}},
			{"traceId":"%[1]s","id":"452bff9a74ca9ad2","parentId":"352bff9a74ca9ad2","name":"query",
			"kind":"CLIENT","timestamp":%[3]d,"duration":700,"localEndpoint":{"serviceName":"zipkin-svc"}}]`, tc.traceID, start, start+100)
			resp, b := postTo(t, tc.addr, "/api/v2/spans", "application/json", []byte(body), auth)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("%s %s", resp.Status, b)
			}
			var got struct{ Trace struct{ Spans []gqlSpan } }
			s.query(t, traceQuery, map[string]any{"id": tc.traceID}, &got)
			sp := got.Trace.Spans
			if len(sp) != 2 || sp[0].Service != "zipkin-svc" || sp[0].Name != "get /api" || sp[1].Depth != 1 ||
				sp[1].ParentSpanID != "352bff9a74ca9ad2" || sp[0].Duration != 1.5 || !hasAttr(sp[0].Attributes, "http.path", "/api") {
				t.Errorf("zipkin trace %+v", sp)
			}
		})
	}
	t.Run("the Zipkin port takes Zipkin spans only, with credentials", func(t *testing.T) {
		if resp, b := postTo(t, s.ZipkinAddr(), "/api/v2/spans", "application/json", []byte(`[]`), nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Zipkin port without a token: %s %s", resp.Status, b)
		}
		if resp, b := postTo(t, s.ZipkinAddr(), "/v1/traces", "application/json", []byte(`{}`), auth); resp.StatusCode != http.StatusNotFound {
			t.Errorf("OTLP on the Zipkin port: %s %s", resp.Status, b)
		}
	})

	// Every error is a google.rpc.Status, as OTLP/HTTP specifies, with the gRPC
	// code of the HTTP status; JSON here, the requests' encoding.
	for _, tc := range []struct {
		name        string
		path        string
		contentType string
		body        []byte
		header      map[string]string
		status      int
		code        grpccodes.Code
		message     string
	}{
		{"malformed JSON", "/v1/traces", "application/json", []byte(`{"resourceSpans": [`), auth, http.StatusBadRequest, grpccodes.InvalidArgument, "malformed OTLP traces"},
		{"malformed protobuf", "/v1/metrics", "application/x-protobuf", []byte{0xff, 0xff, 0xff}, auth, http.StatusBadRequest, grpccodes.InvalidArgument, "malformed OTLP metrics"},
		{"malformed Zipkin", "/api/v2/spans", "application/json", []byte(`{"not": "a list"}`), auth, http.StatusBadRequest, grpccodes.InvalidArgument, "malformed Zipkin"},
		{"oversized", "/v1/traces", "application/json", bytes.Repeat([]byte(" "), 5000), auth, http.StatusRequestEntityTooLarge, grpccodes.InvalidArgument, "larger than 4096 bytes"},
		{"oversized once decompressed", "/v1/traces", "application/json", gz(t, bytes.Repeat([]byte(" "), 5000)),
			map[string]string{"Authorization": auth["Authorization"], "Content-Encoding": "gzip"}, http.StatusRequestEntityTooLarge, grpccodes.InvalidArgument, "after decompression"},
		{"unsupported content type", "/v1/traces", "text/plain", []byte("x"), auth, http.StatusUnsupportedMediaType, grpccodes.InvalidArgument, "unsupported Content-Type"},
		{"no token", "/v1/traces", "application/json", []byte(`{}`), nil, http.StatusUnauthorized, grpccodes.Unauthenticated, "not signed in"},
		{"no token, protobuf", "/v1/metrics", "application/x-protobuf", nil, nil, http.StatusUnauthorized, grpccodes.Unauthenticated, "not signed in"},
		{"a viewer token", "/v1/traces", "application/json", []byte(`{}`), map[string]string{"Authorization": "Bearer " + s.viewerToken}, http.StatusForbidden, grpccodes.PermissionDenied, "role"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := s.post(t, tc.path, tc.contentType, tc.body, tc.header)
			var st spb.Status
			unmarshal := protojson.Unmarshal
			if resp.Header.Get("Content-Type") == "application/x-protobuf" {
				unmarshal = proto.Unmarshal
			}
			if err := unmarshal(b, &st); err != nil {
				t.Fatalf("%s: body %q is not a google.rpc.Status: %v", resp.Status, b, err)
			}
			if resp.StatusCode != tc.status || grpccodes.Code(st.Code) != tc.code || !strings.Contains(st.Message, tc.message) {
				t.Errorf("%s %v %q, want %d %v with %q", resp.Status, grpccodes.Code(st.Code), st.Message, tc.status, tc.code, tc.message)
			}
		})
	}

	t.Run("gRPC", func(t *testing.T) {
		conn, err := grpc.NewClient(s.OTLPGRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := ptraceotlp.NewGRPCClient(conn)
		small, _ := testTraces("grpc-small", false)
		big, _ := testTraces("grpc-big", false)
		big.ResourceSpans().At(0).Resource().Attributes().PutStr("padding", strings.Repeat("x", 5000))
		withToken := func(token string) context.Context {
			return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
		}
		for _, tc := range []struct {
			name string
			ctx  context.Context
			td   ptrace.Traces
			want grpccodes.Code
		}{
			{"no token", context.Background(), small, grpccodes.Unauthenticated},
			{"unknown token", withToken("amas_nope"), small, grpccodes.Unauthenticated},
			{"viewer token", withToken(s.viewerToken), small, grpccodes.PermissionDenied},
			{"oversized message", withToken(s.Bootstrap.IngestToken), big, grpccodes.ResourceExhausted},
			{"ingest token", withToken(s.Bootstrap.IngestToken), small, grpccodes.OK},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := client.Export(tc.ctx, ptraceotlp.NewExportRequestFromTraces(tc.td))
				if status.Code(err) != tc.want {
					t.Errorf("export: %v, want %s", err, tc.want)
				}
			})
		}
	})
}

func (s *server) wantTrace(t *testing.T, id, service string) {
	t.Helper()
	var got struct{ Trace *struct{ Spans []gqlSpan } }
	s.query(t, traceQuery, map[string]any{"id": id}, &got)
	if got.Trace == nil || len(got.Trace.Spans) != 1 || got.Trace.Spans[0].Service != service || got.Trace.Spans[0].Status != "ERROR" {
		t.Errorf("trace %s: %+v, want one ERROR span of %s", id, got.Trace, service)
	}
}

// TestLiveSpansOverWebsocket subscribes to the errors of one service and
// receives only the error span of a trace stored after the subscription.
func TestLiveSpansOverWebsocket(t *testing.T) {
	s := startOTLPServer(t)
	dialer := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	c, _, err := dialer.Dial("ws"+strings.TrimPrefix(s.url, "http")+"/graphql", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read := func() map[string]any {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			var msg map[string]any
			if err := c.ReadJSON(&msg); err != nil {
				t.Fatal(err)
			}
			if msg["type"] != "ping" && msg["type"] != "ka" {
				return msg
			}
		}
	}
	_ = c.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + s.viewerToken}})
	if msg := read(); msg["type"] != "connection_ack" {
		t.Fatalf("connection_init answered %v", msg)
	}
	_ = c.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": `subscription { liveSpans(filter: {service: "live-svc", errorsOnly: true}) { traceId name status } }`}})
	// The subscription starts some time after the subscribe message, with no
	// reply to say so: send a trace every 200ms until one comes back.
	got := make(chan map[string]any, 1)
	go func() { got <- read() }()
	var ids []string
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for len(ids) < 50 {
		td, id := testTraces("live-svc", false)
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		fine := spans.AppendEmpty()
		fine.SetTraceID(spans.At(0).TraceID())
		fine.SetSpanID([8]byte{9})
		fine.SetName("fine")
		fine.SetStartTimestamp(pcommonTime(time.Now()))
		other, _ := testTraces("other-svc", false)
		other.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
		body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if resp, b := s.post(t, "/v1/traces", "application/x-protobuf", body, s.authHeader()); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s", resp.Status, b)
		}
		ids = append(ids, id)
		select {
		case msg := <-got:
			b, _ := json.Marshal(msg["payload"])
			var p struct {
				Data struct {
					LiveSpans []struct{ TraceID, Name, Status string }
				}
			}
			if err := json.Unmarshal(b, &p); err != nil || msg["type"] != "next" || len(p.Data.LiveSpans) != 1 {
				t.Fatalf("live spans message %s", b)
			}
			sp := p.Data.LiveSpans[0]
			if sp.Name != "handle" || sp.Status != "ERROR" || !slices.Contains(ids, sp.TraceID) {
				t.Fatalf("live span %+v, want the ERROR span of one of %q", sp, ids)
			}
			return
		case <-tick.C:
		}
	}
	t.Fatal("no live span after 50 traces")
}

func pcommonTime(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }

// TestStopWritesPendingREDPoints stops the server while the RED interval of
// committed spans is still open and finds their counts stored: Stop commits
// the spans accepted, then the RED points they made, before closing.
func TestStopWritesPendingREDPoints(t *testing.T) {
	s := startOTLPServer(t, "--traces-red-interval", "1h")
	td, _ := testTraces("stop-svc", false)
	body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if resp, b := s.post(t, "/v1/traces", "application/x-protobuf", body, s.authHeader()); resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s", resp.Status, b)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	conn, err := pgxConnect(t, s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var calls, errs float64
	err = conn.QueryRow(t.Context(), `
		SELECT coalesce(sum(value) FILTER (WHERE s.metric = $1), 0), coalesce(sum(value) FILTER (WHERE s.metric = $2), 0)
		FROM samples JOIN series s ON s.id = samples.series_id WHERE s.tags->>'service' = 'stop-svc'`,
		otlp.MetricCalls, otlp.MetricErrors).Scan(&calls, &errs)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 || errs != 1 {
		t.Errorf("after Stop: %v calls and %v errors of stop-svc stored, want 1 and 1", calls, errs)
	}
}
