package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/amas-eye/amas/app"
	"github.com/amas-eye/amas/store"
)

// copyTable is the spans table again, with the same columns, indexes and daily
// partitioning.
const copyTable = `
CREATE TABLE bench_spans (LIKE spans INCLUDING DEFAULTS) PARTITION BY RANGE (start_time);
CREATE INDEX bench_spans_trace_id ON bench_spans (trace_id);
CREATE INDEX bench_spans_service_start ON bench_spans (service, start_time);`

// copyBatch and copyWriters are the span pipeline's defaults, so the limit is
// measured under the same batching.
const copyBatch, copyWriters = 8192, 2

func benchCopy(ctx context.Context, a *app.App, w *workload) (float64, error) {
	pool := a.Store().Store.Pool()
	if _, err := pool.Exec(ctx, copyTable); err != nil {
		return 0, err
	}
	for d := store.Day(w.from); !d.After(w.to); d = d.AddDate(0, 0, 1) {
		ddl := fmt.Sprintf(`CREATE TABLE bench_spans_p%s PARTITION OF bench_spans FOR VALUES FROM ('%s') TO ('%s')`,
			d.Format("20060102"), d.Format(time.RFC3339), d.AddDate(0, 0, 1).Format(time.RFC3339))
		if _, err := pool.Exec(ctx, ddl); err != nil {
			return 0, err
		}
	}
	spans, err := w.rows()
	if err != nil {
		return 0, err
	}
	rows := make([][]any, len(spans))
	for i := range spans {
		rows[i] = store.SpanRow(&spans[i], 1)
	}
	start := time.Now()
	var g errgroup.Group
	for wr := range copyWriters {
		g.Go(func() error {
			for lo := wr * copyBatch; lo < len(rows); lo += copyWriters * copyBatch {
				hi := min(lo+copyBatch, len(rows))
				if _, err := pool.CopyFrom(ctx, pgx.Identifier{"bench_spans"}, store.SpanColumns, pgx.CopyFromRows(rows[lo:hi])); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return float64(len(rows)) / time.Since(start).Seconds(), nil
}

// traceExport is the OTLP trace service's method.
const traceExport = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// rawCodec sends requests already encoded and hands back replies undecoded:
// the clients do no protobuf work in the timed loop, as a load generator
// would not, so the figure is the server's.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// benchGRPC sends every request through OTLP gRPC from o.clients exporters
// sharing the requests; each export returns once its spans are committed.
func benchGRPC(ctx context.Context, a *app.App, o options, w *workload) (float64, error) {
	token := a.Bootstrap.IngestToken
	conns := make([]*grpc.ClientConn, min(o.clients, 4))
	for i := range conns {
		c, err := grpc.NewClient(a.OTLPGRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return 0, err
		}
		defer c.Close()
		conns[i] = c
	}
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	var next atomic.Int64
	var sent atomic.Int64
	start := time.Now()
	var g errgroup.Group
	for c := range o.clients {
		conn := conns[c%len(conns)]
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(w.requests) {
					return nil
				}
				for {
					var reply []byte
					err := conn.Invoke(ctx, traceExport, &w.requests[i], &reply, grpc.ForceCodec(rawCodec{}))
					if status.Code(err) == codes.Unavailable {
						// Back-pressure: an exporter retries after a pause.
						time.Sleep(100 * time.Millisecond)
						continue
					}
					if err != nil {
						return err
					}
					resp := ptraceotlp.NewExportResponse()
					if err := resp.UnmarshalProto(reply); err != nil {
						return err
					}
					if n := resp.PartialSuccess().RejectedSpans(); n > 0 {
						return fmt.Errorf("%d spans rejected: %s", n, resp.PartialSuccess().ErrorMessage())
					}
					break
				}
				sent.Add(1)
			}
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	if int(sent.Load()) != len(w.requests) {
		return 0, fmt.Errorf("%d of %d requests sent", sent.Load(), len(w.requests))
	}
	return float64(w.spans) / time.Since(start).Seconds(), nil
}
