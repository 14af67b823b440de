// Package pointtest collects the points a collector emits so tests can look
// them up by metric and tags.
package pointtest

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/amas-eye/amas/collector"
)

// Sink records emitted points. It is safe for concurrent Emit calls.
type Sink struct {
	mu     sync.Mutex
	points []collector.Point
}

// Emit records p.
func (s *Sink) Emit(p collector.Point) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.points = append(s.points, p)
}

// Points returns what was recorded.
func (s *Sink) Points() []collector.Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.points)
}

// Key renders a metric and its tags as "metric{k=v,...}" with sorted keys.
func Key(metric string, tags map[string]string) string {
	keys := slices.Sorted(maps.Keys(tags))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + tags[k]
	}
	return metric + "{" + strings.Join(parts, ",") + "}"
}

// Tags builds a tag map from key, value pairs.
func Tags(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// Index maps Key(metric, tags) to the value of each recorded point.
func (s *Sink) Index() map[string]float64 {
	out := make(map[string]float64)
	for _, p := range s.Points() {
		out[Key(p.Metric, p.Tags)] = p.Value
	}
	return out
}

// Lookup returns the value of the point with exactly this metric and these
// tags.
func (s *Sink) Lookup(metric string, tags map[string]string) (float64, bool) {
	v, ok := s.Index()[Key(metric, tags)]
	return v, ok
}

// Has reports whether any point has this metric name.
func (s *Sink) Has(metric string) bool {
	for _, p := range s.Points() {
		if p.Metric == metric {
			return true
		}
	}
	return false
}

// Expect is one expected point.
type Expect struct {
	Metric string
	Tags   map[string]string
	Value  float64
}

// Check fails t for every expected point that is missing or whose value
// differs by more than a relative 1e-9, listing the recorded keys with the
// same metric to make a wrong tag obvious.
func Check(t *testing.T, s *Sink, want []Expect) {
	t.Helper()
	idx := s.Index()
	for _, w := range want {
		key := Key(w.Metric, w.Tags)
		got, ok := idx[key]
		if !ok {
			t.Errorf("missing %s; recorded with that metric: %v", key, similar(idx, w.Metric))
			continue
		}
		if !near(got, w.Value) {
			t.Errorf("%s = %v, want %v", key, got, w.Value)
		}
	}
}

func near(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

func similar(idx map[string]float64, metric string) string {
	var keys []string
	for k := range idx {
		if strings.HasPrefix(k, metric+"{") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) > 5 {
		keys = append(keys[:5], fmt.Sprintf("... %d more", len(keys)-5))
	}
	return strings.Join(keys, " ")
}
