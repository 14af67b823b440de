package api

import (
	"github.com/amas-eye/amas/graph"
	"github.com/amas-eye/amas/graph/model"
)

// seriesListCost is how many series a series query is counted as returning: the
// answer is a list whose length the query alone does not tell, and one query
// commonly covers a handful of hosts or groups. Points are bounded separately by
// the point limit (store.SeriesQuery.MaxPoints), which fails with a clear error.
const seriesListCost = 10

// complexity counts the fields that return lists of unknown length as that many
// copies of their selection; every other field costs 1 plus its selection
// (gqlgen's default).
func complexity() graph.ComplexityRoot {
	var c graph.ComplexityRoot
	series := func(child int, _ model.SeriesQuery) int { return seriesListCost * (1 + child) }
	c.Query.Series = series
	c.Subscription.LiveSeries = series
	return c
}
