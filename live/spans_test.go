package live

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

// TestLiveSpansFollowCommits subscribes to one service's errors and receives,
// per commit, exactly its matching spans; a commit of other services wakes
// nothing, and the channel closes with the subscription's context.
func TestLiveSpansFollowCommits(t *testing.T) {
	st, _ := storetest.Migrated(t)
	// Runs last: the hub's and the subscription's goroutines must be gone.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	hub := NewSpanHub(PoolConnector(st.Pool()), st, slog.New(slog.DiscardHandler), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hub.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !hub.Listening() {
		if time.Now().After(deadline) {
			t.Fatal("span hub never listened")
		}
		time.Sleep(10 * time.Millisecond)
	}
	subCtx, unsubscribe := context.WithCancel(context.Background())
	ch, err := hub.Subscribe(subCtx, store.SpanFilter{Service: "api", ErrorsOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	w := store.NewSpanWriter(st)
	now := time.Now().UTC()
	span := func(id byte, service string, failed bool) store.Span {
		sp := store.Span{TraceID: store.TraceID{id}, SpanID: store.SpanID{id}, Service: service, Name: "op", Start: now}
		if failed {
			sp.StatusCode = store.StatusError
		}
		return sp
	}
	for _, batch := range [][]store.Span{
		{span(1, "other", true)},
		{span(2, "api", false), span(3, "api", true), span(4, "other", true)},
	} {
		if err := w.WriteSpans(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case got := <-ch:
		if len(got) != 1 || got[0].TraceID != (store.TraceID{3}) {
			t.Errorf("live spans %+v, want the failed api span only", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no live spans within 10s")
	}
	unsubscribe()
	for range ch {
		t.Error("spans after the subscription ended")
	}
}
