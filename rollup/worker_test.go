package rollup

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

var testConfig = Config{
	RetentionRaw: 48 * time.Hour,
	Retention1m:  72 * time.Hour,
	Retention1h:  96 * time.Hour,
	Interval:     20 * time.Millisecond,
}

func newTestWorker(st *store.Store, cfg Config) *Worker {
	return New(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
}

// value reads a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if c := out.GetCounter(); c != nil {
		return c.GetValue()
	}
	return out.GetGauge().GetValue()
}

// start runs w until the test ends, and checks that it then returns nil.
func start(t *testing.T, w *Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after cancellation, want nil", err)
		}
	})
}

// eventually polls cond for up to 10 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting until %s", what)
}

func writeSamples(t *testing.T, st *store.Store, times ...time.Time) {
	t.Helper()
	ctx := context.Background()
	ids, err := st.ResolveSeries(ctx, []store.SeriesRef{{Metric: "cpu", Tags: map[string]string{"host": "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	samples := make([]store.Sample, len(times))
	for i, at := range times {
		samples[i] = store.Sample{SeriesID: ids[0], Time: at, Value: float64(i)}
	}
	if err := st.WriteSamples(ctx, samples); err != nil {
		t.Fatal(err)
	}
}

func pending(t *testing.T, st *store.Store) bool {
	t.Helper()
	_, ok, err := st.RollupWatermark(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestRunRollsUpPendingMinutes(t *testing.T) {
	st, _ := storetest.Migrated(t)
	t0 := time.Now().UTC().Truncate(time.Minute).Add(-10 * time.Minute)
	writeSamples(t, st, t0, t0.Add(10*time.Second), t0.Add(time.Minute), t0.Add(2*time.Minute+59*time.Second))
	w := newTestWorker(st, testConfig)
	start(t, w)
	eventually(t, "no minute is pending", func() bool { return !pending(t, st) })

	var buckets, count int
	err := st.Pool().QueryRow(context.Background(), `SELECT count(*), sum(count) FROM samples_1m`).Scan(&buckets, &count)
	if err != nil || buckets != 3 || count != 4 {
		t.Errorf("samples_1m has %d buckets of %d samples (%v), want 3 of 4", buckets, count, err)
	}
	if got := value(t, w.metrics.minutes); got != 3 {
		t.Errorf("amas_rollup_minutes_total = %v, want 3", got)
	}
	if got := value(t, w.metrics.lag); got != 0 {
		t.Errorf("amas_rollup_lag_seconds = %v with nothing pending, want 0", got)
	}
}

// TestRunPacksEndedHours checks that the worker packs the minutes of an hour
// that has ended, and leaves those of the current hour narrow.
func TestRunPacksEndedHours(t *testing.T) {
	st, _ := storetest.Migrated(t)
	hour := time.Now().UTC().Truncate(time.Hour)
	writeSamples(t, st, hour.Add(-30*time.Minute), hour.Add(-29*time.Minute), hour.Add(time.Second))
	start(t, newTestWorker(st, testConfig))
	ctx := context.Background()
	eventually(t, "the minute tier is packed through the current hour", func() bool {
		var through time.Time
		if err := st.Pool().QueryRow(ctx, `SELECT through FROM rollup_packed WHERE tier = '1m'`).Scan(&through); err != nil {
			t.Fatal(err)
		}
		return through.Equal(hour)
	})
	var (
		bucket time.Time
		slots  []byte
		rows   int
	)
	if err := st.Pool().QueryRow(ctx, `SELECT bucket, slots, count(*) OVER () FROM samples_1m_packed_sums`).Scan(&bucket, &slots, &rows); err != nil {
		t.Fatalf("the one packed row: %v", err)
	}
	if rows != 1 || !bucket.Equal(hour.Add(-time.Hour)) || string(slots) != "\x1e\x1f" {
		t.Errorf("%d packed rows, the first %v with minutes %v; want one, %v with minutes 30 and 31", rows, bucket, slots, hour.Add(-time.Hour))
	}
}

// lockHolders is the backends holding the rollup lock in the test's database.
func lockHolders(t *testing.T, st *store.Store) []int32 {
	t.Helper()
	rows, err := st.Pool().Query(context.Background(), `
		SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 1
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND classid::bigint = $1 AND objid::bigint = $2`, lockKey>>32, lockKey&0xffffffff)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int32
	for rows.Next() {
		var pid int32
		if err := rows.Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return pids
}

func TestOneReplicaLeadsAndAnotherTakesOver(t *testing.T) {
	st, db := storetest.Migrated(t)
	other, err := store.Open(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	start(t, newTestWorker(st, testConfig))
	start(t, newTestWorker(other, testConfig))

	eventually(t, "a replica holds the rollup lock", func() bool { return len(lockHolders(t, st)) > 0 })
	time.Sleep(10 * testConfig.Interval) // both replicas retry the lock meanwhile
	holders := lockHolders(t, st)
	if len(holders) != 1 {
		t.Fatalf("rollup lock held by backends %v, want exactly one", holders)
	}

	// Killing the leader's connection frees the lock; a replica must take it again.
	if _, err := st.Pool().Exec(context.Background(), `SELECT pg_terminate_backend($1)`, holders[0]); err != nil {
		t.Fatal(err)
	}
	eventually(t, "another connection holds the rollup lock", func() bool {
		now := lockHolders(t, st)
		return len(now) == 1 && !slices.Contains(now, holders[0])
	})
	t0 := time.Now().UTC().Add(-time.Hour)
	writeSamples(t, st, t0, t0.Add(time.Minute))
	eventually(t, "the new leader rolls up", func() bool { return !pending(t, st) })
}

func partitions(t *testing.T, st *store.Store) []string {
	t.Helper()
	names, err := st.SamplesPartitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestRunCreatesPartitionsAheadAndAppliesRetention(t *testing.T) {
	st, _ := storetest.Migrated(t)
	now := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
	var days []time.Time
	for d := 5; d <= 10; d++ {
		days = append(days, time.Date(2024, 3, d, 0, 0, 0, 0, time.UTC))
	}
	if err := st.EnsurePartitions(context.Background(), days...); err != nil {
		t.Fatal(err)
	}
	_, err := st.Pool().Exec(context.Background(), `
		INSERT INTO samples_1m VALUES (1, $1, 0, 0, 0, 1, 0), (1, $2, 0, 0, 0, 1, 0)`,
		now.Add(-testConfig.Retention1m-time.Minute), now.Add(-testConfig.Retention1m))
	if err != nil {
		t.Fatal(err)
	}
	w := newTestWorker(st, testConfig)
	w.now = func() time.Time { return now }
	start(t, w)

	// Raw retention 48h: the cutoff is Mar 8 12:00, so the partitions that end by
	// then (Mar 5, 6, 7) go; three days ahead of Mar 10 are created.
	want := []string{"samples_p20240308", "samples_p20240309", "samples_p20240310",
		"samples_p20240311", "samples_p20240312", "samples_p20240313"}
	eventually(t, "retention has run", func() bool { return value(t, w.metrics.droppedPartitions) > 0 })
	if got := partitions(t, st); !slices.Equal(got, want) {
		t.Errorf("partitions = %v, want %v", got, want)
	}
	if got := value(t, w.metrics.droppedPartitions); got != 3 {
		t.Errorf("amas_retention_dropped_partitions_total = %v, want 3", got)
	}
	var kept time.Time
	if err := st.Pool().QueryRow(context.Background(), `SELECT bucket FROM samples_1m`).Scan(&kept); err != nil || !kept.Equal(now.Add(-testConfig.Retention1m)) {
		t.Errorf("samples_1m keeps %v (%v), want only the row at the cutoff", kept, err)
	}
}
