// Package rate turns monotonically increasing counters into per-second rates
// between two collections, the way the seed's collectors kept their previous
// values between runs.
package rate

import "time"

type sample struct {
	value float64
	at    time.Time
	seen  bool
}

// Tracker remembers the last value of each counter. It is not safe for
// concurrent use: a collector owns one and calls it from its Collect.
type Tracker struct {
	prev map[string]*sample
}

// New returns an empty Tracker.
func New() *Tracker {
	return &Tracker{prev: make(map[string]*sample)}
}

// Rate records value for key at time at and returns the per-second increase
// since the previous call for the same key. ok is false on the first sample,
// when time did not advance, and when the counter went down (a restart of the
// process that owns it), because none of those gives a meaningful rate.
func (t *Tracker) Rate(key string, value float64, at time.Time) (perSecond float64, ok bool) {
	p, found := t.prev[key]
	if !found {
		t.prev[key] = &sample{value: value, at: at, seen: true}
		return 0, false
	}
	dt := at.Sub(p.at).Seconds()
	dv := value - p.value
	p.value, p.at, p.seen = value, at, true
	if dt <= 0 || dv < 0 {
		return 0, false
	}
	return dv / dt, true
}

// Prune forgets the counters that were not seen since the previous Prune, so
// that series which disappear (a finished Spark application, an unplugged
// disk) do not grow the Tracker forever.
func (t *Tracker) Prune() {
	for k, s := range t.prev {
		if !s.seen {
			delete(t.prev, k)
			continue
		}
		s.seen = false
	}
}
