package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/amas-eye/amas/ingest"
	"github.com/amas-eye/amas/internal/pgproxy"
	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"))
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func points(metric string, hosts, perHost int, start time.Time) []ingest.Point {
	var out []ingest.Point
	for h := range hosts {
		for i := range perHost {
			out = append(out, ingest.Point{
				Metric: metric,
				Tags:   map[string]string{"host": fmt.Sprintf("h%d", h)},
				Time:   start.Add(time.Duration(i) * time.Second),
				Value:  float64(i),
			})
		}
	}
	return out
}

func countSamples(t *testing.T, s *store.Store, metric string) int {
	t.Helper()
	var n int
	err := s.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM samples JOIN series ON series.id = samples.series_id WHERE series.metric = $1`, metric).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWriteCommitsBeforeReturning(t *testing.T) {
	s, _ := storetest.Migrated(t)
	p := ingest.NewPipeline(s, ingest.Config{}, quiet, prometheus.NewRegistry())
	p.Start()
	defer p.Close(context.Background())

	start := time.Date(2026, 11, 20, 23, 59, 0, 0, time.UTC) // spans two daily partitions
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Write(context.Background(), points(fmt.Sprintf("cpu%d", c), 5, 120, start)); err != nil {
				t.Errorf("write: %v", err)
			}
		}()
	}
	wg.Wait()
	for c := range 8 {
		if n := countSamples(t, s, fmt.Sprintf("cpu%d", c)); n != 600 {
			t.Errorf("cpu%d: %d samples committed, want 600", c, n)
		}
	}
	var series int
	_ = s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM series`).Scan(&series)
	if series != 40 {
		t.Errorf("%d series created, want 40 (one per metric and host, no duplicates)", series)
	}
	var lastSeen time.Time
	_ = s.Pool().QueryRow(context.Background(), `SELECT max(last_seen) FROM series`).Scan(&lastSeen)
	if want := start.Add(119 * time.Second); !lastSeen.Equal(want) {
		t.Errorf("last_seen = %v, want the newest sample time %v", lastSeen, want)
	}
}

func TestCloseFlushesEverythingEnqueued(t *testing.T) {
	s, _ := storetest.Migrated(t)
	p := ingest.NewPipeline(s, ingest.Config{BatchSize: 500}, quiet, nil)
	p.Start()
	start := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	for i := range 50 {
		if err := p.Enqueue(context.Background(), points("mem", 1, 100, start.Add(time.Duration(i)*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := countSamples(t, s, "mem"); n != 5000 {
		t.Fatalf("%d samples after close, want all 5000 enqueued", n)
	}
	if err := p.Enqueue(context.Background(), points("mem", 1, 1, start)); !errors.Is(err, ingest.ErrClosed) {
		t.Fatalf("enqueue after close: %v, want ErrClosed", err)
	}
}

// A locked samples table is a database that stops committing: the queue fills, Write
// answers ErrOverloaded, Enqueue blocks, and once the lock goes everything accepted
// is committed.
func TestBackPressureWhenDatabaseIsSlow(t *testing.T) {
	s, _ := storetest.Migrated(t)
	ctx := context.Background()
	start := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	if err := s.EnsurePartitions(ctx, start); err != nil {
		t.Fatal(err)
	}
	p := ingest.NewPipeline(s, ingest.Config{QueueSize: 1000, BatchSize: 100, Writers: 1}, quiet, nil)
	p.Start()
	defer p.Close(ctx)
	// Warm the series cache so the writer blocks on COPY, not on series lookup.
	if err := p.Write(ctx, points("disk", 1, 1, start)); err != nil {
		t.Fatal(err)
	}

	locker, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := locker.Exec(ctx, `LOCK TABLE samples IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	accepted := 1
	for i := range 20 {
		err := p.Enqueue(ctx, points("disk", 1, 100, start.Add(time.Duration(i+1)*time.Minute)))
		if err != nil {
			t.Fatal(err)
		}
		accepted += 100
		if accepted >= 1000 {
			break
		}
	}
	if err := p.Write(ctx, points("disk", 1, 100, start.Add(time.Hour))); !errors.Is(err, ingest.ErrOverloaded) {
		t.Fatalf("write with a full queue: %v, want ErrOverloaded", err)
	}
	blocked, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := p.Enqueue(blocked, points("disk", 1, 100, start.Add(2*time.Hour))); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("enqueue with a full queue: %v, want it to block until the deadline", err)
	}
	if err := locker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countSamples(t, s, "disk"); n != accepted {
		t.Fatalf("%d samples committed, want every one of the %d accepted", n, accepted)
	}
}

// With the database unreachable, accepted points wait and are retried; nothing is
// lost once it is back.
func TestNothingLostWhileDatabaseIsDown(t *testing.T) {
	_, db := storetest.Migrated(t)
	ctx := context.Background()
	u, _ := url.Parse(db.URL)
	proxy, err := pgproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	u.Host = proxy.Addr()
	s, err := store.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	p := ingest.NewPipeline(s, ingest.Config{RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}, quiet, nil)
	p.Start()
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	if err := p.Write(ctx, points("net", 2, 10, start)); err != nil {
		t.Fatal(err)
	}

	proxy.Cut()
	done := make(chan error, 1)
	go func() { done <- p.Write(ctx, points("net", 2, 10, start.Add(time.Minute))) }()
	if err := p.Enqueue(ctx, points("net", 2, 10, start.Add(2*time.Minute))); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("write returned %v while the database was unreachable", err)
	case <-time.After(300 * time.Millisecond):
	}
	proxy.Restore()
	if err := <-done; err != nil {
		t.Fatalf("write after the database came back: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	direct, err := store.Open(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if n := countSamples(t, direct, "net"); n != 60 {
		t.Fatalf("%d samples committed, want all 60 accepted", n)
	}
}
