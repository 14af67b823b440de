package store_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

func samplesPartitions(t *testing.T, s *store.Store) []string {
	t.Helper()
	names, err := s.SamplesPartitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// plainMigrated is a migrated store for a test of what only plain PostgreSQL
// has (daily partitions, retention by the rollup role, rollup_pending); on
// TimescaleDB the test is skipped, saying why.
func plainMigrated(t *testing.T, why string) *store.Store {
	t.Helper()
	s, _ := storetest.Migrated(t)
	if s.Timescale() {
		t.Skip(why)
	}
	return s
}

const partitionsOnly = "TimescaleDB: chunks and retention policies replace partitions and ApplyRetention"

func TestCreatePartitionsAhead(t *testing.T) {
	s := plainMigrated(t, partitionsOnly)
	ctx := context.Background()
	if err := s.CreatePartitionsAhead(ctx, time.Date(2024, 12, 30, 23, 59, 0, 0, time.UTC), 2); err != nil {
		t.Fatal(err)
	}
	want := []string{"samples_p20241230", "samples_p20241231", "samples_p20250101"}
	if got := samplesPartitions(t, s); !slices.Equal(got, want) {
		t.Errorf("partitions = %v, want %v", got, want)
	}
	if err := s.CreatePartitionsAhead(ctx, time.Now(), -1); err == nil {
		t.Error("CreatePartitionsAhead with -1 days: no error")
	}
}

func TestApplyRetention(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2024, 3, d, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name    string
		now     time.Time
		raw     time.Duration
		dropped []string
	}{
		{"partition ending at the cutoff goes", day(10), 48 * time.Hour,
			[]string{"samples_p20240305", "samples_p20240306", "samples_p20240307"}},
		{"partition straddling the cutoff stays", day(10).Add(-time.Minute), 48 * time.Hour,
			[]string{"samples_p20240305", "samples_p20240306"}},
		{"a short retention keeps today's partition", day(10).Add(12 * time.Hour), time.Hour,
			[]string{"samples_p20240305", "samples_p20240306", "samples_p20240307", "samples_p20240308", "samples_p20240309"}},
		{"nothing old enough", day(10), 30 * 24 * time.Hour, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := plainMigrated(t, partitionsOnly)
			ctx := context.Background()
			if err := s.CreatePartitionsAhead(ctx, day(5), 6); err != nil {
				t.Fatal(err)
			}
			// A table that is not a daily partition is never dropped.
			if _, err := s.Pool().Exec(ctx, `CREATE TABLE samples_old PARTITION OF samples FOR VALUES FROM ('2000-01-01') TO ('2000-01-02')`); err != nil {
				t.Fatal(err)
			}
			res, err := s.ApplyRetention(ctx, tc.now, tc.raw, 90*24*time.Hour, 365*24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.DroppedPartitions, tc.dropped) {
				t.Errorf("dropped %v, want %v", res.DroppedPartitions, tc.dropped)
			}
			want := []string{"samples_old"}
			for d := 5; d <= 11; d++ {
				if name := store.PartitionName(day(d)); !slices.Contains(tc.dropped, name) {
					want = append(want, name)
				}
			}
			if got := samplesPartitions(t, s); !slices.Equal(got, want) {
				t.Errorf("partitions left = %v, want %v", got, want)
			}
		})
	}
}

