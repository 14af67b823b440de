// Command otlp is the traces benchmark: on a fresh database it measures spans/s
// through the OTLP gRPC receiver (batches of 512 spans from concurrent
// exporters, each waiting for its commit) against a raw pgx CopyFrom of the
// identical rows into an identical table (the requests are encoded before the
// timing, as a load generator's would be, so the figure is the server's), then,
// with those spans stored, the
// latency of the GraphQL trace(id) and traces search queries. Its last line is
// machine-readable:
//
//	RESULT spans_vs_copy=<ratio> spans_per_s=<n> trace_p99_ms=<n> search_p99_ms=<n>
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/amas-eye/amas/app"
	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/config"
	"github.com/amas-eye/amas/store/storetest"
)

type options struct {
	spans      int
	traceSpans int
	services   int
	batch      int
	clients    int
	span       time.Duration
	queryRuns  int
	keep       bool
	cpuProfile string
}

func main() {
	var o options
	flag.IntVar(&o.spans, "spans", 1_000_000, "spans to send (and to store before the queries)")
	flag.IntVar(&o.traceSpans, "trace-spans", 8, "spans per trace")
	flag.IntVar(&o.services, "services", 10, "services the spans come from")
	flag.IntVar(&o.batch, "batch", 512, "spans per OTLP export request")
	flag.IntVar(&o.clients, "clients", 16, "concurrent OTLP gRPC exporters (services or collectors); each waits for its commit")
	flag.DurationVar(&o.span, "span", 2*time.Hour, "time the spans' start times cover, ending now")
	flag.IntVar(&o.queryRuns, "query-runs", 200, "runs of each query for the latency percentiles")
	flag.BoolVar(&o.keep, "keep", false, "keep the benchmark database")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the OTLP ingest (server and clients) to this file")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	db, err := storetest.Create(ctx, "benchotlp")
	if err != nil {
		return err
	}
	if !o.keep {
		defer db.Drop(context.Background())
	}
	a, err := startServer(ctx, db.URL)
	if err != nil {
		return err
	}
	defer a.Stop(context.Background())

	end := time.Now().UTC()
	w := newWorkload(o, end.Add(-o.span), end)
	fmt.Printf("dataset: %d spans (%d traces of %d spans, %d services, %d operations), over %s; OTLP batches of %d from %d gRPC clients\n\n",
		w.spans, len(w.traceIDs), o.traceSpans, o.services, o.services*operationsPerService, o.span, o.batch, o.clients)

	copyRate, err := benchCopy(ctx, a, w)
	if err != nil {
		return fmt.Errorf("raw COPY: %w", err)
	}
	// The baseline's rows are garbage now; collect them before timing the server.
	runtime.GC()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	otlpRate, err := benchGRPC(ctx, a, o, w)
	pprof.StopCPUProfile()
	if err != nil {
		return fmt.Errorf("OTLP gRPC: %w", err)
	}
	fmt.Printf("%-34s %14s %8s\n", "ingest path", "spans/s", "vs COPY")
	fmt.Printf("%-34s %14.0f %8.2f\n", "raw pgx CopyFrom (baseline)", copyRate, 1.0)
	fmt.Printf("%-34s %14.0f %8.2f\n\n", "OTLP gRPC export (512/request)", otlpRate, otlpRate/copyRate)

	svc := auth.NewService(a.Store().Store, auth.Options{}, slog.New(slog.DiscardHandler))
	viewer, err := svc.CreateToken(ctx, "bench-viewer", auth.RoleViewer)
	if err != nil {
		return err
	}
	q, err := benchQueries(ctx, a, o, w, viewer)
	if err != nil {
		return fmt.Errorf("queries: %w", err)
	}
	fmt.Printf("RESULT spans_vs_copy=%.2f spans_per_s=%.0f trace_p99_ms=%.1f search_p99_ms=%.1f\n",
		otlpRate/copyRate, otlpRate, q.traceP99, q.searchP99)
	return nil
}

func startServer(ctx context.Context, url string) (*app.App, error) {
	var cfg config.Server
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg.Flags(fs)
	args := []string{"--database-url", url, "--http-addr", "127.0.0.1:0", "--put-addr", "",
		"--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "", "--roles", "api,ingest"}
	if err := config.Parse(fs, args, func(string) string { return "" }); err != nil {
		return nil, err
	}
	a, err := app.New(ctx, &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, err
	}
	return a, a.Start(ctx)
}
