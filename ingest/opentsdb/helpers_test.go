package opentsdb

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/amas-eye/amas/ingest"
)

// putTimestamp writes t as seconds, or "seconds.millis": a bare millisecond
// count below 11 digits would read back as seconds.
func putTimestamp(t time.Time) string {
	ms := t.UnixMilli()
	if ms%1000 == 0 {
		return strconv.FormatInt(ms/1000, 10)
	}
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

// fakeWriter records what the protocols hand to the pipeline. err is returned
// by Write; block, when set, holds Enqueue until it is closed.
type fakeWriter struct {
	mu     sync.Mutex
	points []ingest.Point
	err    error
	block  chan struct{}
	calls  int
}

func (w *fakeWriter) Write(_ context.Context, pts []ingest.Point) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.points = append(w.points, pts...)
	return nil
}

func (w *fakeWriter) Enqueue(ctx context.Context, pts []ingest.Point) error {
	w.mu.Lock()
	block := w.block
	w.calls++
	w.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.points = append(w.points, pts...)
	return nil
}

func (w *fakeWriter) stored() []ingest.Point {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]ingest.Point(nil), w.points...)
}

func (w *fakeWriter) enqueueCalls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls
}
