package ingest

import (
	"sync"
	"time"

	"github.com/amas-eye/amas/store"
)

// seriesCache maps series keys to ids. When full it forgets an arbitrary half:
// a miss only costs one lookup query, and a random eviction needs no bookkeeping
// on the hot path.
type seriesCache struct {
	mu   sync.RWMutex
	ids  map[string]int64
	size int
}

func newSeriesCache(size int) *seriesCache {
	return &seriesCache{ids: make(map[string]int64), size: size}
}

func (c *seriesCache) put(key string, id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ids) >= c.size {
		n := 0
		for k := range c.ids {
			delete(c.ids, k)
			if n++; n >= c.size/2 {
				break
			}
		}
	}
	c.ids[key] = id
}

// touchTracker decides which series' last_seen is due for a refresh, so the
// catalogue's "last data time" costs one UPDATE per series per interval rather
// than one per sample.
type touchTracker struct {
	mu       sync.Mutex
	interval time.Duration
	last     map[int64]time.Time // when each series was last refreshed (wall clock)
	// sweepAt is the size of last at which entries older than interval, which
	// say no more than an absent one, are swept out: series that stopped
	// (replaced pods, renamed hosts) do not stay in memory for good.
	sweepAt int
}

const minTouchSweep = 1 << 14

func newTouchTracker(interval time.Duration) *touchTracker {
	return &touchTracker{interval: interval, last: make(map[int64]time.Time), sweepAt: minTouchSweep}
}

// due returns the series of samples whose refresh is due, with each one's newest
// sample time, and marks them refreshed at now.
func (t *touchTracker) due(samples []store.Sample, now time.Time) ([]int64, []time.Time) {
	newest := map[int64]time.Time{}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range samples {
		if last, ok := t.last[s.SeriesID]; ok && now.Sub(last) < t.interval {
			continue
		}
		if s.Time.After(newest[s.SeriesID]) {
			newest[s.SeriesID] = s.Time
		}
	}
	ids := make([]int64, 0, len(newest))
	times := make([]time.Time, 0, len(newest))
	for id, ts := range newest {
		ids = append(ids, id)
		times = append(times, ts)
		t.last[id] = now
	}
	if len(t.last) >= t.sweepAt {
		for id, at := range t.last {
			if now.Sub(at) >= t.interval {
				delete(t.last, id)
			}
		}
		// Twice what is live, so that the sweeps cost O(1) a series.
		t.sweepAt = max(minTouchSweep, 2*len(t.last))
	}
	return ids, times
}

// rateMeter counts events in one-second slots over a sliding window.
type rateMeter struct {
	mu    sync.Mutex
	slots []int64
	secs  []int64 // the Unix second each slot counts
}

func newRateMeter(window int) *rateMeter {
	return &rateMeter{slots: make([]int64, window), secs: make([]int64, window)}
}

func (r *rateMeter) add(now time.Time, n int) {
	sec := now.Unix()
	i := int(sec % int64(len(r.slots)))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.secs[i] != sec {
		r.secs[i], r.slots[i] = sec, 0
	}
	r.slots[i] += int64(n)
}

// perSecond averages the complete seconds of the window before now.
func (r *rateMeter) perSecond(now time.Time) float64 {
	sec := now.Unix()
	window := int64(len(r.slots)) - 1
	r.mu.Lock()
	defer r.mu.Unlock()
	var total int64
	for i, s := range r.secs {
		if s < sec && s >= sec-window {
			total += r.slots[i]
		}
	}
	return float64(total) / float64(window)
}
