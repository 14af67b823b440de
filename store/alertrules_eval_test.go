package store_test

import (
	"context"
	"errors"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

func TestReduceWindows(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	m := time.Minute
	writeTestSeries(t, st, "db.threads", map[string]string{"host": "db-1", "dc": "eu"}, tv{0, 10}, tv{m, 20}, tv{2 * m, 30})
	writeTestSeries(t, st, "db.threads", map[string]string{"host": "db-2", "dc": "eu"}, tv{0, 100}, tv{m, 50})
	writeTestSeries(t, st, "db.threads", map[string]string{"host": "web-1"}, tv{0, 7})
	// A counter that resets between 2m and 3m: increases 10 + 10 + 5 over 3 minutes.
	writeTestSeries(t, st, "net.bytes", map[string]string{"host": "db-1"}, tv{0, 100}, tv{m, 110}, tv{2 * m, 120}, tv{3 * m, 5})
	writeTestSeries(t, st, "net.bytes", map[string]string{"host": "db-2"}, tv{0, 0}, tv{m, 60})

	win := func(red store.WindowReducer, groupBy []string, filters ...store.TagFilter) store.WindowQuery {
		return store.WindowQuery{Metric: "db.threads", Filters: filters, GroupBy: groupBy, Reducer: red,
			From: queryT0, To: queryT0.Add(10 * m)}
	}
	dbOnly := store.TagFilter{Key: "host", Op: store.OpRegex, Value: "db-.*"}
	rate := win(store.WindowRate, []string{"host"})
	rate.Metric = "net.bytes"
	rateAll := rate
	rateAll.GroupBy = nil
	cases := []struct {
		name string
		q    store.WindowQuery
		want map[string]float64 // host (or "" without group) -> value
	}{
		{"avg by host", win(store.WindowAvg, []string{"host"}, dbOnly), map[string]float64{"db-1": 20, "db-2": 75}},
		{"avg pooled over all points", win(store.WindowAvg, nil, dbOnly), map[string]float64{"": 42}},
		{"max", win(store.WindowMax, nil), map[string]float64{"": 100}},
		{"min", win(store.WindowMin, []string{"host"}), map[string]float64{"db-1": 10, "db-2": 50, "web-1": 7}},
		{"sum", win(store.WindowSum, []string{"host"}, dbOnly), map[string]float64{"db-1": 60, "db-2": 150}},
		{"count", win(store.WindowCount, nil), map[string]float64{"": 6}},
		{"last is the newest point", win(store.WindowLast, nil, dbOnly), map[string]float64{"": 30}},
		{"p95 interpolates", win(store.WindowP95, []string{"host"}, dbOnly), map[string]float64{"db-1": 29, "db-2": 97.5}},
		{"neq keeps series without the tag", win(store.WindowCount, nil, store.TagFilter{Key: "dc", Op: store.OpNEQ, Value: "eu"}), map[string]float64{"": 1}},
		{"missing group tag is its own group", win(store.WindowCount, []string{"dc"}), map[string]float64{"eu": 5, "": 1}},
		{"rate per second, reset aware", rate, map[string]float64{"db-1": 25.0 / 180, "db-2": 1}},
		{"rate summed over series", rateAll, map[string]float64{"": 25.0/180 + 1}},
	}
	qs := make([]store.WindowQuery, len(cases))
	for i, tc := range cases {
		qs[i] = tc.q
	}
	// A bad regex fails its own query only.
	qs = append(qs, win(store.WindowAvg, nil, store.TagFilter{Key: "host", Op: store.OpRegex, Value: "(db"}))
	res, err := st.ReduceWindows(ctx, qs)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if res[i].Err != nil {
				t.Fatal(res[i].Err)
			}
			got := map[string]float64{}
			for _, g := range res[i].Groups {
				key := g.Tags["host"]
				if len(tc.q.GroupBy) == 1 && tc.q.GroupBy[0] == "dc" {
					key = g.Tags["dc"]
				}
				got[key] = g.Value
			}
			if len(got) != len(tc.want) {
				t.Fatalf("groups %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if math.Abs(got[k]-v) > 1e-9 {
					t.Errorf("group %q = %g, want %g", k, got[k], v)
				}
			}
		})
	}
	if bad := res[len(res)-1]; !errors.Is(bad.Err, store.ErrBadQuery) {
		t.Errorf("bad regex: err = %v, want ErrBadQuery", bad.Err)
	}
	newest := res[1].Groups[0]
	if newest.Points != 5 || !newest.Newest.Equal(queryT0.Add(2*m)) {
		t.Errorf("points %d newest %s, want 5 and %s", newest.Points, newest.Newest, queryT0.Add(2*m))
	}
	keys := []string{store.GroupKey(map[string]string{"a": ""}, []string{"a"}), store.GroupKey(map[string]string{}, []string{"a"})}
	sort.Strings(keys)
	if keys[0] == keys[1] {
		t.Error("GroupKey: an empty tag value and a missing tag must differ")
	}
}
