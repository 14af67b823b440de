package ingest

import (
	"slices"
	"testing"
	"time"

	"github.com/amas-eye/amas/store"
)

// TestTouchTrackerRefreshesOncePerInterval: a series' last_seen is due at its
// first sample, with the newest time of the batch, then not again until the
// interval has passed.
func TestTouchTrackerRefreshesOncePerInterval(t *testing.T) {
	tr := newTouchTracker(time.Minute)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	batch := []store.Sample{{SeriesID: 1, Time: t0}, {SeriesID: 1, Time: t0.Add(5 * time.Second)}, {SeriesID: 2, Time: t0}}
	for _, step := range []struct {
		name    string
		now     time.Time
		wantIDs []int64
	}{
		{"first batch", t0, []int64{1, 2}},
		{"within the interval", t0.Add(59 * time.Second), nil},
		{"interval passed", t0.Add(time.Minute), []int64{1, 2}},
	} {
		ids, times := tr.due(batch, step.now)
		got := map[int64]time.Time{}
		for i, id := range ids {
			got[id] = times[i]
		}
		slices.Sort(ids)
		if !slices.Equal(ids, step.wantIDs) {
			t.Fatalf("%s: due %v, want %v", step.name, ids, step.wantIDs)
		}
		if len(ids) > 0 && !got[1].Equal(t0.Add(5*time.Second)) {
			t.Errorf("%s: series 1 due with %s, want its newest sample", step.name, got[1])
		}
	}
}

// TestTouchTrackerForgetsStoppedSeries: entries older than the interval are
// swept once the map grows, so series that stopped do not stay in memory.
func TestTouchTrackerForgetsStoppedSeries(t *testing.T) {
	tr := newTouchTracker(time.Minute)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	stopped := make([]store.Sample, minTouchSweep-1)
	for i := range stopped {
		stopped[i] = store.Sample{SeriesID: int64(1000 + i), Time: t0}
	}
	tr.due(stopped, t0)
	if len(tr.last) != len(stopped) {
		t.Fatalf("tracking %d series, want %d", len(tr.last), len(stopped))
	}
	// An hour later only series 1 and 2 still send: the map reaches the sweep
	// size and the stopped series go.
	tr.due([]store.Sample{{SeriesID: 1, Time: t0}, {SeriesID: 2, Time: t0}}, t0.Add(time.Hour))
	if len(tr.last) != 2 {
		t.Fatalf("tracking %d series after the sweep, want the 2 live ones", len(tr.last))
	}
	if tr.sweepAt != minTouchSweep {
		t.Errorf("next sweep at %d entries, want %d", tr.sweepAt, minTouchSweep)
	}
}
