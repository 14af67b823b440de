package live

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

type hubFixture struct {
	t   *testing.T
	st  *store.Store
	hub *Hub
	id  int64
}

// newHubFixture runs a Hub on a fresh database, with one series "load"{host=a}.
func newHubFixture(t *testing.T, opt Options) *hubFixture {
	t.Helper()
	st, _ := storetest.Migrated(t)
	hub := New(PoolConnector(st.Pool()), st, slog.New(slog.DiscardHandler), opt)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hub.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	deadline := time.Now().Add(10 * time.Second)
	for !hub.Listening() {
		if time.Now().After(deadline) {
			t.Fatal("hub never listened")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ids, err := st.ResolveSeries(ctx, []store.SeriesRef{{Metric: "load", Tags: map[string]string{"host": "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	return &hubFixture{t: t, st: st, hub: hub, id: ids[0]}
}

func (f *hubFixture) write(at time.Time, v float64) {
	f.t.Helper()
	if err := f.st.WriteSamples(context.Background(), []store.Sample{{SeriesID: f.id, Time: at, Value: v}}, "load"); err != nil {
		f.t.Fatal(err)
	}
}

func receive(t *testing.T, ch <-chan []store.Series) []store.Series {
	t.Helper()
	select {
	case s, ok := <-ch:
		if !ok {
			t.Fatal("subscription ended")
		}
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no update within 5s")
		return nil
	}
}

func TestSlowSubscriberCatchesUp(t *testing.T) {
	f := newHubFixture(t, Options{Coalesce: 20 * time.Millisecond, Buffer: 1})
	start := time.Now().Truncate(time.Second)
	f.write(start, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := f.hub.Subscribe(ctx, store.SeriesQuery{Metric: "load", From: start.Add(-time.Minute), To: start.Add(time.Second), Step: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if first := receive(t, ch); len(first) != 1 || len(first[0].Points) != 1 {
		t.Fatalf("first = %+v", first)
	}

	// The subscriber stops reading: the first update fills its buffer, and
	// the commits after it must not queue anything more.
	f.write(start.Add(time.Second), 2)
	deadline := time.Now().Add(5 * time.Second)
	for len(ch) < cap(ch) {
		if time.Now().After(deadline) {
			t.Fatal("the update never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 5 {
		f.write(start.Add(time.Duration(2+i)*time.Second), float64(3+i))
	}
	time.Sleep(200 * time.Millisecond)
	if len(ch) != cap(ch) {
		t.Fatalf("%d updates waiting, want at most %d", len(ch), cap(ch))
	}

	// Reading again, it gets everything it missed.
	seen := map[float64]bool{}
	for !seen[7] {
		for _, s := range receive(t, ch) {
			for _, p := range s.Points {
				seen[p.V] = true
			}
		}
	}
	for v := 2.0; v <= 7; v++ {
		if !seen[v] {
			t.Errorf("point %v was never sent", v)
		}
	}
}

func TestSubscriptionEndsWithItsContext(t *testing.T) {
	f := newHubFixture(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	ch, err := f.hub.Subscribe(ctx, store.SeriesQuery{Metric: "load", From: now.Add(-time.Minute), To: now})
	if err != nil {
		t.Fatal(err)
	}
	receive(t, ch)
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("an update after the end")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the channel was not closed")
	}
	f.hub.mu.Lock()
	defer f.hub.mu.Unlock()
	if len(f.hub.byMetric) != 0 {
		t.Fatalf("subscriptions left registered: %v", f.hub.byMetric)
	}
}

func TestSubscribeRefusesABadQuery(t *testing.T) {
	f := newHubFixture(t, Options{})
	now := time.Now()
	_, err := f.hub.Subscribe(context.Background(), store.SeriesQuery{Metric: "load", From: now, To: now.Add(-time.Hour)})
	if !errors.Is(err, store.ErrBadQuery) {
		t.Fatalf("err = %v, want ErrBadQuery", err)
	}
	f.hub.mu.Lock()
	defer f.hub.mu.Unlock()
	if len(f.hub.byMetric) != 0 {
		t.Fatalf("refused subscription left registered: %v", f.hub.byMetric)
	}
}

func TestAutoStepRoundsToANiceStep(t *testing.T) {
	tests := []struct {
		span, want time.Duration
	}{
		{time.Hour, 5 * time.Second},
		{24 * time.Hour, 2 * time.Minute},
		{1000 * 24 * time.Hour, 24 * time.Hour},
		{3000 * 24 * time.Hour, 3 * 24 * time.Hour},
	}
	for _, tt := range tests {
		if got := autoStep(tt.span); got != tt.want {
			t.Errorf("autoStep(%s) = %s, want %s", tt.span, got, tt.want)
		}
	}
}
