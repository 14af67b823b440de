package ingest

import (
	"testing"

	"github.com/amas-eye/amas/store"
)

// The pipeline's cache is keyed by appendSeriesKey; it must name a series as
// store.SeriesRef.Key does, whatever the order the tags come in.
func TestAppendSeriesKeyIsSeriesRefKey(t *testing.T) {
	for _, ref := range []store.SeriesRef{
		{Metric: "cpu"},
		{Metric: "cpu", Tags: map[string]string{"host": "a"}},
		{Metric: "cpu", Tags: map[string]string{"host": "a", "dc": "x", "b": "", "zone": "eu=1"}},
		{Metric: "m", Tags: map[string]string{"k1": "v", "k2": "v", "k3": "v", "k4": "v", "k5": "v", "k6": "v", "k7": "v", "k8": "v",
			"k9": "v", "k10": "v", "k11": "v", "k12": "v", "k13": "v", "k14": "v", "k15": "v", "k16": "v", "k17": "v"}},
	} {
		if got, want := string(appendSeriesKey([]byte("stale"), ref.Metric, ref.Tags)[len("stale"):]), ref.Key(); got != want {
			t.Errorf("appendSeriesKey(%v) = %q, want %q", ref, got, want)
		}
	}
}

func BenchmarkAppendSeriesKey(b *testing.B) {
	tags := map[string]string{"host": "h0042", "dc": "eu1"}
	var key []byte
	for b.Loop() {
		key = appendSeriesKey(key[:0], "bench.http", tags)
	}
}
