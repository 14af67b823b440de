package rate

import (
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name   string
		values []float64
		times  []time.Time
		want   float64
		wantOK bool
	}{
		{name: "first sample has no rate", values: []float64{5}, times: []time.Time{t0}},
		{name: "increase over ten seconds", values: []float64{100, 150}, times: []time.Time{t0, t0.Add(10 * time.Second)}, want: 5, wantOK: true},
		{name: "counter reset", values: []float64{100, 3}, times: []time.Time{t0, t0.Add(10 * time.Second)}},
		{name: "same instant", values: []float64{100, 200}, times: []time.Time{t0, t0}},
		{name: "rate after reset uses the new base", values: []float64{100, 3, 23}, times: []time.Time{t0, t0.Add(time.Second), t0.Add(3 * time.Second)}, want: 10, wantOK: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := New()
			var got float64
			var ok bool
			for i, v := range tc.values {
				got, ok = tr.Rate("k", v, tc.times[i])
			}
			if ok != tc.wantOK || got != tc.want {
				t.Errorf("Rate = %v, %v; want %v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestPruneForgetsUnseenKeys(t *testing.T) {
	tr := New()
	t0 := time.Unix(1000, 0)
	tr.Rate("gone", 1, t0)
	tr.Rate("kept", 1, t0)
	tr.Prune()
	tr.Rate("kept", 2, t0.Add(time.Second))
	tr.Prune()
	if _, ok := tr.prev["gone"]; ok {
		t.Error("key not seen for a whole cycle is still tracked")
	}
	if _, ok := tr.prev["kept"]; !ok {
		t.Error("key seen in the last cycle was pruned")
	}
}