func TestApplyRetentionWritesAfterDrop(t *testing.T) {
	s := plainMigrated(t, partitionsOnly)
	ctx := context.Background()
	// The write caches the partition; after retention drops it, a late write for
	// that day must re-create it rather than fail.
	writeTestSeries(t, s, "cpu", map[string]string{"host": "a"}, tv{0, 1})
	if _, err := s.ApplyRetention(ctx, queryT0.AddDate(0, 0, 3), 24*time.Hour, 48*time.Hour, 72*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := samplesPartitions(t, s); len(got) != 0 {
		t.Fatalf("partitions after retention: %v", got)
	}
	writeTestSeries(t, s, "cpu", map[string]string{"host": "a"}, tv{time.Second, 2})
}

func TestApplyRetentionDeletesOldRollups(t *testing.T) {
	s := plainMigrated(t, partitionsOnly)
	ctx := context.Background()
	now := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
	const r1m, r1h = 72 * time.Hour, 96 * time.Hour
	insert := `INSERT INTO %s SELECT 1, b, 0, 0, 0, 1, 0 FROM generate_series($1::timestamptz, $2::timestamptz, $3::interval) AS b`
	// 15,001 minutes before the 1m cutoff (more than one delete batch) and 10 after it;
	// hours from 10 before the 1h cutoff to 10 after it.
	if _, err := s.Pool().Exec(ctx, fmt.Sprintf(insert, "samples_1m"), now.Add(-r1m-15001*time.Minute), now.Add(-r1m+9*time.Minute), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, fmt.Sprintf(insert, "samples_1h"), now.Add(-r1h-10*time.Hour), now.Add(-r1h+9*time.Hour), time.Hour); err != nil {
		t.Fatal(err)
	}
	// Packed spans: hours from 5 before the 1m cutoff (a whole hour) to 2 after it,
	// days from 3 before the day of the 1h cutoff (midday) to 1 after it.
	insertPacked := `INSERT INTO %s SELECT 1, b, '', '', '', '' FROM generate_series($1::timestamptz, $2::timestamptz, $3::interval) AS b`
	insertSums := `INSERT INTO %s SELECT 1, b, '', '', '' FROM generate_series($1::timestamptz, $2::timestamptz, $3::interval) AS b`
	for _, ins := range []struct{ sql, table1m, table1h string }{
		{insertSums, "samples_1m_packed_sums", "samples_1h_packed_sums"},
		{insertPacked, "samples_1m_packed_values", "samples_1h_packed_values"},
	} {
		if _, err := s.Pool().Exec(ctx, fmt.Sprintf(ins.sql, ins.table1m), now.Add(-r1m-5*time.Hour), now.Add(-r1m+2*time.Hour), time.Hour); err != nil {
			t.Fatal(err)
		}
		cutoffDay := now.Add(-r1h).Truncate(24 * time.Hour)
		if _, err := s.Pool().Exec(ctx, fmt.Sprintf(ins.sql, ins.table1h), cutoffDay.AddDate(0, 0, -3), cutoffDay.AddDate(0, 0, 1), 24*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.ApplyRetention(ctx, now, 48*time.Hour, r1m, r1h)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted1m != 15001 || res.Deleted1h != 10 || res.DeletedPacked != 2*(5+3) {
		t.Errorf("deleted %d 1m, %d 1h and %d packed rows, want 15001, 10 and 16 (8 in each half)", res.Deleted1m, res.Deleted1h, res.DeletedPacked)
	}
	for table, cutoff := range map[string]time.Duration{"samples_1m": r1m, "samples_1h": r1h} {
		var n int
		var oldest time.Time
		if err := s.Pool().QueryRow(ctx, `SELECT count(*), min(bucket) FROM `+table).Scan(&n, &oldest); err != nil {
			t.Fatal(err)
		}
		if n != 10 || !oldest.Equal(now.Add(-cutoff)) {
			t.Errorf("%s keeps %d rows from %v, want 10 from the cutoff %v", table, n, oldest, now.Add(-cutoff))
		}
	}
}

func TestApplyRetentionRejectsNonPositivePeriods(t *testing.T) {
	s := plainMigrated(t, partitionsOnly)
	if _, err := s.ApplyRetention(context.Background(), time.Now(), 24*time.Hour, 0, time.Hour); err == nil {
		t.Error("ApplyRetention with a zero 1m retention: no error")
	}
}

func TestSetRetentionPolicies(t *testing.T) {
	s, _ := storetest.Migrated(t)
	ctx := context.Background()
	if !s.Timescale() {
		if err := s.SetRetentionPolicies(ctx, time.Hour, time.Hour, time.Hour); err == nil {
			t.Error("SetRetentionPolicies on plain PostgreSQL: no error")
		}
		return
	}
	want := map[string]time.Duration{"samples": 50 * time.Hour, "samples_1m": 100 * time.Hour, "samples_1h": 1000 * time.Hour}
	// Twice: the second call replaces the first's policies rather than adding more.
	for range 2 {
		if err := s.SetRetentionPolicies(ctx, want["samples"], want["samples_1m"], want["samples_1h"]); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := s.Pool().Query(ctx, `
		SELECT coalesce(ca.view_name, j.hypertable_name), extract(epoch FROM (j.config->>'drop_after')::interval)::bigint
		FROM timescaledb_information.jobs j
		LEFT JOIN timescaledb_information.continuous_aggregates ca ON ca.materialization_hypertable_name = j.hypertable_name
		WHERE j.proc_name = 'policy_retention'`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Duration{}
	for rows.Next() {
		var table string
		var seconds int64
		if err := rows.Scan(&table, &seconds); err != nil {
			t.Fatal(err)
		}
		got[table] = time.Duration(seconds) * time.Second
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("retention policies = %v, want %v", got, want)
	}
}
