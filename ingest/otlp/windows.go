package otlp

import (
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// HistogramWindows remembers the latest bucket counts of each cumulative
// histogram series, so that the percentiles estimated for an export describe
// the observations since the previous export of that series, not everything
// since the process started (as a Prometheus user gets from
// histogram_quantile over rate()).
type HistogramWindows struct {
	mu   sync.Mutex
	last map[string]histWindow
	max  int
}

type histWindow struct {
	start  pcommon.Timestamp
	counts []uint64
}

// NewHistogramWindows keeps the counts of at most max series; past that it
// starts afresh, and each series' next percentiles cover its whole life once.
func NewHistogramWindows(max int) *HistogramWindows {
	return &HistogramWindows{last: map[string]histWindow{}, max: max}
}

// delta records counts for key and returns the observations since the previous
// counts recorded for it. ok is false when there is no usable previous: the
// first export, a restarted process (another start time), a changed bucket
// layout, or counts that went down.
func (w *HistogramWindows) delta(key string, start pcommon.Timestamp, counts []uint64) (out []uint64, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	prev, seen := w.last[key]
	if !seen && len(w.last) >= w.max {
		w.last = map[string]histWindow{}
	}
	w.last[key] = histWindow{start: start, counts: append([]uint64(nil), counts...)}
	if !seen || prev.start != start || len(prev.counts) != len(counts) {
		return nil, false
	}
	out = make([]uint64, len(counts))
	for i, n := range counts {
		if n < prev.counts[i] {
			return nil, false
		}
		out[i] = n - prev.counts[i]
	}
	return out, true
}
