package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

// rollupMismatches counts rollup rows that differ from, or are missing against, an
// aggregation of the raw samples (both ways: a row of either side alone counts).
const rollupMismatches = `
WITH raw AS (
    SELECT series_id, date_bin($1::interval, time, TIMESTAMPTZ 'epoch') AS bucket,
           min(value) AS min, max(value) AS max, sum(value) AS sum, count(*) AS count
    FROM samples GROUP BY 1, 2)
SELECT count(*) FROM raw FULL JOIN %s r USING (series_id, bucket)
WHERE raw.count IS NULL OR r.count IS NULL OR raw.count <> r.count
   OR raw.min <> r.min OR raw.max <> r.max OR abs(raw.sum - r.sum) > 1e-6 * greatest(1, abs(raw.sum))`

func checkRollupsMatchRaw(t *testing.T, s *store.Store) {
	t.Helper()
	for table, width := range map[string]time.Duration{"samples_1m": time.Minute, "samples_1h": time.Hour} {
		var n int
		sql := fmt.Sprintf(rollupMismatches, table)
		if err := s.Pool().QueryRow(context.Background(), sql, width).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s: %d buckets differ from the raw samples", table, n)
		}
	}
}

func TestRollupPending(t *testing.T) {
	s := plainMigrated(t, "plain PostgreSQL only: TimescaleDB's continuous aggregates need no rollup_pending")
	ctx := context.Background()
	seedCPU(t, s)
	// Late data two hours back: a second range, and a second hour.
	writeTestSeries(t, s, "cpu", map[string]string{"host": "c"}, tv{-2*time.Hour + 5*time.Second, 7})
	wm, pending, err := s.RollupWatermark(ctx)
	if err != nil || !pending || !wm.Equal(queryT0.Add(-2*time.Hour)) {
		t.Fatalf("watermark = %v %v %v, want the late minute", wm, pending, err)
	}
	if n, err := s.RollupPending(ctx, 0); n != 0 || err != nil {
		t.Fatalf("RollupPending(0) = %d, %v", n, err)
	}
	if n, err := s.RollupPending(ctx, 100); n != 6 || err != nil {
		t.Fatalf("RollupPending = %d, %v; want 6 minutes", n, err)
	}
	if _, pending, _ := s.RollupWatermark(ctx); pending {
		t.Fatal("minutes still pending after a full rollup")
	}
	checkRollupsMatchRaw(t, s)
	var last float64
	if err := s.Pool().QueryRow(ctx, `SELECT last FROM samples_1h WHERE bucket = $1 AND count = 15`, queryT0).Scan(&last); err != nil || last != 7 {
		t.Errorf("last of host c's hour = %v, %v; want 7 (minute 4's last sample)", last, err)
	}
	// Rolling a minute up again after more samples replaces its rows.
	writeTestSeries(t, s, "cpu", map[string]string{"host": "c"}, tv{4*time.Minute + 59*time.Second, -1})
	if n, err := s.RollupPending(ctx, 100); n != 1 || err != nil {
		t.Fatalf("RollupPending = %d, %v; want 1 minute", n, err)
	}
	checkRollupsMatchRaw(t, s)
}

// TestRollupPendingConcurrentWrites rolls up while a writer keeps adding samples to
// the same minutes: no committed sample may end up neither rolled up nor pending.
// One writer: concurrent WriteSamples calls can deadlock each other on
// rollup_pending (they mark minutes in map order), with or without a rollup.
func TestRollupPendingConcurrentWrites(t *testing.T) {
	s := plainMigrated(t, "plain PostgreSQL only: TimescaleDB's continuous aggregates need no rollup_pending")
	ctx := context.Background()
	refs := make([]store.SeriesRef, 20)
	for i := range refs {
		refs[i] = store.SeriesRef{Metric: "busy", Tags: map[string]string{"n": fmt.Sprint(i)}}
	}
	ids, err := s.ResolveSeries(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range 400 {
				batch := make([]store.Sample, 0, 40)
				for range 40 {
					at := time.Duration(rng.IntN(int(8*time.Minute/time.Millisecond))) * time.Millisecond
					batch = append(batch, store.Sample{SeriesID: ids[rng.IntN(len(ids))], Time: queryT0.Add(58*time.Minute + at), Value: rng.Float64()})
				}
				if err := s.WriteSamples(ctx, batch); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	runs := 0
	for rolling := true; rolling; runs++ {
		select {
		case <-done:
			rolling = false
		default:
		}
		if _, err := s.RollupPending(ctx, 3); err != nil {
			t.Fatal(err)
		}
	}
	rollupAll(t, s)
	t.Logf("%d rollup runs during the writes", runs)
	checkRollupsMatchRaw(t, s)
	checkSourcesAgree(t, s, []store.SeriesQuery{
		{Metric: "busy", From: queryT0, To: queryT0.Add(2 * time.Hour), Step: time.Minute},
		{Metric: "busy", From: queryT0, To: queryT0.Add(2 * time.Hour), Step: time.Hour},
	})
}

// TestPackRollupsPacksSettledSpans: spans are packed once ended and rolled up on
// plain PostgreSQL, once past the continuous aggregate's refresh window (3 hours
// for minutes) on TimescaleDB.
func TestPackRollupsPacksSettledSpans(t *testing.T) {
	s, _ := storetest.Migrated(t)
	ctx := context.Background()
	seedCPU(t, s) // 3 series, minutes 0-4 of queryT0's hour
	if _, err := s.RollupPending(ctx, 100); err != nil {
		t.Fatal(err)
	}
	through := func() time.Time {
		var at time.Time
		if err := s.Pool().QueryRow(ctx, `SELECT through FROM rollup_packed WHERE tier = '1m'`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	now := queryT0.Add(2*time.Hour + 30*time.Minute)
	wantThrough, wantRows := now.Truncate(time.Hour), int64(3)
	if s.Timescale() {
		if _, err := s.Pool().Exec(ctx, `CALL refresh_continuous_aggregate('samples_1m', NULL, NULL)`); err != nil {
			t.Fatal(err)
		}
		wantThrough, wantRows = now.Add(-3*time.Hour).Truncate(time.Hour), 0 // queryT0's hour is still refreshed
	}
	if n, err := s.PackRollups(ctx, now); err != nil || n != wantRows || !through().Equal(wantThrough) {
		t.Fatalf("PackRollups at %v wrote %d rows (%v), through %v; want %d through %v", now, n, err, through(), wantRows, wantThrough)
	}
	if !s.Timescale() {
		return
	}
	later := queryT0.Add(4 * time.Hour)
	if n, err := s.PackRollups(ctx, later); err != nil || n != 3 || !through().Equal(queryT0.Add(time.Hour)) {
		t.Fatalf("PackRollups at %v wrote %d rows (%v), through %v; want 3 through %v", later, n, err, through(), queryT0.Add(time.Hour))
	}
}
