package resolvers

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/graph/model"
	"github.com/amas-eye/amas/store"
)

func TestListLimit(t *testing.T) {
	n := func(v int) *int { return &v }
	tests := []struct {
		name    string
		in      *int
		want    int
		wantErr string
	}{
		{"absent", nil, defaultListLimit, ""},
		{"given", n(5), 5, ""},
		{"largest", n(maxListLimit), maxListLimit, ""},
		{"zero", n(0), 0, "limit 0 is out of range"},
		{"too large", n(maxListLimit + 1), 0, "limit 10001 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := listLimit(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("listLimit = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
	if _, err := listOffset(n(-1)); err == nil || !strings.Contains(err.Error(), "offset -1 is negative") {
		t.Fatalf("listOffset(-1) err = %v", err)
	}
}

func TestSeriesQueryMapping(t *testing.T) {
	r := New(Config{MaxPoints: 500})
	from := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	agg, rate, step := store.AggSum, true, time.Minute
	got := r.seriesQuery(model.SeriesQuery{
		Metric: "m", Filters: []store.TagFilter{{Key: "host", Op: store.OpEQ, Value: "a"}},
		Aggregate: &agg, GroupBy: []string{"dc"}, Rate: &rate, From: from, To: from.Add(time.Hour), Step: &step,
	})
	if got.Metric != "m" || len(got.Filters) != 1 || got.Aggregate != store.AggSum || !slices.Equal(got.GroupBy, []string{"dc"}) ||
		!got.Rate || got.Step != time.Minute || got.MaxPoints != 500 || !got.To.Equal(from.Add(time.Hour)) {
		t.Fatalf("seriesQuery = %+v", got)
	}
	if bare := r.seriesQuery(model.SeriesQuery{Metric: "m"}); bare.Aggregate != "" || bare.Rate || bare.Step != 0 {
		t.Fatalf("absent options = %+v, want zero values", bare)
	}
}

func TestTagListIsSorted(t *testing.T) {
	got := tagList(map[string]string{"host": "a", "dc": "x", "env": "prod"})
	want := []model.Tag{{Key: "dc", Value: "x"}, {Key: "env", Value: "prod"}, {Key: "host", Value: "a"}}
	if !slices.Equal(got, want) {
		t.Fatalf("tagList = %v, want %v", got, want)
	}
}
