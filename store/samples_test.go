package store_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

// TestWriteSamplesStoresExactly reads back what WriteSamples encoded for COPY:
// times before PostgreSQL's and Unix's epochs and with nanoseconds (stored to the
// microsecond, rounded down as pgx does), extreme and negative values, and the
// pending minutes and partitions the samples need.
func TestWriteSamplesStoresExactly(t *testing.T) {
	s, _ := storetest.Migrated(t)
	ctx := context.Background()
	ids, err := s.ResolveSeries(ctx, []store.SeriesRef{{Metric: "exact", Tags: map[string]string{"k": "a"}}, {Metric: "exact", Tags: map[string]string{"k": "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	in := []store.Sample{ // in time order, as read back
		{SeriesID: ids[0], Time: time.Date(1969, 12, 31, 23, 59, 59, 999_999_500, time.UTC), Value: -1.5},
		{SeriesID: ids[0], Time: time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), Value: math.MaxFloat64},
		{SeriesID: ids[1], Time: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), Value: math.SmallestNonzeroFloat64},
		{SeriesID: ids[1], Time: time.Date(2026, 11, 30, 12, 34, 0, 1_000, time.UTC), Value: 0},
		{SeriesID: ids[1], Time: time.Date(2026, 11, 30, 12, 34, 56, 789_123_456, time.UTC), Value: -math.MaxFloat64},
	}
	if err := s.WriteSamples(ctx, in); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Pool().Query(ctx, `SELECT series_id, time, value FROM samples ORDER BY time`)
	if err != nil {
		t.Fatal(err)
	}
	var got []store.Sample
	for rows.Next() {
		var smp store.Sample
		if err := rows.Scan(&smp.SeriesID, &smp.Time, &smp.Value); err != nil {
			t.Fatal(err)
		}
		got = append(got, smp)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("read %d samples back, wrote %d", len(got), len(in))
	}
	for i, want := range in {
		want.Time = time.UnixMicro(want.Time.UnixMicro())
		if g := got[i]; g.SeriesID != want.SeriesID || !g.Time.Equal(want.Time) || g.Value != want.Value {
			t.Errorf("sample %d: stored %v %v %v, want %v %v %v", i, g.SeriesID, g.Time.UTC(), g.Value, want.SeriesID, want.Time.UTC(), want.Value)
		}
	}
	if s.Timescale() {
		return
	}
	var pending []time.Time
	rows, err = s.Pool().Query(ctx, `SELECT bucket FROM rollup_pending ORDER BY bucket`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var b time.Time
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		pending = append(pending, b.UTC())
	}
	want := []time.Time{
		time.Date(1969, 12, 31, 23, 59, 0, 0, time.UTC), time.Date(1999, 12, 31, 23, 59, 0, 0, time.UTC),
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 12, 34, 0, 0, time.UTC),
	}
	if len(pending) != len(want) {
		t.Fatalf("pending minutes %v, want %v", pending, want)
	}
	for i := range want {
		if !pending[i].Equal(want[i]) {
			t.Errorf("pending minute %d = %v, want %v", i, pending[i], want[i])
		}
	}
}
