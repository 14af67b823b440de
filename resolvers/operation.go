package resolvers

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/amas-eye/amas/alerting/dispatch"
	"github.com/amas-eye/amas/resolvers/scalar"
	"github.com/amas-eye/amas/store"
)

// operationScope is what the fields of one operation share.
type operationScope struct {
	// pointsLeft is the operation's point budget: all its series fields together
	// return at most Config.MaxPoints points, so aliasing a query many times
	// does not multiply the limit.
	pointsLeft atomic.Int64

	// infos remembers catalogue lookups: every series of a query shares its
	// metric, so Series.info would otherwise ask the database once per series.
	mu    sync.Mutex
	infos map[string]func() (*store.MetricInfo, error)

	// mutes is the mute state of every open alert, read once for all the
	// Alert.mute fields of the operation (inhibition is judged among all alerts).
	mutes func() (map[string]dispatch.Mute, error)
}

type scopeKey struct{}

// WithOperationScope gives an operation its point budget and its memo of
// catalogue lookups. The api package calls it once per operation; a
// subscription keeps its memo for its whole life (a metric's unit rarely
// changes) and bounds each update by MaxPoints instead.
func (r *Resolver) WithOperationScope(ctx context.Context) context.Context {
	s := &operationScope{infos: map[string]func() (*store.MetricInfo, error){}}
	s.mutes = sync.OnceValues(func() (map[string]dispatch.Mute, error) { return r.cfg.Notify.Mutes.Status(ctx) })
	s.pointsLeft.Store(int64(r.cfg.MaxPoints))
	return context.WithValue(ctx, scopeKey{}, s)
}

func scopeOf(ctx context.Context) (*operationScope, bool) {
	s, ok := ctx.Value(scopeKey{}).(*operationScope)
	return s, ok
}

// querySeries answers q within the operation's point budget.
func (r *Resolver) querySeries(ctx context.Context, q store.SeriesQuery) ([]store.Series, error) {
	scope, ok := scopeOf(ctx)
	if !ok {
		return r.cfg.Series.QuerySeries(ctx, q)
	}
	left := scope.pointsLeft.Load()
	if left <= 0 {
		return nil, r.overBudget()
	}
	q.MaxPoints = int(left)
	series, err := r.cfg.Series.QuerySeries(ctx, q)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, s := range series {
		n += len(s.Points)
	}
	// Fields run concurrently: the one that takes the budget below zero fails.
	if scope.pointsLeft.Add(-int64(n)) < 0 {
		return nil, r.overBudget()
	}
	return series, nil
}

func (r *Resolver) overBudget() error {
	return scalar.Inputf("the response would hold more than %d points, the limit for all series fields of one request together: "+
		"use a larger step, a shorter range, narrower filters or fewer series fields", r.cfg.MaxPoints)
}

// metricInfo describes metric, or returns nil when the catalogue does not know it.
func (r *Resolver) metricInfo(ctx context.Context, metric string) (*store.MetricInfo, error) {
	lookup := func() (*store.MetricInfo, error) {
		info, err := r.cfg.Catalog.MetricInfo(ctx, metric)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &info, nil
	}
	scope, ok := scopeOf(ctx)
	if !ok {
		return lookup()
	}
	scope.mu.Lock()
	once, ok := scope.infos[metric]
	if !ok {
		once = sync.OnceValues(lookup)
		scope.infos[metric] = once
	}
	scope.mu.Unlock()
	return once()
}

// alertMute is the mute state of the open alert with fingerprint fp; the zero
// Mute (nothing mutes it) for an alert that is not open.
func (r *Resolver) alertMute(ctx context.Context, fp string) (dispatch.Mute, error) {
	read := func() (map[string]dispatch.Mute, error) { return r.cfg.Notify.Mutes.Status(ctx, fp) }
	if scope, ok := scopeOf(ctx); ok {
		read = scope.mutes
	}
	mutes, err := read()
	if err != nil {
		return dispatch.Mute{}, err
	}
	return mutes[fp], nil
}
