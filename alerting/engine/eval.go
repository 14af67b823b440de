package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/amas-eye/amas/alerting/rule"
	"github.com/amas-eye/amas/store"
)

// Querier reduces windows of series (store.Store).
type Querier interface {
	ReduceWindows(ctx context.Context, qs []store.WindowQuery) ([]store.WindowResult, error)
}

// Job is one rule to evaluate at one time.
type Job struct {
	Rule *rule.Rule
	At   time.Time
}

// Result is what one Job found: its groups, or why it could not be evaluated.
type Result struct {
	Groups []Group
	Err    error
}

// Evaluate runs the queries of every job in one ReduceWindows call (batched by the
// store), queries that differ only in one tag value merged into one, and turns
// their answers into groups.
func Evaluate(ctx context.Context, q Querier, jobs []Job) ([]Result, error) {
	var qs []store.WindowQuery
	first := make([]int, len(jobs))
	for i, j := range jobs {
		first[i] = len(qs)
		qs = append(qs, queriesOf(j.Rule, j.At)...)
	}
	ms := mergeQueries(qs)
	mqs := make([]store.WindowQuery, len(ms))
	for i, m := range ms {
		mqs[i] = m.q
	}
	mergedAnswers, err := q.ReduceWindows(ctx, mqs)
	if err != nil {
		return nil, err
	}
	answers := split(ms, mergedAnswers, len(qs))
	out := make([]Result, len(jobs))
	for i, j := range jobs {
		n := 1
		if j.Rule.Kind == rule.KindChange {
			n = 2
		}
		out[i].Groups, out[i].Err = groupsOf(j.Rule, answers[first[i]:first[i]+n])
	}
	return out, nil
}

// queriesOf is what r reads when evaluated at at: the window ending at at, and for
// a period-over-period rule the same window Change.Offset earlier.
func queriesOf(r *rule.Rule, at time.Time) []store.WindowQuery {
	metric, filters := r.SeriesQuery()
	q := store.WindowQuery{
		Metric: metric, Filters: filters, GroupBy: r.Query.GroupBy,
		Reducer: store.WindowReducer(r.EffectiveReducer()),
		From:    at.Add(-r.Lookback().D()), To: at,
	}
	if r.Kind != rule.KindChange {
		return []store.WindowQuery{q}
	}
	earlier := q
	off := r.Change.Offset.D()
	earlier.From, earlier.To = q.From.Add(-off), q.To.Add(-off)
	return []store.WindowQuery{q, earlier}
}

func groupsOf(r *rule.Rule, answers []store.WindowResult) ([]Group, error) {
	for _, a := range answers {
		if a.Err != nil {
			return nil, fmt.Errorf("rule %s: %w", r, a.Err)
		}
	}
	cur := answers[0].Groups
	out := make([]Group, 0, len(cur))
	if r.Kind != rule.KindChange {
		for _, g := range cur {
			out = append(out, Group{Tags: g.Tags, Value: g.Value, HasValue: true})
		}
		return out, nil
	}
	earlier := make(map[string]float64, len(answers[1].Groups))
	for _, g := range answers[1].Groups {
		earlier[store.GroupKey(g.Tags, r.Query.GroupBy)] = g.Value
	}
	for _, g := range cur {
		e, ok := earlier[store.GroupKey(g.Tags, r.Query.GroupBy)]
		grp := Group{Tags: g.Tags}
		if ok {
			grp.Value, grp.HasValue = r.ChangeValue(g.Value, e)
		}
		out = append(out, grp)
	}
	return out, nil
}
