// Command ingest is the core platform benchmark: on a fresh database it measures
// points/s through HTTP /api/put and through telnet put against a raw pgx CopyFrom
// of the identical rows into an identical table, then the latency of series
// queries over the ingested day, raw versus rollup. Its last line is
// machine-readable:
//
//	RESULT ingest_http_vs_copy=<ratio> ingest_tcp_vs_copy=<ratio> query_raw_p99_ms=<n> query_rollup_p99_ms=<n>
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"time"

	"github.com/amas-eye/amas/app"
	"github.com/amas-eye/amas/config"
	"github.com/amas-eye/amas/store/storetest"
)

type options struct {
	series      int
	step        time.Duration
	span        time.Duration
	httpBatch   int
	httpClients int
	tcpConns    int
	queryRuns   int
	keep        bool
	cpuProfile  string
}

func main() {
	var o options
	flag.IntVar(&o.series, "series", 1000, "series per path (host tag values)")
	flag.DurationVar(&o.step, "resolution", 10*time.Second, "time between points of one series")
	flag.DurationVar(&o.span, "span", 24*time.Hour, "time covered by each path's data")
	flag.IntVar(&o.httpBatch, "http-batch", 1000, "points per /api/put request")
	flag.IntVar(&o.httpClients, "http-clients", 32, "concurrent HTTP clients (agents); each waits for its commit")
	flag.IntVar(&o.tcpConns, "tcp-conns", 4, "concurrent telnet connections")
	flag.IntVar(&o.queryRuns, "query-runs", 50, "runs of each query for the latency percentiles")
	flag.BoolVar(&o.keep, "keep", false, "keep the benchmark database")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the ingest paths (server and clients) to this file")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	db, err := storetest.Create(ctx, "bench")
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

	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	perSeries := int(o.span / o.step)
	total := o.series * perSeries
	fmt.Printf("dataset: %d series x %d points (%s at %s) = %d points per path\n\n", o.series, perSeries, o.span, o.step, total)

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
	// Each path's millions of fresh rows make autovacuum vacuum and analyze its
	// table, and fill WAL up to a checkpoint; left to the background, that work
	// would land in the next path's timing (HTTP, the second path, read 0.62 to
	// 0.73 of COPY in three runs of the same code). Each path starts instead
	// after a VACUUM and a CHECKPOINT, untimed.
	pool := a.Store().Store.Pool()
	settle := func(table string) error {
		if table != "" {
			if _, err := pool.Exec(ctx, `VACUUM (ANALYZE) `+table); err != nil {
				return err
			}
		}
		if _, err := pool.Exec(ctx, `CHECKPOINT`); err != nil {
			return fmt.Errorf("checkpoint (the benchmark needs a superuser or pg_checkpoint): %w", err)
		}
		return nil
	}
	if err := settle(""); err != nil {
		return err
	}
	copyRate, err := benchCopy(ctx, a, o, day)
	if err == nil {
		err = settle("bench_copy")
	}
	if err != nil {
		return fmt.Errorf("raw COPY: %w", err)
	}
	httpRate, err := benchHTTP(ctx, a, o, day.AddDate(0, 0, 1))
	if err == nil {
		err = settle("samples")
	}
	if err != nil {
		return fmt.Errorf("HTTP put: %w", err)
	}
	tcpRate, err := benchTCP(ctx, a, o, day.AddDate(0, 0, 2))
	if err != nil {
		return fmt.Errorf("telnet put: %w", err)
	}
	pprof.StopCPUProfile()
	fmt.Printf("%-34s %14s %8s\n", "ingest path", "points/s", "vs COPY")
	fmt.Printf("%-34s %14.0f %8.2f\n", "raw pgx CopyFrom (baseline)", copyRate, 1.0)
	fmt.Printf("%-34s %14.0f %8.2f\n", "HTTP /api/put (JSON)", httpRate, httpRate/copyRate)
	fmt.Printf("%-34s %14.0f %8.2f\n\n", "telnet put", tcpRate, tcpRate/copyRate)

	q, err := benchQueries(ctx, a, o, day.AddDate(0, 0, 1))
	if err != nil {
		return fmt.Errorf("queries: %w", err)
	}
	fmt.Printf("RESULT ingest_http_vs_copy=%.2f ingest_tcp_vs_copy=%.2f query_raw_p99_ms=%.1f query_rollup_p99_ms=%.1f\n",
		httpRate/copyRate, tcpRate/copyRate, q.rawP99, q.rollupP99)
	return nil
}

func startServer(ctx context.Context, url string) (*app.App, error) {
	var cfg config.Server
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg.Flags(fs)
	args := []string{"--database-url", url, "--http-addr", "127.0.0.1:0", "--put-addr", "127.0.0.1:0",
		"--otlp-grpc-addr", "", "--otlp-http-addr", "", "--roles", "api,ingest"}
	if err := config.Parse(fs, args, func(string) string { return "" }); err != nil {
		return nil, err
	}
	a, err := app.New(ctx, &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, err
	}
	return a, a.Start(ctx)
}
