package resolvers

import (
	"maps"
	"slices"

	"github.com/amas-eye/amas/graph/model"
	"github.com/amas-eye/amas/resolvers/scalar"
	"github.com/amas-eye/amas/store"
)

const (
	// defaultListLimit is the page size of name lists and the catalogue when the
	// client gives none.
	defaultListLimit = 100
	// maxListLimit bounds one page, whatever the client asks for.
	maxListLimit = 10_000
)

// listLimit reads an optional limit argument.
func listLimit(limit *int) (int, error) {
	if limit == nil {
		return defaultListLimit, nil
	}
	if *limit < 1 || *limit > maxListLimit {
		return 0, scalar.Inputf("limit %d is out of range: it must be between 1 and %d", *limit, maxListLimit)
	}
	return *limit, nil
}

// listOffset reads an optional offset argument.
func listOffset(offset *int) (int, error) {
	if offset == nil {
		return 0, nil
	}
	if *offset < 0 {
		return 0, scalar.Inputf("offset %d is negative", *offset)
	}
	return *offset, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// seriesQuery maps the GraphQL input onto the store's query; the store checks it.
func (r *Resolver) seriesQuery(in model.SeriesQuery) store.SeriesQuery {
	return store.SeriesQuery{
		Metric:    in.Metric,
		Filters:   in.Filters,
		Aggregate: deref(in.Aggregate),
		GroupBy:   in.GroupBy,
		Rate:      deref(in.Rate),
		From:      in.From,
		To:        in.To,
		Step:      deref(in.Step),
		MaxPoints: r.cfg.MaxPoints,
	}
}

// tagList turns a tag map into a list sorted by key, so answers are stable.
func tagList(tags map[string]string) []model.Tag {
	out := make([]model.Tag, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, model.Tag{Key: k, Value: tags[k]})
	}
	return out
}
