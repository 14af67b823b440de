package rollup

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

// TestRunKeepsSpanPartitions checks the span side of maintenance: partitions
// for the coming days, and whole days older than --retention-spans dropped.
func TestRunKeepsSpanPartitions(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	now := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
	w := store.NewSpanWriter(st)
	for d := 6; d <= 10; d++ {
		if err := w.EnsureSpanPartitions(ctx, time.Date(2024, 3, d, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig
	cfg.RetentionSpans = 48 * time.Hour
	worker := newTestWorker(st, cfg)
	worker.now = func() time.Time { return now }
	start(t, worker)

	// Cutoff Mar 8 12:00: Mar 6 and 7 go; Mar 11 to 13 are created ahead.
	want := []string{"spans_p20240308", "spans_p20240309", "spans_p20240310", "spans_p20240311", "spans_p20240312", "spans_p20240313"}
	var got []string
	eventually(t, "span retention has run", func() bool {
		rows, err := st.Pool().Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'spans'::regclass ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		got, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return slices.Equal(got, want)
	})
}
